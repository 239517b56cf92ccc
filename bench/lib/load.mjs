// One bounded load run with autocannon's programmatic API: a fixed number of
// connections for a fixed number of seconds against one URL on 127.0.0.1.

import autocannon from "autocannon";

/** A run whose requests take longer than this counts them as timeouts. */
const REQUEST_TIMEOUT_SECONDS = 10;

/**
 * Sends GET requests to `url` with `connections` connections for `durationSeconds`.
 * With `nextToken`, every request carries `Authorization: Bearer <nextToken()>`, which
 * autocannon calls once per request; with `token`, every request carries that token.
 *
 * Returns `{ requestsPerSecond, p50Ms, p99Ms, total, statusCounts, errors, timeouts }`:
 * autocannon's mean of per-second request counts, its latency percentiles in ms, and
 * the responses counted by status code.
 */
export async function runLoad({ url, connections, durationSeconds, token, nextToken }) {
  const options = {
    url,
    connections,
    duration: durationSeconds,
    pipelining: 1,
    timeout: REQUEST_TIMEOUT_SECONDS,
  };
  if (token) options.headers = { authorization: `Bearer ${token}` };
  if (nextToken) {
    options.requests = [
      {
        setupRequest(request) {
          return { ...request, headers: { authorization: `Bearer ${nextToken()}` } };
        },
      },
    ];
  }

  const result = await autocannon(options);
  const statusCounts = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = count;
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
