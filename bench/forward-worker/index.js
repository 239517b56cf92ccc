// The benchmark's upper bound: a Worker that forwards every request to ORIGIN_URL
// without any check. Used only by scripts/bench.sh.

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const target = env.ORIGIN_URL.replace(/\/$/, "") + url.pathname + url.search;
    return fetch(target, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
