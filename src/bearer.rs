//! Reads the bearer token from a request (RFC 6750 §2.1, RFC 9110 §11).
//!
//! The caller applies the size limit (`AUTHORIZATION_MAX_BYTES`) before this runs.
//!
//! Only the `Authorization` header carries credentials. A token in the `access_token`
//! query parameter (RFC 6750 §2.3) is never accepted; sent together with a header
//! token it makes the request ambiguous. Repeated `Authorization` fields reach a Worker
//! joined by `, `, and since a bearer token cannot contain a comma, a comma means more
//! than one credential.

/// The credentials found in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` header, or an empty one.
    Absent,
    /// An `Authorization` header with a scheme other than `Bearer`; treated as no
    /// credentials.
    OtherScheme,
    /// A syntactically valid bearer token, not yet verified.
    Bearer(&'a str),
}

/// A request whose credentials cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// More than one credential in `Authorization` (400).
    MultipleCredentials,
    /// A bearer token in both the header and the `access_token` parameter (400).
    HeaderAndQueryToken,
    /// `Bearer` with nothing after it (401).
    MissingToken,
    /// A token with characters outside RFC 6750's `b64token` (401).
    MalformedToken,
}

impl CredentialError {
    /// A fixed phrase for the client and the log.
    pub fn description(self) -> &'static str {
        match self {
            CredentialError::MultipleCredentials => "more than one Authorization credential",
            CredentialError::HeaderAndQueryToken => "token in both the Authorization header and the query",
            CredentialError::MissingToken => "missing bearer token",
            CredentialError::MalformedToken => "malformed bearer token",
        }
    }

    /// Tells whether the error makes the request malformed (400) rather than the
    /// token invalid (401).
    pub fn is_malformed_request(self) -> bool {
        matches!(self, CredentialError::MultipleCredentials | CredentialError::HeaderAndQueryToken)
    }
}

/// Reads the credential from the `Authorization` value and the raw query string.
pub fn extract<'a>(authorization: Option<&'a str>, query: Option<&str>) -> Result<Credential<'a>, CredentialError> {
    let credential = match authorization {
        None => Credential::Absent,
        Some(value) => parse_authorization(value)?,
    };
    if matches!(credential, Credential::Bearer(_)) && query.is_some_and(has_query_token) {
        return Err(CredentialError::HeaderAndQueryToken);
    }
    Ok(credential)
}

/// Tells whether the query string has an `access_token` parameter.
pub fn has_query_token(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "access_token")
}

fn parse_authorization(value: &str) -> Result<Credential<'_>, CredentialError> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Ok(Credential::Absent);
    }

    if value.contains(',') {
        let mut parts = value.split(',').map(|part| part.trim_matches([' ', '\t']));
        if parts.any(is_complete_bearer) {
            return Err(CredentialError::MultipleCredentials);
        }
        return Ok(Credential::OtherScheme);
    }

    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credential::OtherScheme);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(CredentialError::MissingToken);
    }
    if !is_b64token(token) {
        return Err(CredentialError::MalformedToken);
    }
    Ok(Credential::Bearer(token))
}

fn is_complete_bearer(part: &str) -> bool {
    match part.split_once(' ') {
        Some((scheme, rest)) => scheme.eq_ignore_ascii_case("bearer") && !rest.trim_start_matches(' ').is_empty(),
        None => false,
    }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    #[test]
    fn extract_bearer_any_case_and_spacing() {
        for value in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}"), format!("BEARER  {TOKEN}")] {
            assert_eq!(extract(Some(&value), None), Ok(Credential::Bearer(TOKEN)), "{value}");
        }
    }

    #[test]
    fn extract_absent_or_empty_is_absent() {
        assert_eq!(extract(None, None), Ok(Credential::Absent));
        assert_eq!(extract(Some(""), None), Ok(Credential::Absent));
        assert_eq!(extract(Some("  "), None), Ok(Credential::Absent));
    }

    #[test]
    fn extract_other_schemes_are_not_credentials() {
        let values = [
            format!("Basic {TOKEN}"),
            format!("Token {TOKEN}"),
            format!("DPoP {TOKEN}"),
            TOKEN.to_string(),
            format!("Bearer, {TOKEN}"),
            format!("Bearer\t{TOKEN}"),
        ];
        for value in values {
            assert_eq!(extract(Some(&value), None), Ok(Credential::OtherScheme), "{value}");
        }
    }

    #[test]
    fn extract_bearer_without_token_rejected() {
        assert_eq!(extract(Some("Bearer"), None), Err(CredentialError::MissingToken));
        assert_eq!(extract(Some("Bearer "), None), Err(CredentialError::MissingToken));
        assert_eq!(extract(Some("Bearer    "), None), Err(CredentialError::MissingToken));
    }

    #[test]
    fn extract_malformed_token_rejected() {
        for value in ["Bearer a.b!.c", "Bearer a b", "Bearer ====", "Bearer a=b", "Bearer tök"] {
            assert_eq!(extract(Some(value), None), Err(CredentialError::MalformedToken), "{value}");
        }
    }

    #[test]
    fn extract_padding_allowed_at_end() {
        assert_eq!(extract(Some("Bearer abc=="), None), Ok(Credential::Bearer("abc==")));
    }

    #[test]
    fn extract_repeated_credentials_rejected() {
        let values = [
            format!("Bearer {TOKEN}, Bearer {TOKEN}"),
            format!("Bearer {TOKEN}, Bearer junk"),
            format!("Bearer junk, Bearer {TOKEN}"),
            format!("Basic abc, Bearer {TOKEN}"),
        ];
        for value in values {
            assert_eq!(extract(Some(&value), None), Err(CredentialError::MultipleCredentials), "{value}");
        }
    }

    #[test]
    fn extract_query_token_alone_ignored() {
        let query = format!("access_token={TOKEN}");
        assert_eq!(extract(None, Some(&query)), Ok(Credential::Absent));
    }

    #[test]
    fn extract_header_and_query_token_rejected() {
        let header = format!("Bearer {TOKEN}");
        for query in [format!("access_token={TOKEN}"), "a=1&access%5Ftoken=x".to_string(), "access_token".to_string()] {
            assert_eq!(extract(Some(&header), Some(&query)), Err(CredentialError::HeaderAndQueryToken), "{query}");
        }
        assert_eq!(extract(Some(&header), Some("access_tokens=x")), Ok(Credential::Bearer(TOKEN)));
    }
}
