// The correctness check run before any measurement: every scenario must get its
// expected response from Tollgate and from the jose Worker, so that the benchmark
// never compares a Worker that fails fast with one that does the work.

import { REQUEST_PATH, REQUIRED_FEATURE } from "./fixture.mjs";

const REQUEST_TIMEOUT_MS = 15_000;

async function send(url, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const response = await fetch(url, { headers, redirect: "manual", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function lastOriginRequest(originUrl) {
  const response = await fetch(`${originUrl}/__bench/last-request`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return response.json();
}

/**
 * Sends one request for `scenario` (with `token`, if any) to the Worker at
 * `workerUrl` and returns the list of problems with the response, empty if there are none.
 * A 200 must come from the origin, which must have received the X-Tollgate-* headers
 * of user-pro and no Authorization.
 */
export async function checkScenario({ workerUrl, originUrl, scenario, token }) {
  const response = await send(`${workerUrl}${REQUEST_PATH}`, token);
  const failures = [];
  if (response.status !== scenario.expectedStatus) {
    failures.push(`status ${response.status}, expected ${scenario.expectedStatus}; body: ${response.text.slice(0, 300)}`);
    return failures;
  }

  const challenge = response.headers.get("www-authenticate") ?? "";
  const contentType = response.headers.get("content-type") ?? "";
  switch (scenario.expectedStatus) {
    case 401:
      if (!challenge.startsWith('Bearer realm="')) failures.push(`WWW-Authenticate is ${JSON.stringify(challenge)}, expected a Bearer challenge`);
      if (scenario.alg && !challenge.includes('error="invalid_token"')) failures.push(`WWW-Authenticate ${JSON.stringify(challenge)} lacks error="invalid_token"`);
      if (!scenario.alg && challenge.includes("error=")) failures.push(`WWW-Authenticate ${JSON.stringify(challenge)} carries an error without a token`);
      break;
    case 402: {
      if (!contentType.startsWith("application/problem+json")) failures.push(`Content-Type is ${JSON.stringify(contentType)}, expected application/problem+json`);
      let feature;
      try {
        feature = JSON.parse(response.text).feature;
      } catch {
        failures.push(`402 body is not JSON: ${response.text.slice(0, 300)}`);
      }
      if (feature !== undefined && feature !== REQUIRED_FEATURE) failures.push(`402 body names feature ${JSON.stringify(feature)}, expected "${REQUIRED_FEATURE}"`);
      break;
    }
    case 200: {
      if (!response.text.includes('"source":"origin"')) failures.push(`200 body is not the origin's: ${response.text.slice(0, 300)}`);
      const forwarded = await lastOriginRequest(originUrl);
      const headers = forwarded?.headers ?? {};
      if (forwarded?.url !== REQUEST_PATH) failures.push(`the origin's last request was for ${forwarded?.url}, expected ${REQUEST_PATH}`);
      if (headers["x-tollgate-subject"] !== "user-pro") failures.push(`the origin got X-Tollgate-Subject ${JSON.stringify(headers["x-tollgate-subject"])}, expected "user-pro"`);
      if (headers["x-tollgate-plan"] !== "pro") failures.push(`the origin got X-Tollgate-Plan ${JSON.stringify(headers["x-tollgate-plan"])}, expected "pro"`);
      if (!(headers["x-tollgate-features"] ?? "").split(",").includes(REQUIRED_FEATURE)) {
        failures.push(`the origin got X-Tollgate-Features ${JSON.stringify(headers["x-tollgate-features"])}, expected it to contain "${REQUIRED_FEATURE}"`);
      }
      if (headers.authorization !== undefined) failures.push("the origin received the client's Authorization header");
      break;
    }
    default:
      throw new Error(`no check is defined for expected status ${scenario.expectedStatus}`);
  }
  return failures;
}

/** Checks that the forward-only Worker passes a request to the origin and relays its 200. */
export async function checkForward({ workerUrl }) {
  const response = await send(`${workerUrl}${REQUEST_PATH}`);
  if (response.status === 200 && response.text.includes('"source":"origin"')) return [];
  return [`status ${response.status}, expected 200 from the origin; body: ${response.text.slice(0, 300)}`];
}
