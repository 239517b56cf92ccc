// Entitlement checks of the whole worker against records in the local KV namespace:
// 402 for callers whose plan lacks a feature, errors for unreadable records, and
// records that change while the worker runs: at once with ENTITLEMENT_CACHE_SECONDS=0
// (the standard instance), after the cache time with ENTITLEMENT_CACHE_SECONDS=30.

import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { ENTITLEMENT_RECORDS, FREE_RECORD, PRO_RECORD, STARTUP_TIMEOUT_MS, createFixture } from "./support/fixture.mjs";
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
  fixture = await createFixture({
    kvEntries: {
      ...ENTITLEMENT_RECORDS,
      "user-upgrade": JSON.stringify(FREE_RECORD),
      "user-cached": JSON.stringify(FREE_RECORD),
    },
  });
  worker = await fixture.startWorker({ name: "standard" });
}, { timeout: STARTUP_TIMEOUT_MS });

after(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  fixture.origin.reset();
});

describe("payment required", () => {
  test("free plan on reports gets 402", async () => {
    const token = fixture.token({ sub: "user-free" });

    const response = await send(worker, "/v1/reports/summary", { token });

    const problem = assertProblem(response, 402);
    assert.equal(problem.feature, "reports");
    assert.equal(problem.plan, "free");
    assert.equal(problem.subscription_status, "active");
    assert.equal(problem.upgrade_url, "https://billing.example/upgrade?feature=reports");
    assertNothingForwarded(fixture.origin);
  });

  test("free plan POST with body forwards nothing", async () => {
    const token = fixture.token({ sub: "user-free" });

    const response = await send(worker, "/v1/reports/x", { method: "POST", token, body: "y".repeat(4096) });

    assertProblem(response, 402);
    assertNothingForwarded(fixture.origin);
  });

  test("caller without record on reports gets 402 plan none", async () => {
    const token = fixture.token({ sub: "user-none" });

    const response = await send(worker, "/v1/reports/x", { token });

    const problem = assertProblem(response, 402);
    assert.equal(problem.feature, "reports");
    assert.equal(problem.plan, "none");
    assert.equal(problem.upgrade_url, "https://billing.example/upgrade?feature=reports");
    assertNothingForwarded(fixture.origin);
  });

  test("402 is not cached and a later 200 is fresh", async () => {
    const denied = await send(worker, "/v1/reports/summary", { token: fixture.token({ sub: "user-free" }) });
    const allowed = await send(worker, "/v1/reports/summary", { token: fixture.token({ sub: "user-pro" }) });

    assertProblem(denied, 402);
    assertFromOrigin(allowed);
    assertForwardedOnce(fixture.origin);
  });
});

describe("authenticated-only routes", () => {
  test("caller without record gets 200", async () => {
    const token = fixture.token({ sub: "user-none" });

    const response = await send(worker, "/v1/anything", { token });

    assertFromOrigin(response);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.path, "/v1/anything");
    assert.equal(forwarded.headers["x-tollgate-subject"], "user-none");
    assert.equal(forwarded.headers.authorization, undefined);
  });
});

describe("unreadable records", () => {
  test("record that is not JSON gets 500", async () => {
    const token = fixture.token({ sub: "user-broken" });

    const response = await send(worker, "/v1/reports/x", { token });

    assertProblem(response, 500);
    assertNothingForwarded(fixture.origin);
  });
});

describe("record changes", () => {
  test("upgrade in KV applies to next request", async () => {
    const before = await send(worker, "/v1/reports/summary", { token: fixture.token({ sub: "user-upgrade" }) });
    assertProblem(before, 402);
    assertNothingForwarded(fixture.origin);

    await fixture.putEntitlement("user-upgrade", PRO_RECORD);
    const after = await send(worker, "/v1/reports/summary", { token: fixture.token({ sub: "user-upgrade" }) });

    assert.equal(after.status, 200, describeResponse(after));
    assertFromOrigin(after);
    const forwarded = assertForwardedOnce(fixture.origin);
    assert.equal(forwarded.headers["x-tollgate-plan"], "pro");
    assert.equal(forwarded.headers["x-tollgate-features"], "reports,basic");
  });
});

describe("record cache", () => {
  const CACHE_SECONDS = 30;

  test("changed record applies after cache time", { timeout: 120_000 }, async () => {
    const cached = await fixture.startWorker({
      name: "cached",
      vars: { ENTITLEMENT_CACHE_SECONDS: String(CACHE_SECONDS) },
    });
    const request = () => send(cached, "/v1/reports/summary", { token: fixture.token({ sub: "user-cached" }) });

    const first = await request();
    const firstReadAt = Date.now();
    assertProblem(first, 402);

    await fixture.putEntitlement("user-cached", PRO_RECORD);
    const cachedAnswer = await request();
    assert.ok(Date.now() - firstReadAt < CACHE_SECONDS * 1000, "the KV write took longer than the cache time");
    assertProblem(cachedAnswer, 402);

    await new Promise((resolve) => setTimeout(resolve, firstReadAt + (CACHE_SECONDS + 1) * 1000 - Date.now()));
    const fresh = await request();
    assert.equal(fresh.status, 200, describeResponse(fresh));
    assert.equal(assertForwardedOnce(fixture.origin).headers["x-tollgate-plan"], "pro");
  });
});
