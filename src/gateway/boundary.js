// The adapter's side of the wasm boundary: each function does one step of a request in
// one call, so that a request crosses the boundary a few times rather than once or
// twice per header.
//
// Lists travel as one string of lines joined by "\n". Header names, header values,
// URLs and methods cannot contain a line feed (the Fetch standard rejects one), and
// the Rust side refuses to send a line that contains one (src/gateway/boundary.rs).

/** Splits a list of lines; an empty string is an empty list. */
function lines(text) {
  return text === "" ? [] : text.split("\n");
}

/** Appends "name\nvalue\n..." pairs to `headers`. */
function appendPairs(headers, pairs) {
  const items = lines(pairs);
  for (let index = 0; index + 1 < items.length; index += 2) {
    headers.append(items[index], items[index + 1]);
  }
}

/**
 * The request facts the decision reads, as lines: the time in milliseconds, the URL,
 * the method, "1" for a CORS preflight (else "0"), then "1" and the `Authorization`
 * value, or "0" when there is none.
 */
export function requestFacts(request) {
  const headers = request.headers;
  const method = request.method;
  const preflight = method === "OPTIONS" && headers.has("origin") && headers.has("access-control-request-method");
  const authorization = headers.get("authorization");
  const credential = authorization === null ? "0" : `1\n${authorization}`;
  return `${Date.now()}\n${request.url}\n${method}\n${preflight ? "1" : "0"}\n${credential}`;
}

/** Lists the header names (lower case, in order) after the `Connection` value ("" if none). */
export function headerNames(headers) {
  return `${headers.get("connection") ?? ""}\n${[...headers.keys()].join("\n")}`;
}

/**
 * Sends the checked request to `target` and settles with the response for the client.
 * The origin gets the client's headers less the `remove` names, plus the `append`
 * pairs. Redirects are not followed, and the body is streamed when `withBody` is true.
 * If the origin cannot be reached, the promise settles with what `onError(error)`
 * returns, or rejects when `onError` is undefined.
 */
export function sendToOrigin(request, target, method, remove, append, withBody, onError) {
  const headers = new Headers(request.headers);
  for (const name of lines(remove)) headers.delete(name);
  appendPairs(headers, append);
  const init = { method, headers, redirect: "manual" };
  if (withBody && request.body !== null) init.body = request.body;
  return fetch(target, init).then(clientResponse, onError);
}

/**
 * Returns the origin's response for the client: as it is, with `Cache-Control: private`
 * added when the origin set no `Cache-Control` (the response was made for one caller).
 * Hop-by-hop fields never get here: the runtime's HTTP client removes them, and those
 * the origin's `Connection` names, itself (see README, Forwarding).
 */
function clientResponse(response) {
  if (response.headers.has("cache-control")) return response;
  const headers = new Headers(response.headers);
  headers.set("cache-control", "private");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** Builds a response of the gateway's own from a status, "name\nvalue\n..." pairs and a body or null. */
export function respond(status, pairs, body) {
  const headers = new Headers();
  appendPairs(headers, pairs);
  return new Response(body, { status, headers });
}
