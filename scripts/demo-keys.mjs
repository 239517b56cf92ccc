// Key and token helper for scripts/demo.sh.
//
//   node scripts/demo-keys.mjs prepare DIR
//     Creates DIR/es256-private.jwk.json (an ES256 key) unless it exists, then writes
//     DIR/jwks.json (the public JWK Set, which the demo origin serves at
//     /.well-known/jwks.json) and DIR/entitlements.json (the demo KV records, for
//     `wrangler kv bulk put`). A new key's kid is "demo-es256-" and the start of its
//     RFC 7638 thumbprint, so a new key never reuses the kid of a key set that the
//     gateway may still have in its cache. Keys that earlier versions of this script
//     created keep the kid "demo-es256".
//
//   node scripts/demo-keys.mjs token DIR ISSUER AUDIENCE SUBJECT [LIFETIME_SECONDS]
//     Prints a token for SUBJECT signed with DIR's key, valid for LIFETIME_SECONDS
//     (default 3600).

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { exportPrivateJwk, generateSigningKey, importSigningKey, nowSeconds, signJwt } from "./lib/jwt.mjs";

const KID_PREFIX = "demo-es256";

const ENTITLEMENTS = [
  {
    key: "user-pro",
    value: JSON.stringify({ plan: "pro", status: "active", features: ["reports", "basic"], expires_at: null, grace_until: null }),
  },
  {
    key: "user-free",
    value: JSON.stringify({ plan: "free", status: "active", features: ["basic"], expires_at: null, grace_until: null }),
  },
];

async function prepare(dir) {
  await mkdir(dir, { recursive: true });
  const privatePath = join(dir, "es256-private.jwk.json");
  if (!existsSync(privatePath)) {
    const generated = generateSigningKey("ES256", KID_PREFIX);
    const key = { ...generated, kid: `${KID_PREFIX}-${thumbprint(generated.publicJwk).slice(0, 12)}` };
    await writeFile(privatePath, JSON.stringify(exportPrivateJwk(key)), { mode: 0o600 });
    console.error(`demo keys: created ${privatePath}`);
  }
  const key = importSigningKey(JSON.parse(await readFile(privatePath, "utf8")));
  await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [key.publicJwk] }));
  await writeFile(join(dir, "entitlements.json"), JSON.stringify(ENTITLEMENTS, null, 2));
}

/** Computes the RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key. */
function thumbprint(publicJwk) {
  // The required members in lexicographic order, without white space.
  const canonical = JSON.stringify({ crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y });
  return createHash("sha256").update(canonical).digest("base64url");
}

async function token(dir, issuer, audience, subject, lifetimeSeconds = "3600") {
  const key = importSigningKey(JSON.parse(await readFile(join(dir, "es256-private.jwk.json"), "utf8")));
  const now = nowSeconds();
  const claims = { iss: issuer, aud: audience, sub: subject, iat: now, nbf: now, exp: now + Number(lifetimeSeconds) };
  console.log(signJwt(key, claims));
}

const [command, ...args] = process.argv.slice(2);
if (command === "prepare" && args.length === 1) {
  await prepare(...args);
} else if (command === "token" && (args.length === 4 || args.length === 5)) {
  await token(...args);
} else {
  console.error("usage: node scripts/demo-keys.mjs prepare DIR\n       node scripts/demo-keys.mjs token DIR ISSUER AUDIENCE SUBJECT [LIFETIME_SECONDS]");
  process.exit(2);
}
