//! The route policy: which paths are public, which need a valid token, a feature or
//! scopes. Rules are tried in order and the first match wins.

use std::fmt;

use serde::Deserialize;

/// Who may use a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed; a token, if sent, is neither checked nor forwarded.
    Public,
    /// A valid token, plus the feature and scopes listed (both may be empty).
    Authenticated { feature: Option<String>, scopes: Vec<String> },
}

/// One rule of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as configured, for logs.
    pub pattern: String,
    prefix: String,
    wildcard: bool,
    methods: Option<Vec<String>>,
    pub access: Access,
}

impl Rule {
    /// Tells whether the rule covers `method` on the normalised `path`.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.matches_path(method, path, false)
    }

    fn matches_path(&self, method: &str, path: &str, ignore_case: bool) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|allowed| allowed == method) {
                return false;
            }
        }
        let same = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
        if !self.wildcard {
            return same(path, &self.prefix);
        }

        // `/a/*` covers `/a` and everything below it at a segment boundary, not `/ab`.
        let Some((head, rest)) = path.split_at_checked(self.prefix.len()) else {
            return false;
        };
        same(head, &self.prefix) && (rest.is_empty() || rest.starts_with('/'))
    }
}

/// The ordered list of rules from the `ROUTES` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    rules: Vec<Rule>,
    /// Whether a pattern has an upper-case letter; without one, a path without one
    /// matches the same rule whether or not case is ignored.
    has_upper_case: bool,
}

impl RoutePolicy {
    /// Returns the first rule that covers `method` on `path`.
    pub fn find(&self, method: &str, path: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(method, path))
    }

    /// Returns the first rule that covers `method` on `path` when letter case is
    /// ignored, as a case-insensitive origin would read it.
    pub fn find_ignoring_case(&self, method: &str, path: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches_path(method, path, true))
    }

    /// Tells whether an origin could send `path` to another rule than `rule` (the
    /// rule [`RoutePolicy::find`] chose): a case-insensitive origin, or one that
    /// drops `;` parameters or trailing dots from segments.
    pub fn is_ambiguous(&self, method: &str, path: &str, rule: &Rule) -> bool {
        let chooses_rule = |candidate: Option<&Rule>| candidate.is_some_and(|found| std::ptr::eq(found, rule));
        if (self.has_upper_case || path.bytes().any(|byte| byte.is_ascii_uppercase()))
            && !chooses_rule(self.find_ignoring_case(method, path))
        {
            return true;
        }
        match crate::path::lenient_reading(path) {
            Some(reading) => !chooses_rule(self.find_ignoring_case(method, &reading)),
            None => false,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Why a route policy was rejected; names the rule by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// The largest `ROUTES` value accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The most rules a policy may have: every request may try each of them.
pub const MAX_RULES: usize = 1_000;

/// Parses the JSON route policy.
pub fn parse_policy(json: &str) -> Result<RoutePolicy, PolicyError> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(PolicyError(format!("{} bytes, more than the limit of {MAX_POLICY_BYTES}", json.len())));
    }
    let raw: Vec<RawRule> = serde_json::from_str(json)
        .map_err(|error| PolicyError(format!("not a JSON array of rules ({error})")))?;
    if raw.is_empty() {
        return Err(PolicyError("the policy has no rules, so every request would get 404".into()));
    }
    if raw.len() > MAX_RULES {
        return Err(PolicyError(format!("{} rules, more than the limit of {MAX_RULES}", raw.len())));
    }

    let mut rules = Vec::with_capacity(raw.len());
    for (index, rule) in raw.into_iter().enumerate() {
        let rule = build_rule(rule).map_err(|reason| PolicyError(format!("rule {index}: {reason}")))?;
        rules.push(rule);
    }
    let has_upper_case = rules.iter().any(|rule| rule.prefix.bytes().any(|byte| byte.is_ascii_uppercase()));
    Ok(RoutePolicy { rules, has_upper_case })
}

fn build_rule(raw: RawRule) -> Result<Rule, String> {
    let (prefix, wildcard) = match raw.path.strip_suffix("/*") {
        Some(prefix) => (prefix.to_string(), true),
        None => (raw.path.clone(), false),
    };
    if !raw.path.starts_with('/') {
        return Err(format!("path {:?} must start with /", raw.path));
    }
    if prefix.contains('*') {
        return Err(format!("path {:?}: * is allowed only as a final /*", raw.path));
    }
    // The pattern is compared with normalised request paths, so it must be one itself.
    let pattern_path = if prefix.is_empty() { "/" } else { prefix.as_str() };
    match crate::path::normalise(pattern_path) {
        Ok(normalised) if normalised == pattern_path => {}
        _ => return Err(format!("path {:?} is not in normalised form", raw.path)),
    }

    let methods = match raw.methods {
        None => None,
        Some(methods) if methods.is_empty() => return Err("methods is empty".into()),
        Some(methods) => {
            if let Some(bad) = methods.iter().find(|method| !is_method_token(method)) {
                return Err(format!("method {bad:?} is not an upper-case HTTP method"));
            }
            Some(methods)
        }
    };

    let scopes = raw.scopes.unwrap_or_default();
    if let Some(bad) = scopes.iter().find(|scope| !is_scope_token(scope)) {
        return Err(format!("scope {bad:?} is empty or contains a space, quote or backslash"));
    }
    if raw.feature.as_deref() == Some("") {
        return Err("feature is empty".into());
    }

    let access = match raw.access.as_deref() {
        Some("public") if raw.feature.is_some() || !scopes.is_empty() => {
            return Err("a public rule cannot require a feature or scopes".into());
        }
        Some("public") => Access::Public,
        Some("authenticated") | None => Access::Authenticated { feature: raw.feature, scopes },
        Some(other) => return Err(format!("access {other:?} is not \"public\" or \"authenticated\"")),
    };
    if raw.access.is_none() && matches!(&access, Access::Authenticated { feature: None, scopes } if scopes.is_empty()) {
        return Err("set access, feature or scopes".into());
    }

    Ok(Rule { pattern: raw.path, prefix, wildcard, methods, access })
}

fn is_method_token(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|byte| byte.is_ascii_uppercase())
}

// Scope tokens (RFC 6749 §3.3), further kept free of quotes and backslashes so they can
// be written into a challenge's quoted-string as they are.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|byte| byte > 0x20 && byte < 0x7F && byte != b'"' && byte != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"[
        {"path": "/public/*", "access": "public"},
        {"path": "/v1/reports/*", "methods": ["GET", "HEAD"], "feature": "reports"},
        {"path": "/v1/admin/*", "scopes": ["admin"]},
        {"path": "/health", "access": "public"},
        {"path": "/*", "access": "authenticated"}
    ]"#;

    fn pattern(policy: &RoutePolicy, method: &str, path: &str) -> Option<String> {
        policy.find(method, path).map(|rule| rule.pattern.clone())
    }

    #[test]
    fn find_first_match_wins() {
        let policy = parse_policy(EXAMPLE).unwrap();
        assert_eq!(pattern(&policy, "GET", "/public/a").as_deref(), Some("/public/*"));
        assert_eq!(pattern(&policy, "GET", "/v1/reports/x").as_deref(), Some("/v1/reports/*"));
        assert_eq!(pattern(&policy, "GET", "/v1/other").as_deref(), Some("/*"));
    }

    #[test]
    fn find_wildcard_covers_prefix_itself() {
        let policy = parse_policy(EXAMPLE).unwrap();
        assert_eq!(pattern(&policy, "GET", "/public").as_deref(), Some("/public/*"));
        assert_eq!(pattern(&policy, "GET", "/public/").as_deref(), Some("/public/*"));
    }

    #[test]
    fn find_wildcard_respects_segment_boundary() {
        let policy = parse_policy(EXAMPLE).unwrap();
        assert_eq!(pattern(&policy, "GET", "/publicity").as_deref(), Some("/*"));
        assert_eq!(pattern(&policy, "GET", "/v1/reportsx").as_deref(), Some("/*"));
    }

    #[test]
    fn find_exact_path_only() {
        let policy = parse_policy(EXAMPLE).unwrap();
        assert_eq!(pattern(&policy, "GET", "/health").as_deref(), Some("/health"));
        assert_eq!(pattern(&policy, "GET", "/health/x").as_deref(), Some("/*"));
    }

    #[test]
    fn find_method_limits_rule() {
        let policy = parse_policy(EXAMPLE).unwrap();
        assert_eq!(pattern(&policy, "HEAD", "/v1/reports/x").as_deref(), Some("/v1/reports/*"));
        assert_eq!(pattern(&policy, "POST", "/v1/reports/x").as_deref(), Some("/*"));
    }

    #[test]
    fn find_case_sensitive() {
        let policy = parse_policy(r#"[{"path": "/v1/*", "access": "public"}]"#).unwrap();
        assert!(policy.find("GET", "/V1/x").is_none());
    }

    #[test]
    fn is_ambiguous_letter_case_and_lenient_readings() {
        let policy = parse_policy(r#"[
            {"path": "/public/*", "access": "public"},
            {"path": "/v1/pro/*", "feature": "reports"},
            {"path": "/*", "access": "authenticated"}
        ]"#)
        .unwrap();
        for path in ["/V1/PRO/x", "/v1/Pro/x", "/v1/pro./x", "/v1/pro;x=1/y", "/PUBLIC/x"] {
            let rule = policy.find("GET", path).unwrap();
            assert!(policy.is_ambiguous("GET", path, rule), "{path}");
        }
        for path in ["/v1/pro/x", "/v1/pro/Report.PDF", "/v1/other/X", "/public/a;b", "/public/file.txt"] {
            let rule = policy.find("GET", path).unwrap();
            assert!(!policy.is_ambiguous("GET", path, rule), "{path}");
        }
    }

    #[test]
    fn is_ambiguous_upper_case_pattern_matched_exactly() {
        let policy = parse_policy(r#"[{"path": "/V1/*", "access": "public"}, {"path": "/*", "access": "authenticated"}]"#).unwrap();
        let rule = policy.find("GET", "/V1/x").unwrap();
        assert!(!policy.is_ambiguous("GET", "/V1/x", rule));
        let rule = policy.find("GET", "/v1/x").unwrap();
        assert!(policy.is_ambiguous("GET", "/v1/x", rule));
    }

    #[test]
    fn parse_oversized_policy_rejected() {
        let rules: Vec<String> = (0..=MAX_RULES).map(|index| format!(r#"{{"path": "/r{index}", "access": "public"}}"#)).collect();
        let error = parse_policy(&format!("[{}]", rules.join(","))).unwrap_err();
        assert!(error.0.contains("rules, more than"), "{error}");
        let huge = format!(r#"[{{"path": "/{}", "access": "public"}}]"#, "a".repeat(MAX_POLICY_BYTES));
        assert!(parse_policy(&huge).unwrap_err().0.contains("bytes"));
    }

    #[test]
    fn parse_access_defaults_to_authenticated() {
        let policy = parse_policy(EXAMPLE).unwrap();
        let admin = policy.find("GET", "/v1/admin/x").unwrap();
        assert_eq!(admin.access, Access::Authenticated { feature: None, scopes: vec!["admin".into()] });
    }

    #[test]
    fn parse_invalid_policies_rejected() {
        let cases = [
            ("not json", "not a JSON array"),
            ("[]", "no rules"),
            (r#"[{"path": "v1/*", "access": "public"}]"#, "must start with /"),
            (r#"[{"path": "/v1/*/x", "access": "public"}]"#, "final /*"),
            (r#"[{"path": "/v1*", "access": "public"}]"#, "final /*"),
            (r#"[{"path": "/v1//x", "access": "public"}]"#, "normalised"),
            (r#"[{"path": "/v1/%2e%2e", "access": "public"}]"#, "normalised"),
            (r#"[{"path": "/v1", "access": "open"}]"#, "access"),
            (r#"[{"path": "/v1", "access": "public", "feature": "x"}]"#, "public rule"),
            (r#"[{"path": "/v1", "methods": ["get"], "access": "public"}]"#, "method"),
            (r#"[{"path": "/v1", "methods": [], "access": "public"}]"#, "methods is empty"),
            (r#"[{"path": "/v1", "scopes": ["a b"]}]"#, "scope"),
            (r#"[{"path": "/v1", "feature": ""}]"#, "feature is empty"),
            (r#"[{"path": "/v1"}]"#, "set access"),
            (r#"[{"path": "/v1", "acess": "public"}]"#, "unknown field"),
        ];
        for (json, expected) in cases {
            let error = parse_policy(json).unwrap_err();
            assert!(error.0.contains(expected), "{json}: {error}");
        }
    }
}
