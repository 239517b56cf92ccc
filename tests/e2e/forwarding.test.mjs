// What the origin receives from the whole worker and what the client gets back:
// method, path, query and body intact, credentials and spoofed identity headers
// removed, the gateway's identity headers added, caching and redirects of responses,
// public and unmatched routes.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";

import { STARTUP_TIMEOUT_MS, createFixture } from "./support/fixture.mjs";
import {
  assertForwardedOnce,
  assertFromOrigin,
  assertNothingForwarded,
  assertProblem,
  describeResponse,
  send,
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

/** Lists the header names the origin received, in lower case, as often as received. */
function receivedHeaderNames(forwarded) {
  return forwarded.rawHeaders.filter((_, index) => index % 2 === 0).map((name) => name.toLowerCase());
}

/** Asserts the gateway's identity headers for user-pro, each received exactly once. */
function assertProIdentityHeaders(forwarded) {
  const names = receivedHeaderNames(forwarded);
  for (const name of ["x-tollgate-subject", "x-tollgate-plan", "x-tollgate-features"]) {
    assert.equal(names.filter((received) => received === name).length, 1, `${name} must arrive exactly once: ${names}`);
  }
  assert.equal(forwarded.headers["x-tollgate-subject"], "user-pro");
  assert.equal(forwarded.headers["x-tollgate-plan"], "pro");
  assert.equal(forwarded.headers["x-tollgate-features"], "reports,basic");
}

describe("entitled requests", () => {
  test("GET with query reaches origin unchanged", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/v1/reports/x?a=1&b=2", { token });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.method, "GET");
    assert.equal(forwarded.path, "/v1/reports/x");
    assert.equal(forwarded.query, "?a=1&b=2");
    assert.equal(forwarded.bodyLength, 0);
    assert.equal(forwarded.headers.authorization, undefined, "Authorization must not reach the origin");
    assertProIdentityHeaders(forwarded);
  });

  test("POST body reaches origin byte for byte", async () => {
    const token = fixture.token({ sub: "user-pro" });
    const body = randomBytes(256 * 1024);
    const sha256 = createHash("sha256").update(body).digest("hex");

    const response = await send(worker, "/v1/reports/x?a=1&b=2", {
      method: "POST",
      token,
      headers: { "content-type": "application/octet-stream" },
      body,
    });

    assertFromOrigin(response);
    assert.equal(response.json().bodySha256, sha256, "the client must get the origin's body");
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.method, "POST");
    assert.equal(forwarded.path, "/v1/reports/x");
    assert.equal(forwarded.query, "?a=1&b=2");
    assert.equal(forwarded.bodyLength, body.length);
    assert.equal(forwarded.bodySha256, sha256);
    assert.equal(forwarded.headers["content-type"], "application/octet-stream");
    assert.equal(forwarded.headers.authorization, undefined, "Authorization must not reach the origin");
    assertProIdentityHeaders(forwarded);
  });

  test("client identity headers are replaced", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/v1/reports/x", {
      token,
      headers: {
        "X-Tollgate-Subject": "user-admin",
        "x-tollgate-plan": "enterprise",
        "X-TOLLGATE-FEATURES": "reports,admin,everything",
        "X-Tollgate-Anything": "spoofed",
      },
    });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assertProIdentityHeaders(forwarded);
    assert.equal(forwarded.headers["x-tollgate-anything"], undefined, "X-Tollgate-Anything must be removed");
    const values = Object.values(forwarded.headers).join("\n");
    for (const spoofed of ["user-admin", "enterprise", "everything", "spoofed"]) {
      assert.ok(!values.includes(spoofed), `the origin received the spoofed value ${spoofed}`);
    }
  });

  test("Proxy-Authorization is removed", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/v1/reports/x", {
      token,
      headers: { "Proxy-Authorization": "Basic dXNlcjpwYXNz" },
    });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.headers["proxy-authorization"], undefined);
    assert.equal(forwarded.headers.authorization, undefined);
  });
});

describe("origin response headers", () => {
  // workerd removes hop-by-hop fields (Connection, Keep-Alive and those Connection
  // names) on both sides before the Worker receives them, so the gateway's own filter is
  // covered by the unit tests in src/forward.rs, not here.
  test("every origin field reaches the client, repeated Set-Cookie included", async () => {
    const token = fixture.token({ sub: "user-pro" });
    fixture.origin.respondWith(() => ({
      status: 200,
      headers: {
        "content-type": "text/plain",
        "x-origin-kept": "1",
        "set-cookie": ["a=1; Path=/", "b=2; Path=/"],
      },
      body: "ok",
    }));

    const response = await send(worker, "/v1/reports/x", { token });

    assert.equal(response.status, 200, describeResponse(response));
    assert.equal(response.text, "ok");
    assert.equal(response.headers.get("x-origin-kept"), "1", describeResponse(response));
    assert.deepEqual(response.headers.getSetCookie(), ["a=1; Path=/", "b=2; Path=/"]);
    assert.equal(response.headers.get("cache-control"), "private", describeResponse(response));
  });
});

describe("response caching headers", () => {
  test("origin without Cache-Control gets private", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/v1/reports/x", { token });

    assertFromOrigin(response);
    assert.equal(response.headers.get("cache-control"), "private", describeResponse(response));
  });

  test("origin Cache-Control is passed through", async () => {
    const token = fixture.token({ sub: "user-pro" });
    fixture.origin.respondWith(() => ({
      status: 200,
      headers: { "content-type": "text/plain", "cache-control": "public, max-age=60" },
      body: "cacheable",
    }));

    const response = await send(worker, "/v1/reports/x", { token });

    assert.equal(response.status, 200, describeResponse(response));
    assert.equal(response.text, "cacheable");
    assert.equal(response.headers.get("cache-control"), "public, max-age=60", describeResponse(response));
  });
});

describe("origin redirects", () => {
  test("302 is relayed, not followed", async () => {
    const token = fixture.token({ sub: "user-pro" });
    const location = `${fixture.origin.url}/v1/reports/elsewhere`;
    fixture.origin.respondWith(() => ({ status: 302, headers: { location }, body: "" }));

    const response = await send(worker, "/v1/reports/x", { token });

    assert.equal(response.status, 302, describeResponse(response));
    assert.equal(response.headers.get("location"), location);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.path, "/v1/reports/x");
  });
});

describe("public routes", () => {
  test("public route without token gets 200", async () => {
    const response = await send(worker, "/public/hello");

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.method, "GET");
    assert.equal(forwarded.path, "/public/hello");
  });

  test("public route drops the client's token", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/public/hello", {
      token,
      headers: { "X-Tollgate-Subject": "user-admin", "X-Tollgate-Plan": "enterprise" },
    });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.headers.authorization, undefined, "Authorization must not reach the origin");
    assert.notEqual(forwarded.headers["x-tollgate-subject"], "user-admin", "spoofed X-Tollgate-Subject reached the origin");
    assert.notEqual(forwarded.headers["x-tollgate-plan"], "enterprise", "spoofed X-Tollgate-Plan reached the origin");
  });
});

describe("unmatched routes", () => {
  test("path without rule gets 404", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(worker, "/other", { token });

    assertProblem(response, 404);
    assertNothingForwarded(fixture.origin);
  });

  test("path without rule and no token gets 404", async () => {
    const response = await send(worker, "/other");

    assertProblem(response, 404);
    assertNothingForwarded(fixture.origin);
  });
});
