// A local identity provider for the end-to-end tests: a Node HTTP server on 127.0.0.1
// that publishes a JWK Set (RFC 7517) at /jwks.json and an OpenID Connect discovery
// document at /.well-known/openid-configuration. It counts the requests per path, and a
// test can rotate its key, take it down, delay its responses or make it send junk.

import { createServer } from "node:http";

import { generateSigningKey } from "../../../scripts/lib/jwt.mjs";

export const JWKS_PATH = "/jwks.json";
export const DISCOVERY_PATH = "/.well-known/openid-configuration";

/** The maximum delay delayResponses() accepts, so a forgotten server cannot hang a run. */
const MAX_DELAY_MS = 30_000;

/** Bodies that serveJunk() sends in place of the key set, by kind. */
const JUNK_KINDS = ["not-json", "not-a-key-set", "redirect", "oversized"];

/**
 * Starts the key server on a random port. The first signing key has the kid
 * `${kidPrefix}-1`, and each rotate() adds the next number.
 *
 * Returns an object with `url` (the issuer, `http://127.0.0.1:PORT`), `jwksUrl`,
 * `discoveryUrl`, `currentKey` (the newest signing key, as made by generateSigningKey)
 * and the methods below.
 */
export async function startKeyServer({ alg = "ES256", kidPrefix = "idp" } = {}) {
  let keyNumber = 1;
  let currentKey = generateSigningKey(alg, `${kidPrefix}-${keyNumber}`);
  let publishedKeys = [currentKey.publicJwk];
  let maxAgeSeconds = null;
  let discoveryIssuer = null;
  let outage = null;
  let delayMs = 0;
  let junk = null;

  const requests = [];
  const pendingDelays = new Set();
  let baseUrl = "";

  /** Waits `ms`, or less when the client goes away or the server closes. */
  function waitOrAbort(ms, res) {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        pendingDelays.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      pendingDelays.add(finish);
      res.once("close", finish);
    });
  }

  function keySetResponse() {
    const headers = { "content-type": "application/json" };
    if (maxAgeSeconds !== null) headers["cache-control"] = `max-age=${maxAgeSeconds}`;
    switch (junk) {
      case "not-json":
        return { status: 200, headers: { "content-type": "text/html" }, body: "<html><body>Sign in</body></html>" };
      case "not-a-key-set":
        return { status: 200, headers, body: JSON.stringify({ issuer: baseUrl, keys_moved: true }) };
      case "redirect":
        return { status: 302, headers: { location: `${baseUrl}/moved/jwks.json` }, body: "" };
      case "oversized": {
        // A valid key set padded past the gateway's 256 KiB limit with an ignored member.
        const padding = "x".repeat(300 * 1024);
        return { status: 200, headers, body: JSON.stringify({ keys: publishedKeys, padding }) };
      }
      default:
        return { status: 200, headers, body: JSON.stringify({ keys: publishedKeys }) };
    }
  }

  function discoveryResponse() {
    const document = {
      issuer: discoveryIssuer ?? baseUrl,
      jwks_uri: `${baseUrl}${JWKS_PATH}`,
      id_token_signing_alg_values_supported: [alg],
    };
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(document) };
  }

  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://key-server.invalid").pathname;
    requests.push({ method: req.method, path, at: Date.now() });

    if (outage === "reset") {
      req.socket.destroy();
      return;
    }
    if (delayMs > 0) {
      await waitOrAbort(delayMs, res);
      if (res.destroyed || res.writableEnded) return;
    }

    let response;
    if (outage === "unavailable") {
      response = { status: 503, headers: { "content-type": "text/plain", "retry-after": "10" }, body: "maintenance" };
    } else if (path === JWKS_PATH) {
      response = keySetResponse();
    } else if (path === DISCOVERY_PATH) {
      response = discoveryResponse();
    } else {
      response = { status: 404, headers: { "content-type": "text/plain" }, body: "not found" };
    }
    const body = Buffer.from(response.body);
    res.writeHead(response.status, { ...response.headers, "content-length": String(body.length) });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  // Keep-alive sockets from the Workers runtime would hold close() open.
  server.keepAliveTimeout = 1000;

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    port,
    url: baseUrl,
    jwksUrl: `${baseUrl}${JWKS_PATH}`,
    discoveryUrl: `${baseUrl}${DISCOVERY_PATH}`,

    /** The newest signing key; tokens signed with it pass once the gateway has the set. */
    get currentKey() {
      return currentKey;
    },

    /** Every request received, oldest first: `{ method, path, at }` (at in ms). */
    requests,

    /** Returns how many requests arrived for `path` (default: the key set). */
    count(path = JWKS_PATH) {
      return requests.filter((request) => request.path === path).length;
    },

    /**
     * Replaces the signing key with a new one under the next kid and returns it. With
     * `keepPrevious`, the old public key stays in the set beside the new one.
     */
    rotate({ keepPrevious = true } = {}) {
      keyNumber += 1;
      currentKey = generateSigningKey(alg, `${kidPrefix}-${keyNumber}`);
      publishedKeys = keepPrevious ? [...publishedKeys, currentKey.publicJwk] : [currentKey.publicJwk];
      return currentKey;
    },

    /** Publishes exactly these public JWKs in place of the server's own keys. */
    publishKeys(jwks) {
      publishedKeys = [...jwks];
    },

    /**
     * Starts an outage: `reset` closes every connection without a response, and
     * `unavailable` responds to every request with 503. Open keep-alive connections close.
     */
    startOutage(mode = "reset") {
      if (mode !== "reset" && mode !== "unavailable") {
        throw new Error(`unknown outage mode ${JSON.stringify(mode)}: expected "reset" or "unavailable"`);
      }
      outage = mode;
      server.closeAllConnections();
    },

    /** Ends an outage started by startOutage(). */
    endOutage() {
      outage = null;
    },

    /** Delays every response by `ms` (0 to stop), at most 30 s. */
    delayResponses(ms) {
      if (!(ms >= 0 && ms <= MAX_DELAY_MS)) {
        throw new Error(`delay ${ms} ms is out of range: expected 0 to ${MAX_DELAY_MS} ms`);
      }
      delayMs = ms;
    },

    /**
     * Responds to the key set path with junk of `kind`: `not-json` (an HTML page),
     * `not-a-key-set` (JSON without a keys array), `redirect` (302 to another path on this
     * server) or `oversized` (a key set padded to 300 KiB). `null` restores the key set.
     */
    serveJunk(kind) {
      if (kind !== null && !JUNK_KINDS.includes(kind)) {
        throw new Error(`unknown junk kind ${JSON.stringify(kind)}: expected one of ${JUNK_KINDS.join(", ")} or null`);
      }
      junk = kind;
    },

    /** Sends `Cache-Control: max-age=SECONDS` with the key set, or no Cache-Control for null. */
    setMaxAge(seconds) {
      maxAgeSeconds = seconds;
    },

    /** Names `issuer` in the discovery document in place of the server's own URL (null restores it). */
    setDiscoveryIssuer(issuer) {
      discoveryIssuer = issuer;
    },

    /** Ends pending delays, closes every connection and stops listening. */
    async close() {
      for (const finish of [...pendingDelays]) finish();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
