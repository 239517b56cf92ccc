//! `routes::parse_policy` on arbitrary or generated rules, then `RoutePolicy::find`
//! with a fuzzed method and path.

#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tollgate::path::normalise;
use tollgate::routes::parse_policy;
use tollgate_fuzz::{json, pick, rarely};

const PATHS: [&str; 10] =
    ["/*", "/public/*", "/v1/pro/*", "/v1/pro", "/v1//x", "/v1/%2e%2e/*", "/a/*/b", "/", "/v1/", "v1/*"];
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "OPTIONS", "get"];
const REQUEST_PATHS: [&str; 6] = ["/v1/pro/x", "/public", "/publicity", "/", "/v1/pro", "/v1/pro/"];

/// Generates a JSON array of rules whose members mostly have the expected names and
/// types.
fn rules(u: &mut Unstructured<'_>) -> Result<String> {
    let count = u.int_in_range(0..=4)?;
    let mut rules = Vec::new();
    for _ in 0..count {
        let mut rule = Map::new();
        rule.insert("path".into(), Value::from(pick(u, &PATHS)?));
        if u.arbitrary()? {
            let methods: Vec<String> = (0..u.int_in_range(0..=2)?).map(|_| pick(u, &METHODS)).collect::<Result<_>>()?;
            rule.insert("methods".into(), json!(methods));
        }
        if u.arbitrary()? {
            rule.insert("access".into(), Value::from(pick(u, &["public", "authenticated", "open"])?));
        }
        if u.arbitrary()? {
            rule.insert("feature".into(), Value::from(pick(u, &["reports", ""])?));
        }
        if u.arbitrary()? {
            let scopes: Vec<String> =
                (0..u.int_in_range(0..=2)?).map(|_| pick(u, &["admin", "a b", ""])).collect::<Result<_>>()?;
            rule.insert("scopes".into(), json!(scopes));
        }
        if rarely(u, 8)? {
            rule.insert(u.arbitrary()?, json(u, 2)?);
        }
        rules.push(Value::Object(rule));
    }
    Ok(Value::Array(rules).to_string())
}

/// Checks the parsed policy, and that `find` returns the first rule that matches.
fn check(policy_json: &str, requests: &[(String, String)]) {
    let Ok(policy) = parse_policy(policy_json) else { return };
    assert!(!policy.rules().is_empty());
    for rule in policy.rules() {
        assert!(rule.pattern.starts_with('/'), "pattern {:?} accepted", rule.pattern);
    }

    for (method, path) in requests {
        for path in [Some(path.clone()), normalise(path).ok()].into_iter().flatten() {
            let found = policy.find(method, &path);
            let first = policy.rules().iter().find(|rule| rule.matches(method, &path));
            assert_eq!(found, first);
        }
    }
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let policy_json = rules(u)?;
    let method = pick(u, &METHODS)?;
    let path: String = if u.arbitrary()? { pick(u, &REQUEST_PATHS)? } else { u.arbitrary()? };
    check(&policy_json, &[(method, path)]);
    Ok(())
}

// Input that starts like JSON, as the seeds do, is the policy text itself. It is tried
// with every method and request path from the lists. Other input drives the generator.
fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) if text.starts_with('[') || text.starts_with('{') => {
            let requests: Vec<(String, String)> = METHODS
                .iter()
                .flat_map(|method| REQUEST_PATHS.iter().map(move |path| (method.to_string(), path.to_string())))
                .collect();
            check(text, &requests);
        }
        _ => {
            let _ = generated(&mut Unstructured::new(data));
        }
    }
});
