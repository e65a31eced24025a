// A pass-through Worker that adds identity headers of the names and about the sizes the
// filter sends for the benchmark's demo user: a 420-character assertion and three
// attribute headers. It does no other work, so its cost over the plain pass-through is
// what the identity headers alone cost workerd, whatever code adds them.
const ASSERTION = "a".repeat(420);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("cookie");
    headers.append("X-CAS-User", "demo");
    headers.append("X-CAS-Assertion", ASSERTION);
    headers.append("X-CAS-Attr-authenticationDate", "2026-12-05T08:34:48.745Z");
    headers.append("X-CAS-Attr-isFromNewLogin", "false");
    headers.append("X-CAS-Attr-longTermAuthenticationRequestTokenUsed", "false");
    return fetch(env.ORIGIN_URL + url.pathname + url.search, {
      method: request.method,
      headers,
      redirect: "manual",
    });
  },
};
