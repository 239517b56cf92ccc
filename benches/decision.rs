//! Native benchmarks of the decision core and of each signature verifier.
//!
//! `core/*` measures what the gateway does per request besides the signature: path
//! normalisation, route match, bearer parsing, a verified-token cache hit with its
//! `exp`/`nbf` re-check, the record evaluation and the response rendering. The
//! `verify/*` benches measure a full token check per algorithm with jwt-simple.
//! Run with `cargo bench --bench decision`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use support::*;
use tollgate::decision::{admit_cached, entitle, Admission, Decision, RecordLookup, RequestFacts};
use tollgate::entitlement::parse_record;
use tollgate::jwks::RemoteKeys;
use tollgate::problem::{render, RenderContext};
use tollgate::token::verify;
use tollgate::token_cache::TokenCache;

fn core(criterion: &mut Criterion) {
    let config = config();
    let token = token("ES256", &claims("user-free"));
    let authorization = format!("Bearer {token}");
    let facts = RequestFacts {
        method: "GET",
        path: "/v1/pro/report",
        query: Some("a=1&b=2"),
        authorization: Some(&authorization),
        is_cors_preflight: false,
    };
    let record = parse_record(r#"{"plan": "free", "status": "active", "features": ["basic"]}"#).unwrap();
    let context = RenderContext { realm: "api.example", upgrade_url: Some("https://billing.example/upgrade?feature={feature}"), head: false };
    let mut cache = TokenCache::default();
    admit_cached(&config, &facts, RemoteKeys::NotConfigured, Some(&mut cache), NOW);

    criterion.bench_function("core/402_with_cached_token", |bench| {
        bench.iter(|| {
            let admission = admit_cached(&config, black_box(&facts), RemoteKeys::NotConfigured, Some(&mut cache), NOW);
            let Admission::LookUp(caller) = admission else { panic!("expected a lookup") };
            let Decision::Deny(denial) = entitle(&config, caller, RecordLookup::Found(record.clone()), NOW) else {
                panic!("expected a 402")
            };
            black_box(render(&denial, &context))
        })
    });

    let no_token = RequestFacts { authorization: None, ..facts };
    criterion.bench_function("core/401_no_token", |bench| {
        bench.iter(|| {
            let Admission::Deny(denial) = admit_cached(&config, black_box(&no_token), RemoteKeys::NotConfigured, None, NOW) else {
                panic!("expected a denial")
            };
            black_box(render(&denial, &context))
        })
    });
}

fn verifiers(criterion: &mut Criterion) {
    let config = config();
    for algorithm in ["HS256", "RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let token = token(algorithm, &claims("user-pro"));
        criterion.bench_function(&format!("verify/{algorithm}"), |bench| {
            bench.iter(|| black_box(verify(black_box(&token), &config, NOW)).unwrap())
        });
    }
}

criterion_group!(benches, core, verifiers);
criterion_main!(benches);
