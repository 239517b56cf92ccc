// Child process: the benchmark's origin, a Node HTTP server on 127.0.0.1 that responds
// to every request with 200 and a small JSON body.
//
// GET /__bench/last-request returns the method, URL and headers of the last other
// request it received, so that the correctness check can see what a Worker forwarded.
// Only that one request is kept, so memory stays flat under load.
//
// Usage: node bench/lib/origin-server.mjs. Prints `ready <url>` on stdout once it
// listens, and exits on SIGTERM or SIGINT.

import { createServer } from "node:http";

const BODY = Buffer.from('{"ok":true,"source":"origin"}');
let lastRequest = null;

const server = createServer((req, res) => {
  if (req.url === "/__bench/last-request") {
    const body = Buffer.from(JSON.stringify(lastRequest));
    res.writeHead(200, { "content-type": "application/json", "content-length": String(body.length) });
    res.end(body);
    return;
  }
  lastRequest = { method: req.method, url: req.url, headers: req.headers };
  // Drain a request body, if any, before responding.
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": String(BODY.length) });
    res.end(BODY);
  });
});

function stop() {
  server.closeAllConnections();
  server.close(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`ready http://127.0.0.1:${server.address().port}\n`);
});
