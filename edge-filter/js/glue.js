// Request reading and origin forwarding for the filter's wasm glue. Each function does
// in one call from wasm what would otherwise take one call per header, each with its own
// string conversion.
//
// Strings cross the boundary as lines. The Fetch standard forbids CR, LF and NUL in
// header names and values, and the runtime rejects them, so a newline always ends a
// field.

// Returns the method, the URL and each header name and value of `request`, each
// followed by a newline. Names come lowercase, in the order `Headers` iterates them.
export function describeRequest(request) {
  let lines = request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) {
    lines += name + "\n" + value + "\n";
  }
  return lines;
}

// Sends `request` to `url` through `fetcher` (the global scope or an assets binding)
// with a copy of its headers changed by `edits`, and returns the promise of the
// response.
//
// `edits` is a sequence of newline-terminated fields: "d", name deletes every copy of
// a header; "s", name, value sets it; "a", name, value appends it. The body goes along
// only when `withBody` is true. Redirects are passed back to the client, not followed.
//
// When the response sets no cookie whose name starts with `cookiePrefix` and
// `setCookies` is empty, the response is returned as it is. Otherwise
// `onResponse(response, setCookies)` finishes it, where `setCookies` contains the
// `Set-Cookie` values to add, each followed by a newline. A failed fetch goes to
// `onError(error, context)`.
export function forward(request, fetcher, url, edits, withBody, cookiePrefix, setCookies, context, onResponse, onError) {
  const headers = new Headers(request.headers);
  const fields = edits.split("\n");
  for (let i = 0; i + 1 < fields.length; ) {
    const op = fields[i];
    if (op === "d") {
      headers.delete(fields[i + 1]);
      i += 2;
    } else if (op === "s") {
      headers.set(fields[i + 1], fields[i + 2]);
      i += 3;
    } else if (op === "a") {
      headers.append(fields[i + 1], fields[i + 2]);
      i += 3;
    } else {
      throw new Error("invalid header edit: " + op);
    }
  }

  const init = { method: request.method, headers, redirect: "manual" };
  if (withBody) {
    init.body = request.body;
  }
  return fetcher.fetch(url, init).then(
    (response) => {
      const setCookie = response.headers.get("set-cookie");
      if (setCookies === "" && (setCookie === null || !setCookie.includes(cookiePrefix))) {
        return response;
      }
      return onResponse(response, setCookies);
    },
    (error) => onError(error, context),
  );
}
