// Creates signing keys and signs JSON Web Tokens (RFC 7519) with node:crypto only.
// Used by scripts/demo.sh and by the end-to-end tests.

import {
  constants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
} from "node:crypto";

/** Encodes a Buffer or string as base64url without padding (RFC 7515, section 2). */
export function base64url(data) {
  return Buffer.from(data).toString("base64url");
}

const RSA_2048 = { type: "rsa", options: { modulusLength: 2048 } };

const ASYMMETRIC_ALGORITHMS = {
  ES256: { type: "ec", options: { namedCurve: "P-256" } },
  ES384: { type: "ec", options: { namedCurve: "P-384" } },
  RS256: RSA_2048,
  RS384: RSA_2048,
  RS512: RSA_2048,
  PS256: RSA_2048,
  PS384: RSA_2048,
  PS512: RSA_2048,
  EdDSA: { type: "ed25519", options: {} },
};

/** The hash of each RSA and ECDSA algorithm, as node:crypto names it. */
const HASHES = {
  ES256: "sha256",
  ES384: "sha384",
  RS256: "sha256",
  RS384: "sha384",
  RS512: "sha512",
  PS256: "sha256",
  PS384: "sha384",
  PS512: "sha512",
};

/**
 * Generates an asymmetric key pair for `alg` (RS256, RS384, RS512, PS256, PS384,
 * PS512, ES256, ES384 or EdDSA). Returns
 * `{ alg, kid, privateKey, publicJwk }`, where publicJwk carries kid, alg and use.
 */
export function generateSigningKey(alg, kid) {
  const spec = ASYMMETRIC_ALGORITHMS[alg];
  if (!spec) {
    throw new Error(`unsupported algorithm ${alg}: expected one of ${Object.keys(ASYMMETRIC_ALGORITHMS).join(", ")}`);
  }
  const { privateKey, publicKey } = generateKeyPairSync(spec.type, spec.options);
  const publicJwk = { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicJwk };
}

/**
 * Generates an HMAC key. The secret is text (base64url of `byteLength` random bytes),
 * because the worker reads it from a variable; the MAC key is its UTF-8 bytes.
 */
export function generateHmacKey(kid, byteLength = 32) {
  return { alg: "HS256", kid, secret: base64url(randomBytes(byteLength)) };
}

/** Serializes a private key as a JWK, so that it can be stored and loaded later. */
export function exportPrivateJwk(key) {
  return { ...key.privateKey.export({ format: "jwk" }), kid: key.kid, alg: key.alg };
}

/** Rebuilds a key made by generateSigningKey from the output of exportPrivateJwk. */
export function importSigningKey(privateJwk) {
  const privateKey = createPrivateKey({ key: privateJwk, format: "jwk" });
  const publicJwk = {
    ...createPublicKey(privateKey).export({ format: "jwk" }),
    kid: privateJwk.kid,
    alg: privateJwk.alg,
    use: "sig",
  };
  return { alg: privateJwk.alg, kid: privateJwk.kid, privateKey, publicJwk };
}

/** Computes the JWS signature of `signingInput` (the "header.payload" text) with `key`. */
export function signBytes(key, signingInput) {
  const data = Buffer.from(signingInput);
  switch (key.alg) {
    case "ES256":
    case "ES384":
      // JWS wants the raw r||s form (RFC 7518, section 3.4), not DER.
      return sign(HASHES[key.alg], data, { key: key.privateKey, dsaEncoding: "ieee-p1363" });
    case "RS256":
    case "RS384":
    case "RS512":
      return sign(HASHES[key.alg], data, key.privateKey);
    case "PS256":
    case "PS384":
    case "PS512":
      // RFC 7518, section 3.5: the salt is as long as the hash. node:crypto's default
      // is the longest salt that fits.
      return sign(HASHES[key.alg], data, {
        key: key.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    case "EdDSA":
      return sign(null, data, key.privateKey);
    case "HS256":
      return createHmac("sha256", Buffer.from(key.secret, "utf8")).update(data).digest();
    default:
      throw new Error(`unsupported algorithm ${key.alg}`);
  }
}

/**
 * Signs a compact JWS. The header defaults to {alg: key.alg, typ: "JWT", kid: key.kid};
 * `headerOverrides` replaces or adds members (a member set to undefined is dropped).
 */
export function signJwt(key, claims, headerOverrides = {}) {
  const header = { alg: key.alg, typ: "JWT", kid: key.kid, ...headerOverrides };
  for (const name of Object.keys(header)) {
    if (header[name] === undefined) delete header[name];
  }
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${base64url(signBytes(key, signingInput))}`;
}

/** Returns the current time in whole seconds since the Unix epoch, as JWT claims use. */
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}
