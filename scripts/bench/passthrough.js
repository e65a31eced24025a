// The benchmark's ceiling: a trivial Worker that forwards every request to ORIGIN_URL
// unchanged, so the filter's cost is what its figures add on top of this one.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = env.ORIGIN_URL + url.pathname + url.search;
    return fetch(target, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
