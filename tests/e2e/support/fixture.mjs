// The shared fixture of the end-to-end tests: signing keys, the recording origin, local
// KV seeded with entitlement records, and `wrangler dev` instances of the built worker
// configured for them. Everything lives in one temporary folder per test file.

import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { generateHmacKey, generateSigningKey, nowSeconds, signJwt } from "../../../scripts/lib/jwt.mjs";
import { startRecordingOrigin } from "./origin.mjs";
import { bulkPutLocalKv, findFreePort, putLocalKv, readProjectConfig, startWranglerDev } from "./wrangler.mjs";

/** Time limit for a test file's before() hook: the fixture and its worker instances. */
export const STARTUP_TIMEOUT_MS = 120_000;

export const ISSUER = "https://issuer.example";
export const AUDIENCE = "https://api.example";
export const UPGRADE_URL = "https://billing.example/upgrade?feature={feature}";

export const ROUTES = [
  { path: "/public/*", access: "public" },
  { path: "/v1/reports/*", methods: ["GET", "HEAD", "POST"], feature: "reports" },
  { path: "/v1/admin/*", scopes: ["admin"] },
  { path: "/v1/*", access: "authenticated" },
];

export const PRO_RECORD = { plan: "pro", status: "active", features: ["reports", "basic"], expires_at: null, grace_until: null };
export const FREE_RECORD = { plan: "free", status: "active", features: ["basic"], expires_at: null, grace_until: null };

/** Local KV contents at start: `user-none` has no record on purpose. */
export const ENTITLEMENT_RECORDS = {
  "user-pro": JSON.stringify(PRO_RECORD),
  "user-free": JSON.stringify(FREE_RECORD),
  "user-broken": "not json",
};

/**
 * Creates the fixture: a temporary folder, the ES256 (es-1), RS256 (rs-1) and EdDSA
 * (ed-1) key pairs and the HS256 secret (hs-1), the recording origin, and local KV
 * seeded with `kvEntries` in one bulk put. Workers are started with startWorker().
 */
export async function createFixture({ kvEntries = ENTITLEMENT_RECORDS } = {}) {
  const runDir = await mkdtemp(join(tmpdir(), "tollgate-e2e-"));
  const persistDir = join(runDir, "state");
  const logDir = join(runDir, "wrangler-logs");
  await mkdir(logDir, { recursive: true });

  const keys = {
    ES256: generateSigningKey("ES256", "es-1"),
    RS256: generateSigningKey("RS256", "rs-1"),
    EdDSA: generateSigningKey("EdDSA", "ed-1"),
    HS256: generateHmacKey("hs-1"),
  };
  const publicKeys = { keys: [keys.ES256.publicJwk, keys.RS256.publicJwk, keys.EdDSA.publicJwk] };

  const projectConfig = await readProjectConfig();
  await bulkPutLocalKv({ persistDir, logDir, entries: kvEntries, scratchDir: runDir });
  const origin = await startRecordingOrigin();
  const workers = [];

  /** The variables of the standard test instance; the secrets go in `secrets`. */
  const defaultVars = {
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_PUBLIC_KEYS: JSON.stringify(publicKeys),
    JWT_HMAC_KID: keys.HS256.kid,
    ENTITLEMENT_CACHE_SECONDS: "0",
    ROUTES: JSON.stringify(ROUTES),
    ORIGIN_URL: origin.url,
    UPGRADE_URL,
  };
  const defaultSecrets = { JWT_HMAC_SECRET: keys.HS256.secret };

  return {
    runDir,
    persistDir,
    keys,
    origin,
    defaultVars,

    /**
     * Starts a worker instance. `vars` entries override the defaults, and an entry set
     * to undefined removes that variable; `secrets` replaces the default secrets.
     */
    async startWorker({ name = `worker-${workers.length + 1}`, vars = {}, secrets = defaultSecrets } = {}) {
      const mergedVars = { ...defaultVars, ...vars };
      for (const key of Object.keys(mergedVars)) {
        if (mergedVars[key] === undefined) delete mergedVars[key];
      }
      const worker = await startWranglerDev({
        name,
        projectConfig,
        vars: mergedVars,
        secrets,
        persistDir,
        instanceDir: join(runDir, "instances", name),
        logDir,
      });
      workers.push(worker);
      return worker;
    },

    /** Returns an ORIGIN_URL on 127.0.0.1 where nothing listens. */
    async closedOriginUrl() {
      return `http://127.0.0.1:${await findFreePort()}`;
    },

    /** Changes one entitlement record in the shared local KV with `wrangler kv key put`. */
    async putEntitlement(key, value) {
      await putLocalKv({ persistDir, logDir, key, value: typeof value === "string" ? value : JSON.stringify(value) });
    },

    /**
     * Signs a token that the standard instance accepts: iss, aud, sub, iat = nbf = now,
     * exp = now + 600. `claims` entries override these (undefined removes a claim);
     * `header` entries override the JOSE header.
     */
    token({ sub = "user-pro", alg = "ES256", key, claims = {}, header = {} } = {}) {
      const now = nowSeconds();
      const payload = { iss: ISSUER, aud: AUDIENCE, sub, iat: now, nbf: now, exp: now + 600, ...claims };
      for (const name of Object.keys(payload)) {
        if (payload[name] === undefined) delete payload[name];
      }
      return signJwt(key ?? keys[alg], payload, header);
    },

    /** Stops every worker instance and the origin, and deletes the temporary folder. */
    async stop() {
      await Promise.allSettled(workers.map((worker) => worker.stop()));
      await origin.close();
      if (!process.env.TOLLGATE_E2E_KEEP) {
        await rm(runDir, { recursive: true, force: true });
      }
    },
  };
}
