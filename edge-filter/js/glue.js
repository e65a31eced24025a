// Request reading and origin forwarding for the filter's wasm glue. Each function does
// in one call from wasm what would otherwise take one call per header, each with its own
// string conversion.
//
// Strings cross the boundary as lines. The Fetch standard forbids CR, LF and NUL in
// header names and values, and the runtime rejects them, so a newline always ends a
// field.

const ENCODER = new TextEncoder();

// Returns the runtime's clock (`Date.now()`, in milliseconds), the method, the URL and
// each header name and value of `request`, each followed by a newline, as UTF-8. Names
// come lowercase, in the order `Headers` iterates them.
//
// Under callgrind, `forEach` cost workerd about a third of the instructions of a
// `for...of` loop over the headers. The encoder copies the text in one native call,
// while wasm-bindgen copies a string argument one character at a time in JavaScript.
export function describeRequest(request) {
  let lines = Date.now() + "\n" + request.method + "\n" + request.url + "\n";
  request.headers.forEach((value, name) => {
    lines += name + "\n" + value + "\n";
  });
  return ENCODER.encode(lines);
}

// Sends `request` through `fetcher` (the global scope or an assets binding) as `spec`
// describes, and returns the promise of the response. The body goes along only when
// `withBody` is true. Redirects are passed back to the client, not followed.
//
// `spec` is a sequence of newline-terminated fields (see `forward_fields` in
// src/wire.rs): the URL, the prefix of the filter's cookie names, the page language,
// the session id, the number of `Set-Cookie` values to add and those values, then the
// header edits. An edit is "d" and a name, which deletes every copy of a header, or
// "s" or "a", a name and a value, which set or append it, applied to a copy of the
// request's headers.
//
// When the response sets no cookie whose name starts with the prefix and there is no
// `Set-Cookie` value to add, the response is returned as it is. Otherwise
// `onResponse(response, setCookies)` finishes it, where `setCookies` contains the
// values to add, each followed by a newline. A failed fetch goes to
// `onError(error, context)`, where `context` is the language and the session id.
export function forward(request, fetcher, spec, withBody, onResponse, onError) {
  const fields = spec.split("\n");
  const url = fields[0];
  const cookiePrefix = fields[1];
  const cookieCount = Number(fields[4]);
  const setCookies = cookieCount === 0 ? "" : fields.slice(5, 5 + cookieCount).join("\n") + "\n";

  const headers = new Headers(request.headers);
  for (let i = 5 + cookieCount; i + 1 < fields.length; ) {
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
    (error) => onError(error, fields[2] + "\n" + fields[3]),
  );
}
