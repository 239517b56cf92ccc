// Signatures checked with the Workers runtime's WebCrypto: a valid and a tampered
// token of every asymmetric algorithm, signed with node:crypto. The expected statuses
// are the verdicts of jwt-simple on the same kinds of token, which the native test
// tests/deferred_signatures.rs compares with the deferred path: valid tokens pass,
// tampered ones get 401 invalid_token.

import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { generateSigningKey } from "../../scripts/lib/jwt.mjs";
import { STARTUP_TIMEOUT_MS, createFixture } from "./support/fixture.mjs";
import { assertErrorChallenge, assertFromOrigin, assertNothingForwarded, assertProblem, describeResponse, send } from "./support/http.mjs";

const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

let fixture;
let worker;
const keys = {};

before(async () => {
  fixture = await createFixture();
  for (const alg of ALGORITHMS) {
    keys[alg] = generateSigningKey(alg, `webcrypto-${alg.toLowerCase()}`);
  }
  const publicKeys = { keys: ALGORITHMS.map((alg) => keys[alg].publicJwk) };
  worker = await fixture.startWorker({ name: "webcrypto", vars: { JWT_PUBLIC_KEYS: JSON.stringify(publicKeys) } });
}, { timeout: STARTUP_TIMEOUT_MS });

after(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  fixture.origin.reset();
});

/** Changes one character in the middle of the signature, keeping it base64url. */
function tamperSignature(token) {
  const start = token.lastIndexOf(".") + 1;
  const middle = start + Math.floor((token.length - start) / 2);
  const replacement = token[middle] === "A" ? "B" : "A";
  return token.slice(0, middle) + replacement + token.slice(middle + 1);
}

/** Replaces the claims of a signed token, keeping its header and signature. */
function swapClaims(token, claims) {
  const [header, , signature] = token.split(".");
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
}

describe("WebCrypto signature checks", () => {
  for (const alg of ALGORITHMS) {
    test(`${alg} valid token is forwarded`, async () => {
      const response = await send(worker, "/v1/reports/summary", { token: fixture.token({ key: keys[alg] }) });

      assert.equal(response.status, 200, describeResponse(response));
      assertFromOrigin(response);
      assert.equal(fixture.origin.requests.at(-1)?.headers["x-tollgate-subject"], "user-pro");
    });

    test(`${alg} valid token passes again from the token cache`, async () => {
      const token = fixture.token({ key: keys[alg], sub: "user-free" });
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await send(worker, "/v1/basic", { token });
        assert.equal(response.status, 200, `attempt ${attempt}: ${describeResponse(response)}`);
      }
    });

    test(`${alg} tampered signature gets 401`, async () => {
      const token = tamperSignature(fixture.token({ key: keys[alg] }));
      const response = await send(worker, "/v1/reports/summary", { token });

      assertProblem(response, 401);
      assertErrorChallenge(response, "invalid_token");
      assertNothingForwarded(fixture.origin);
    });

    test(`${alg} tampered claims get 401`, async () => {
      const now = Math.floor(Date.now() / 1000);
      const signed = fixture.token({ key: keys[alg], sub: "user-free" });
      const token = swapClaims(signed, {
        iss: "https://issuer.example",
        aud: "https://api.example",
        sub: "user-pro",
        iat: now,
        exp: now + 600,
      });
      const response = await send(worker, "/v1/reports/summary", { token });

      assertProblem(response, 401);
      assertErrorChallenge(response, "invalid_token");
      assertNothingForwarded(fixture.origin);
    });

    test(`${alg} expired token with a valid signature gets 401`, async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = fixture.token({ key: keys[alg], claims: { iat: now - 7200, nbf: now - 7200, exp: now - 3600 } });
      const response = await send(worker, "/v1/reports/summary", { token });

      assertProblem(response, 401);
      assertErrorChallenge(response, "invalid_token");
      assert.match(response.headers.get("www-authenticate") ?? "", /expired/);
    });
  }

  test("a token signed by another key of the same algorithm gets 401", async () => {
    const other = generateSigningKey("ES256", keys.ES256.kid);
    const response = await send(worker, "/v1/reports/summary", { token: fixture.token({ key: other }) });

    assertProblem(response, 401);
    assertErrorChallenge(response, "invalid_token");
  });
});
