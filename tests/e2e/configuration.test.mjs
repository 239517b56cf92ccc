// Worker instances with broken configuration or an unreachable origin, and the common
// shape of every response the gateway makes itself.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";

import { STARTUP_TIMEOUT_MS, createFixture } from "./support/fixture.mjs";
import {
  assertNoCredentialsChallenge,
  assertNothingForwarded,
  assertProblem,
  send,
  sendRaw,
} from "./support/http.mjs";
import { logLines, waitForLogLines } from "./support/logs.mjs";

/** Instances whose configuration the worker must reject, by name. */
const INVALID_CONFIGURATIONS = {
  "missing-issuer": { JWT_ISSUER: undefined },
  "missing-audience": { JWT_AUDIENCE: undefined },
  "routes-not-json": { ROUTES: "[{\"path\": \"/v1/*\"" },
  "missing-routes": { ROUTES: undefined },
  "cache-seconds-below-30": { ENTITLEMENT_CACHE_SECONDS: "10" },
  "log-requests-unknown": { LOG_REQUESTS: "verbose" },
};

/** Returns a path under /v1/reports/ that no other request uses, to find its log line. */
function uniquePath() {
  return `/v1/reports/log-${randomUUID()}`;
}

/** Returns the worker's per-request log lines for `path`, parsed. */
function requestLogLines(worker, path) {
  return logLines(worker, '"decision"', (line) => line.path === path);
}

/** Waits for the one log line of `path` and returns it. */
async function waitForRequestLogLine(worker, path) {
  const lines = await waitForLogLines(worker, '"decision"', 1, (line) => line.path === path);
  assert.equal(lines.length, 1, `expected one log line for ${path}:\n${worker.output()}`);
  return lines[0];
}

let fixture;
let standard;
let unreachableOrigin;
let customRealm;
let logAll;
let logErrors;
const misconfigured = {};

before(async () => {
  fixture = await createFixture();
  const closedOriginUrl = await fixture.closedOriginUrl();
  const starts = [
    fixture.startWorker({ name: "standard" }).then((worker) => (standard = worker)),
    fixture
      .startWorker({ name: "unreachable-origin", vars: { ORIGIN_URL: closedOriginUrl } })
      .then((worker) => (unreachableOrigin = worker)),
    fixture
      .startWorker({ name: "custom-realm", vars: { AUTH_REALM: "api.example" } })
      .then((worker) => (customRealm = worker)),
    fixture.startWorker({ name: "log-all", vars: { LOG_REQUESTS: "all" } }).then((worker) => (logAll = worker)),
    fixture
      .startWorker({ name: "log-errors", vars: { LOG_REQUESTS: "errors", ORIGIN_URL: closedOriginUrl } })
      .then((worker) => (logErrors = worker)),
    ...Object.entries(INVALID_CONFIGURATIONS).map(([name, vars]) =>
      fixture.startWorker({ name, vars }).then((worker) => (misconfigured[name] = worker)),
    ),
  ];
  await Promise.all(starts);
}, { timeout: STARTUP_TIMEOUT_MS });

after(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  fixture.origin.reset();
});

describe("invalid configuration", () => {
  for (const name of Object.keys(INVALID_CONFIGURATIONS)) {
    test(`${name} gets 500 for an entitled request`, async () => {
      const token = fixture.token({ sub: "user-pro" });

      const response = await send(misconfigured[name], "/v1/reports/summary", { token });

      assertProblem(response, 500);
      assertNothingForwarded(fixture.origin);
    });
  }

  test("invalid configuration does not leak the token", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(misconfigured["routes-not-json"], "/v1/reports/summary", { token });

    assertProblem(response, 500);
    assert.ok(!response.text.includes(token), "the body must not contain the token");
  });
});

describe("unreachable origin", () => {
  test("entitled request gets 502", async () => {
    const token = fixture.token({ sub: "user-pro" });

    const response = await send(unreachableOrigin, "/v1/reports/summary", { token });

    assertProblem(response, 502);
  });

  test("public request gets 502", async () => {
    const response = await send(unreachableOrigin, "/public/hello");

    assertProblem(response, 502);
  });
});

describe("gateway responses", () => {
  test("every denial is problem+json and no-store", async () => {
    const cases = [
      { expected: 400, label: "two Authorization values", request: () =>
        sendRaw(standard, "/v1/reports/summary", {
          rawHeaders: [
            ["Authorization", `Bearer ${fixture.token()}`],
            ["Authorization", `Bearer ${fixture.token()}`],
          ],
        }) },
      { expected: 401, label: "no token", request: () => send(standard, "/v1/reports/summary") },
      { expected: 401, label: "malformed token", request: () => send(standard, "/v1/reports/summary", { token: "a.b.c" }) },
      { expected: 402, label: "free plan", request: () =>
        send(standard, "/v1/reports/summary", { token: fixture.token({ sub: "user-free" }) }) },
      { expected: 403, label: "missing scope", request: () =>
        send(standard, "/v1/admin/x", { token: fixture.token({ sub: "user-pro" }) }) },
      { expected: 404, label: "no route", request: () => send(standard, "/other", { token: fixture.token() }) },
      { expected: 500, label: "broken record", request: () =>
        send(standard, "/v1/reports/x", { token: fixture.token({ sub: "user-broken" }) }) },
      { expected: 500, label: "invalid configuration", request: () =>
        send(misconfigured["missing-issuer"], "/v1/reports/x", { token: fixture.token() }) },
      { expected: 502, label: "unreachable origin", request: () =>
        send(unreachableOrigin, "/v1/reports/x", { token: fixture.token() }) },
    ];

    for (const { expected, label, request } of cases) {
      fixture.origin.reset();
      const response = await request();
      try {
        assertProblem(response, expected);
      } catch (error) {
        error.message = `${label}: ${error.message}`;
        throw error;
      }
      if (expected !== 502) assertNothingForwarded(fixture.origin);
    }
  });

  test("401 challenge defaults realm to request host", async () => {
    const response = await send(standard, "/v1/reports/summary");

    assertProblem(response, 401);
    assertNoCredentialsChallenge(response);
    // The default realm is the request's host name, without the port.
    const challenge = response.headers.get("www-authenticate");
    assert.equal(challenge, 'Bearer realm="127.0.0.1"');
  });

  test("401 challenge uses AUTH_REALM when set", async () => {
    const response = await send(customRealm, "/v1/reports/summary");

    assertProblem(response, 401);
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="api.example"');
  });
});

describe("LOG_REQUESTS", () => {
  // Lines reach the output in request order, so once a later request's line is there,
  // an earlier request that has no line got none.

  test("default logs denials, not forwarded requests", async () => {
    const forwardedPath = uniquePath();
    const deniedPath = uniquePath();

    assert.equal((await send(standard, forwardedPath, { token: fixture.token({ sub: "user-pro" }) })).status, 200);
    assertProblem(await send(standard, deniedPath), 401);

    const denied = await waitForRequestLogLine(standard, deniedPath);
    assert.equal(denied.decision, "deny");
    assert.equal(denied.reason, "credentials_missing");
    assert.deepEqual(requestLogLines(standard, forwardedPath), [], "a forwarded request was logged");
  });

  test("all logs forwarded requests too", async () => {
    const forwardedPath = uniquePath();

    assert.equal((await send(logAll, forwardedPath, { token: fixture.token({ sub: "user-pro" }) })).status, 200);

    const forwarded = await waitForRequestLogLine(logAll, forwardedPath);
    assert.equal(forwarded.decision, "forward");
    assert.equal(forwarded.status, 200);
    assert.equal(forwarded.plan, "pro");
  });

  test("errors logs only 5xx answers", async () => {
    const deniedPath = uniquePath();
    const failedPath = uniquePath();

    assertProblem(await send(logErrors, deniedPath), 401);
    assertProblem(await send(logErrors, failedPath, { token: fixture.token({ sub: "user-pro" }) }), 502);

    const failed = await waitForRequestLogLine(logErrors, failedPath);
    assert.equal(failed.reason, "origin_unreachable");
    assert.ok(failed.detail, `the line says why the origin failed: ${JSON.stringify(failed)}`);
    assert.deepEqual(requestLogLines(logErrors, deniedPath), [], "a 401 was logged");
  });

  test("a public route whose origin fails is logged with the reason", async () => {
    // A public route is decided without awaiting anything, so the 502 for its origin
    // failure comes from the fetch promise's error handler, not from an awaiting one.
    const path = `/public/log-${randomUUID()}`;

    assertProblem(await send(logErrors, path), 502);

    const failed = await waitForRequestLogLine(logErrors, path);
    assert.equal(failed.status, 502);
    assert.equal(failed.reason, "origin_unreachable");
    assert.equal(failed.route, "/public/*");
    assert.ok(failed.detail, `the line says why the origin failed: ${JSON.stringify(failed)}`);
  });
});
