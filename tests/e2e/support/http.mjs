// HTTP helpers and shared assertions for the end-to-end tests. Responses are read with
// fetch (undici), which reads by Content-Length: wrangler dev keeps connections open
// for about 5 s and ignores `Connection: close`, so reading until EOF would hang.

import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";

const REQUEST_TIMEOUT_MS = 15_000;

/**
 * Sends one request to a worker instance and reads the whole response. Redirects are
 * returned, not followed. Returns `{ status, headers, body (Buffer), text, json() }`.
 */
export async function send(worker, path, { method = "GET", token, headers = {}, body } = {}) {
  const requestHeaders = new Headers(headers);
  if (token !== undefined) requestHeaders.set("authorization", `Bearer ${token}`);
  const response = await fetch(`${worker.url}${path}`, {
    method,
    headers: requestHeaders,
    body,
    redirect: "manual",
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  return toResult(response.status, response.headers, bytes);
}

/**
 * Sends a request with node:http so that one header field can be sent several times
 * as separate lines (`rawHeaders` is a list of [name, value] pairs), which fetch merges.
 */
export function sendRaw(worker, path, { method = "GET", rawHeaders = [] } = {}) {
  return new Promise((resolve, reject) => {
    // With headers given as a flat list, node:http adds no Host field by itself.
    const flatHeaders = [["Host", new URL(worker.url).host], ...rawHeaders].flat();
    const req = httpRequest(`${worker.url}${path}`, { method, headers: flatHeaders, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        res.socket.destroy();
        const headers = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve(toResult(res.statusCode, headers, Buffer.concat(chunks)));
      });
      res.on("error", reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`request to ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

function toResult(status, headers, body) {
  const text = body.toString("utf8");
  return {
    status,
    headers,
    body,
    text,
    json() {
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new Error(`response body is not JSON (${error.message}): ${JSON.stringify(text.slice(0, 300))}`);
      }
    },
  };
}

/** Formats a response for assertion messages. */
export function describeResponse(response) {
  const headerLines = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n  ");
  return `HTTP ${response.status}\n  ${headerLines}\n  body: ${response.text.slice(0, 500)}`;
}

/**
 * Asserts the shape of every response that the gateway makes itself: the status,
 * `Content-Type: application/problem+json`, `Cache-Control: no-store`, a Content-Length
 * equal to the body's byte length, and a body with type, title, status and detail.
 * Returns the parsed body.
 */
export function assertProblem(response, status) {
  const context = describeResponse(response);
  assert.equal(response.status, status, `status\n${context}`);
  assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json(;|$)/, `Content-Type\n${context}`);
  assert.equal(response.headers.get("cache-control"), "no-store", `Cache-Control\n${context}`);
  assert.equal(response.headers.get("content-length"), String(response.body.length), `Content-Length\n${context}`);

  const problem = response.json();
  assert.equal(typeof problem.type, "string", `problem type\n${context}`);
  assert.ok(problem.type.startsWith("urn:tollgate:problem:"), `problem type prefix\n${context}`);
  assert.equal(typeof problem.title, "string", `problem title\n${context}`);
  assert.ok(problem.title.length > 0, `problem title is empty\n${context}`);
  assert.equal(problem.status, status, `problem status member\n${context}`);
  assert.equal(typeof problem.detail, "string", `problem detail\n${context}`);
  return problem;
}

/** Asserts the challenge of a 401 without credentials: `Bearer realm="…"` and no error. */
export function assertNoCredentialsChallenge(response) {
  const challenge = response.headers.get("www-authenticate") ?? "";
  assert.ok(challenge.startsWith('Bearer realm="'), `WWW-Authenticate: ${JSON.stringify(challenge)}`);
  assert.ok(!challenge.includes("error="), `WWW-Authenticate must carry no error: ${JSON.stringify(challenge)}`);
}

/** Asserts a challenge with `error="<code>"`, and returns the challenge. */
export function assertErrorChallenge(response, code) {
  const challenge = response.headers.get("www-authenticate") ?? "";
  assert.ok(challenge.startsWith('Bearer realm="'), `WWW-Authenticate: ${JSON.stringify(challenge)}`);
  assert.ok(challenge.includes(`error="${code}"`), `WWW-Authenticate must contain error="${code}": ${JSON.stringify(challenge)}`);
  return challenge;
}

/** Asserts that the recording origin received no request. */
export function assertNothingForwarded(origin) {
  assert.deepEqual(
    origin.requests.map((request) => `${request.method} ${request.url}`),
    [],
    "the origin must not receive any request",
  );
}

/** Asserts that the origin received exactly one request, and returns it. */
export function assertForwardedOnce(origin) {
  assert.equal(
    origin.requests.length,
    1,
    `the origin must receive exactly one request, got: ${JSON.stringify(origin.requests.map((r) => `${r.method} ${r.url}`))}`,
  );
  return origin.requests[0];
}

/** Asserts that a 200 came from the origin's echo responder. */
export function assertFromOrigin(response) {
  const context = describeResponse(response);
  assert.equal(response.status, 200, `status\n${context}`);
  assert.equal(response.json().origin, "recording-origin", `body must come from the origin\n${context}`);
}
