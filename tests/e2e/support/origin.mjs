// A recording origin for the end-to-end tests: a Node HTTP server on 127.0.0.1 that
// stores every request it receives. It responds with a JSON echo of the request, or with
// whatever the current test's responder returns.

import { createHash } from "node:crypto";
import { createServer } from "node:http";

/**
 * Builds the default response: 200 with a JSON body that echoes what the origin received.
 * The body carries the marker `"origin": "recording-origin"` so tests can tell that
 * a response came from the origin and not from the gateway.
 */
export function echoResponse(request) {
  return {
    status: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      origin: "recording-origin",
      method: request.method,
      url: request.url,
      bodyLength: request.bodyLength,
      bodySha256: request.bodySha256,
    }),
  };
}

/**
 * Starts the origin on 127.0.0.1 with a random port. Each recorded request is
 * `{ method, url, path, query, headers, rawHeaders, body, bodyLength, bodySha256 }`,
 * where headers has lower-case names (repeated fields joined by ", ") and rawHeaders
 * is Node's flat [name, value, ...] list as received.
 */
export async function startRecordingOrigin() {
  const requests = [];
  let responder = echoResponse;

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, "http://origin.invalid");
    const record = {
      method: req.method,
      url: req.url,
      path: url.pathname,
      query: url.search,
      headers: { ...req.headers },
      rawHeaders: [...req.rawHeaders],
      body,
      bodyLength: body.length,
      bodySha256: createHash("sha256").update(body).digest("hex"),
    };
    requests.push(record);

    let response;
    try {
      response = await responder(record);
    } catch (error) {
      response = { status: 599, headers: { "content-type": "text/plain" }, body: `responder failed: ${error}` };
    }
    const responseBody = Buffer.from(response.body ?? "");
    res.writeHead(response.status ?? 200, {
      ...response.headers,
      "content-length": String(responseBody.length),
    });
    res.end(req.method === "HEAD" ? undefined : responseBody);
  });
  // Keep-alive sockets from the Workers runtime would hold close() open.
  server.keepAliveTimeout = 1000;

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Every request received since the last reset(), oldest first. */
    requests,
    /** Forgets the recorded requests and goes back to the echo responder. */
    reset() {
      requests.length = 0;
      responder = echoResponse;
    },
    /** Responds to the following requests with `fn(record)`, which returns {status, headers, body}. */
    respondWith(fn) {
      responder = fn;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
