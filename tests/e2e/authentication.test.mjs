// Bearer token handling of the whole worker: challenges, signature and claim checks,
// the accepted algorithms, scopes, and the requests that skip authentication.

import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { generateSigningKey } from "../../scripts/lib/jwt.mjs";
import { STARTUP_TIMEOUT_MS, createFixture } from "./support/fixture.mjs";
import {
  assertErrorChallenge,
  assertForwardedOnce,
  assertFromOrigin,
  assertNoCredentialsChallenge,
  assertNothingForwarded,
  assertProblem,
  describeResponse,
  send,
  sendRaw,
} from "./support/http.mjs";

let fixture;
let worker;

before(async () => {
  fixture = await createFixture();
  worker = await fixture.startWorker({ name: "standard" });
}, { timeout: STARTUP_TIMEOUT_MS });

after(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  fixture.origin.reset();
});

/** Replaces the last character of a compact JWS with another base64url character. */
function tamperLastCharacter(token) {
  const last = token.at(-1);
  return token.slice(0, -1) + (last === "A" ? "Q" : "A");
}

/** Asserts that `text` appears in no response header and not in the body. */
function assertNotReflected(response, text) {
  for (const [name, value] of response.headers) {
    assert.ok(!value.includes(text), `response header ${name} contains the token`);
  }
  assert.ok(!response.text.includes(text), "response body contains the token");
}

describe("missing credentials", () => {
  test("no Authorization header gets 401 with a bare challenge", async () => {
    const response = await send(worker, "/v1/reports/summary");

    assertProblem(response, 401);
    assertNoCredentialsChallenge(response);
    assertNothingForwarded(fixture.origin);
  });

  test("POST with a body and no token forwards nothing", async () => {
    const response = await send(worker, "/v1/reports/upload", { method: "POST", body: "x".repeat(1024) });

    assertProblem(response, 401);
    assertNoCredentialsChallenge(response);
    assertNothingForwarded(fixture.origin);
  });

  test("HEAD on a 401 has the GET headers and no body", async () => {
    const get = await send(worker, "/v1/reports/summary");
    const head = await send(worker, "/v1/reports/summary", { method: "HEAD" });

    assert.equal(head.status, 401, describeResponse(head));
    for (const name of ["content-type", "cache-control", "www-authenticate"]) {
      assert.equal(head.headers.get(name), get.headers.get(name), `HEAD ${name}\n${describeResponse(head)}`);
    }
    if (head.headers.has("content-length")) {
      assert.equal(head.headers.get("content-length"), get.headers.get("content-length"), "HEAD Content-Length must match GET");
    }
    assert.equal(head.body.length, 0, "HEAD response must have no body");
    assertNothingForwarded(fixture.origin);
  });
});

describe("invalid tokens", () => {
  test("changed signature character gets 401 invalid_token", async () => {
    const token = tamperLastCharacter(fixture.token({ sub: "user-pro" }));
    const outputBefore = worker.output().length;

    const response = await send(worker, "/v1/reports/summary", { token });

    assertProblem(response, 401);
    const challenge = assertErrorChallenge(response, "invalid_token");
    assert.match(challenge, /error_description="[^"]+"/, `WWW-Authenticate must carry error_description: ${challenge}`);
    assertNotReflected(response, token);
    assertNothingForwarded(fixture.origin);

    // The worker's per-request log line reaches wrangler's output asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const logged = worker.output().slice(outputBefore);
    assert.ok(!logged.includes(token), "the token must not appear in the worker's log output");
    assert.ok(!logged.includes(token.split(".")[2]), "the token's signature must not appear in the worker's log output");
  });

  test("token signed by an unknown key under a known kid gets 401", async () => {
    const otherKey = generateSigningKey("ES256", "es-1");
    const token = fixture.token({ sub: "user-pro", key: otherKey });

    const response = await send(worker, "/v1/reports/summary", { token });

    assertProblem(response, 401);
    assertErrorChallenge(response, "invalid_token");
    assertNotReflected(response, token);
    assertNothingForwarded(fixture.origin);
  });

  test("expired token gets 401 invalid_token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = fixture.token({ sub: "user-pro", claims: { iat: now - 1200, nbf: now - 1200, exp: now - 600 } });

    const response = await send(worker, "/v1/reports/summary", { token });

    assertProblem(response, 401);
    assertErrorChallenge(response, "invalid_token");
    assertNothingForwarded(fixture.origin);
  });

  const authorizationPairs = {
    "two valid tokens": () => [fixture.token(), fixture.token()],
    "valid then invalid": () => [fixture.token(), "a.b.c"],
    "invalid then valid": () => ["a.b.c", fixture.token()],
  };
  for (const [label, makeTokens] of Object.entries(authorizationPairs)) {
    test(`two Authorization fields (${label}) get 400`, async () => {
      const [first, second] = makeTokens();

      const response = await sendRaw(worker, "/v1/reports/summary", {
        rawHeaders: [
          ["Authorization", `Bearer ${first}`],
          ["Authorization", `Bearer ${second}`],
        ],
      });

      assertProblem(response, 400);
      assertErrorChallenge(response, "invalid_request");
      assertNothingForwarded(fixture.origin);
    });
  }
});

describe("accepted algorithms", () => {
  for (const alg of ["ES256", "RS256", "EdDSA", "HS256"]) {
    test(`${alg} token gets 200`, async () => {
      const token = fixture.token({ sub: "user-pro", alg });

      const response = await send(worker, "/v1/reports/summary", { token });

      assertFromOrigin(response);
      const forwarded = assertForwardedOnce(fixture.origin);
      assert.equal(forwarded.headers["x-tollgate-subject"], "user-pro");
    });
  }
});

describe("scopes", () => {
  test("token with admin scope reaches admin route", async () => {
    const token = fixture.token({ sub: "user-free", claims: { scope: "read admin" } });

    const response = await send(worker, "/v1/admin/x", { token });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.path, "/v1/admin/x");
  });

  test("token without admin scope gets 403", async () => {
    const token = fixture.token({ sub: "user-pro", claims: { scope: "read write" } });

    const response = await send(worker, "/v1/admin/x", { token });

    assertProblem(response, 403);
    const challenge = assertErrorChallenge(response, "insufficient_scope");
    assert.ok(challenge.includes('scope="admin"'), `WWW-Authenticate must name the scope: ${challenge}`);
    assertNothingForwarded(fixture.origin);
  });

  test("token with no scope claim gets 403", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/v1/admin/x", { token });

    assertProblem(response, 403);
    assertErrorChallenge(response, "insufficient_scope");
    assertNothingForwarded(fixture.origin);
  });
});

describe("CORS preflight", () => {
  test("preflight without token is forwarded", async () => {
    const response = await send(worker, "/v1/reports/x", {
      method: "OPTIONS",
      headers: { Origin: "https://app.example", "Access-Control-Request-Method": "POST" },
    });

    assert.equal(response.status, 200, describeResponse(response));
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.method, "OPTIONS");
    assert.equal(forwarded.path, "/v1/reports/x");
    assert.equal(forwarded.headers["access-control-request-method"], "POST");
  });

  test("bare OPTIONS without token gets 401", async () => {
    const response = await send(worker, "/v1/reports/x", { method: "OPTIONS" });

    assertProblem(response, 401);
    assertNoCredentialsChallenge(response);
    assertNothingForwarded(fixture.origin);
  });
});
