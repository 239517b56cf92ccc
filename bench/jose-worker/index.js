// The benchmark's baseline: Tollgate's job written the way a Workers user would write
// it with the `jose` library. It reads the same bindings as Tollgate, verifies the
// bearer JWT, reads the caller's entitlement record from KV, checks the route's
// feature and forwards to ORIGIN_URL. Used only by scripts/bench.sh.
//
// Unlike Tollgate, it does not normalise paths, support `methods` or `scopes` in
// ROUTES, remove hop-by-hop headers, add `Cache-Control: private`, or log.

import { createLocalJWKSet, jwtVerify } from "jose";

const ALGORITHMS = ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "HS256"];

/** Configuration parsed from the bindings on the first request of an isolate. */
let config;

function loadConfig(env) {
  const publicKeys = createLocalJWKSet(JSON.parse(env.JWT_PUBLIC_KEYS));
  const hmacKey = new TextEncoder().encode(env.JWT_HMAC_SECRET);
  return {
    routes: JSON.parse(env.ROUTES),
    cacheTtl: Number(env.ENTITLEMENT_CACHE_SECONDS ?? "60"),
    // The HMAC key is selected by its kid and only for HS256, every other key from the JWK Set.
    selectKey(header, token) {
      if (header.kid === env.JWT_HMAC_KID) {
        if (header.alg !== "HS256") throw new Error(`alg ${header.alg} does not match the HMAC key`);
        return hmacKey;
      }
      return publicKeys(header, token);
    },
    verifyOptions: {
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE.split(","),
      requiredClaims: ["exp"],
      clockTolerance: 60,
      algorithms: ALGORITHMS,
    },
  };
}

function matchesRoute(pattern, path) {
  if (!pattern.endsWith("/*")) return path === pattern;
  const prefix = pattern.slice(0, -2);
  return path === prefix || path.startsWith(`${prefix}/`);
}

function problem(status, type, title, detail, { headers = {}, members = {} } = {}) {
  const body = JSON.stringify({ type: `urn:tollgate:problem:${type}`, title, status, detail, ...members });
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/problem+json", "Cache-Control": "no-store", ...headers },
  });
}

/** Builds a 401 with a Bearer challenge; `error` is the error_description of an invalid token. */
function unauthorized(realm, error) {
  if (!error) {
    const headers = { "WWW-Authenticate": `Bearer realm="${realm}"` };
    return problem(401, "unauthenticated", "Authentication required", "no bearer token was sent", { headers });
  }
  const headers = { "WWW-Authenticate": `Bearer realm="${realm}", error="invalid_token", error_description="${error}"` };
  return problem(401, "invalid-token", "Invalid token", error, { headers });
}

/** Returns the features an entitlement record grants at `now` (Unix seconds). */
function grantedFeatures(record, now) {
  if (!record) return [];
  const notExpired = record.expires_at == null || now < record.expires_at;
  const inGrace = record.grace_until != null && now < record.grace_until;
  const granted = (record.status === "active" || record.status === "trialing" || (record.status === "past_due" && inGrace)) && notExpired;
  return granted ? (record.features ?? []) : [];
}

function forward(request, env, url, identity) {
  const headers = new Headers(request.headers);
  headers.delete("Authorization");
  for (const name of [...headers.keys()]) {
    if (name.startsWith("x-tollgate-")) headers.delete(name);
  }
  if (identity) {
    headers.set("X-Tollgate-Subject", identity.subject);
    headers.set("X-Tollgate-Plan", identity.plan);
    headers.set("X-Tollgate-Features", identity.features.join(","));
  }
  const target = env.ORIGIN_URL.replace(/\/$/, "") + url.pathname + url.search;
  return fetch(target, { method: request.method, headers, body: request.body, redirect: "manual" });
}

export default {
  async fetch(request, env) {
    config ??= loadConfig(env);
    const url = new URL(request.url);
    const route = config.routes.find((rule) => matchesRoute(rule.path, url.pathname));
    if (!route) return problem(404, "not-found", "Not found", "no route matches this path");
    if (route.access === "public") return forward(request, env, url, null);

    const authorization = request.headers.get("Authorization") ?? "";
    if (!/^Bearer /i.test(authorization)) return unauthorized(url.hostname);
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(authorization.slice(7).trim(), config.selectKey, config.verifyOptions));
    } catch {
      return unauthorized(url.hostname, "token invalid");
    }
    if (typeof claims.sub !== "string" || claims.sub === "") return unauthorized(url.hostname, "subject missing");

    const record = await env.ENTITLEMENTS.get(claims.sub, { type: "json", cacheTtl: config.cacheTtl });
    const features = grantedFeatures(record, Math.floor(Date.now() / 1000));
    const plan = record?.plan ?? "none";
    if (route.feature && !features.includes(route.feature)) {
      return problem(402, "payment-required", "Payment required", "the caller's plan does not include the feature this resource needs", {
        members: {
          feature: route.feature,
          plan,
          subscription_status: record?.status ?? "none",
          upgrade_url: env.UPGRADE_URL?.replace("{feature}", route.feature),
        },
      });
    }
    return forward(request, env, url, { subject: claims.sub, plan, features });
  },
};
