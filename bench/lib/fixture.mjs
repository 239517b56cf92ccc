// The benchmark's fixture: the signing keys, bindings and entitlement records of the
// end-to-end tests (tests/e2e/support/fixture.mjs), with the benchmark's own routes and
// a 60 s record cache, the request scenarios, and the tokens sent in them.

import { base64url, generateHmacKey, generateSigningKey, nowSeconds, signJwt } from "../../scripts/lib/jwt.mjs";

export const ISSUER = "https://issuer.example";
export const AUDIENCE = "https://api.example";
export const UPGRADE_URL = "https://billing.example/upgrade?feature={feature}";

export const ROUTES = [
  { path: "/public/*", access: "public" },
  { path: "/v1/pro/*", feature: "reports" },
  { path: "/v1/*", access: "authenticated" },
];

/** The path of every benchmark request; ROUTES gives it the feature `reports`. */
export const REQUEST_PATH = "/v1/pro/report";
export const REQUIRED_FEATURE = "reports";

const PRO_RECORD = { plan: "pro", status: "active", features: ["reports", "basic"], expires_at: null, grace_until: null };
const FREE_RECORD = { plan: "free", status: "active", features: ["basic"], expires_at: null, grace_until: null };

/** Local KV contents, keyed by the `sub` claim. */
export const ENTITLEMENT_RECORDS = {
  "user-pro": JSON.stringify(PRO_RECORD),
  "user-free": JSON.stringify(FREE_RECORD),
};

/** Lifetime of every token, long enough for any run of the benchmark. */
const TOKEN_LIFETIME_SECONDS = 24 * 3600;

/**
 * The request scenarios, in table order. `alg` is null for the scenario without a
 * token; `tamper` corrupts the signature.
 */
export const SCENARIOS = [
  { id: "no-token", label: "no token", expectedStatus: 401, alg: null },
  { id: "es256-bad-signature", label: "ES256, bad signature", expectedStatus: 401, alg: "ES256", sub: "user-pro", tamper: true },
  { id: "es256-no-feature", label: "ES256, plan lacks feature", expectedStatus: 402, alg: "ES256", sub: "user-free" },
  { id: "es256-allowed", label: "ES256, allowed", expectedStatus: 200, alg: "ES256", sub: "user-pro" },
  { id: "hs256-allowed", label: "HS256, allowed", expectedStatus: 200, alg: "HS256", sub: "user-pro" },
  { id: "rs256-allowed", label: "RS256, allowed", expectedStatus: 200, alg: "RS256", sub: "user-pro" },
  { id: "eddsa-allowed", label: "EdDSA, allowed", expectedStatus: 200, alg: "EdDSA", sub: "user-pro" },
];

/**
 * Creates the ES256 (es-1), RS256 (rs-1) and EdDSA (ed-1) key pairs and the HS256
 * secret (hs-1), and returns them with the Worker bindings: `vars` and `secrets`.
 */
export function createBindings(originUrl) {
  const keys = {
    ES256: generateSigningKey("ES256", "es-1"),
    RS256: generateSigningKey("RS256", "rs-1"),
    EdDSA: generateSigningKey("EdDSA", "ed-1"),
    HS256: generateHmacKey("hs-1"),
  };
  const publicKeys = { keys: [keys.ES256.publicJwk, keys.RS256.publicJwk, keys.EdDSA.publicJwk] };
  const vars = {
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_PUBLIC_KEYS: JSON.stringify(publicKeys),
    JWT_HMAC_KID: keys.HS256.kid,
    ENTITLEMENT_CACHE_SECONDS: "60",
    ROUTES: JSON.stringify(ROUTES),
    ORIGIN_URL: originUrl,
    UPGRADE_URL,
  };
  const secrets = { JWT_HMAC_SECRET: keys.HS256.secret };
  return { keys, vars, secrets };
}

/** Flips one bit in the middle of a compact JWS's signature, keeping its length. */
function corruptSignature(token) {
  const [header, payload, signature] = token.split(".");
  const bytes = Buffer.from(signature, "base64url");
  bytes[bytes.length >> 1] ^= 0x01;
  return `${header}.${payload}.${base64url(bytes)}`;
}

/** Signs one token for `scenario`; `jti` makes it distinct from every other token. */
export function mintToken(keys, scenario, jti) {
  const now = nowSeconds();
  const claims = { iss: ISSUER, aud: AUDIENCE, sub: scenario.sub, iat: now, nbf: now, exp: now + TOKEN_LIFETIME_SECONDS, jti };
  const token = signJwt(keys[scenario.alg], claims);
  return scenario.tamper ? corruptSignature(token) : token;
}

/**
 * Mints, for every scenario with a token, the one token of the "same token" runs and
 * a pool of `poolSize` distinct tokens for the "new token" runs. Returns a Map from
 * scenario id to `{ same, pool }`.
 */
export function mintTokens(keys, poolSize) {
  const tokens = new Map();
  for (const scenario of SCENARIOS) {
    if (!scenario.alg) continue;
    const pool = [];
    for (let i = 0; i < poolSize; i++) pool.push(mintToken(keys, scenario, `${scenario.id}-${i}`));
    tokens.set(scenario.id, { same: mintToken(keys, scenario, `${scenario.id}-same`), pool });
  }
  return tokens;
}
