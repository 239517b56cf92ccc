// Demo API origin for scripts/demo.sh. It responds to every request with JSON that
// echoes the method, path, query, the X-Tollgate-* headers it received and the body
// length, and listens on 127.0.0.1 only. Given a JWK Set file, it also plays the
// identity provider and serves that file at /.well-known/jwks.json, read anew on
// every request.
//
// Usage: node scripts/demo-origin.mjs [PORT [JWKS_FILE]]   (default port 8788)

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";

const JWKS_PATH = "/.well-known/jwks.json";

const port = Number(process.argv[2] ?? 8788);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`demo origin: invalid port ${JSON.stringify(process.argv[2])}; expected 1-65535`);
  process.exit(2);
}
const jwksFile = process.argv[3];

/** Sends the JWK Set file, or 500 with the reason when it cannot be read. */
async function sendKeySet(req, res) {
  let body;
  try {
    body = await readFile(jwksFile);
  } catch (error) {
    console.error(`demo origin: cannot read the JWK Set ${jwksFile}: ${error.message}`);
    const message = `cannot read ${jwksFile}\n`;
    res.writeHead(500, { "content-type": "text/plain", "content-length": Buffer.byteLength(message) });
    res.end(message);
    return;
  }
  res.writeHead(200, { "content-type": "application/jwk-set+json", "content-length": body.length });
  res.end(req.method === "HEAD" ? undefined : body);
}

const server = createServer(async (req, res) => {
  let bodyLength = 0;
  for await (const chunk of req) bodyLength += chunk.length;

  const url = new URL(req.url, "http://origin.invalid");
  if (jwksFile && url.pathname === JWKS_PATH && (req.method === "GET" || req.method === "HEAD")) {
    await sendKeySet(req, res);
    return;
  }
  const tollgateHeaders = Object.fromEntries(
    Object.entries(req.headers).filter(([name]) => name.startsWith("x-tollgate-")),
  );
  // One line per request that reached the origin, so a denial can be seen to forward nothing.
  console.log(`demo origin: received ${req.method} ${url.pathname}${url.search} (${bodyLength} body bytes)`);
  const body = JSON.stringify(
    {
      origin: "tollgate demo origin",
      method: req.method,
      path: url.pathname,
      query: url.search,
      tollgate_headers: tollgateHeaders,
      authorization_received: req.headers.authorization !== undefined,
      body_length: bodyLength,
    },
    null,
    2,
  );
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
});

server.on("error", (error) => {
  console.error(`demo origin: cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`demo origin: listening on http://127.0.0.1:${port}`);
  if (jwksFile) console.log(`demo origin: serving ${jwksFile} at http://127.0.0.1:${port}${JWKS_PATH}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
  });
}
