//! Path normalisation: the one path that is both matched against the policy and sent
//! to the origin.
//!
//! The Workers runtime parses the request URL with the WHATWG URL parser, which has
//! already resolved `.` and `..` segments (including `%2e` forms) and turned `\` into
//! `/`. This module removes the remaining ways to spell one path several ways:
//! percent-encoded unreserved characters are decoded and other escapes are written in
//! upper case (RFC 3986 §6.2.2). Forms that an origin might read as another path are
//! rejected instead: encoded `/` or `\`, encoded control characters, dot segments and
//! empty segments.

use std::fmt;

/// Why a path was rejected as ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    InvalidEscape,
    /// `%2F` or `%5C`: an origin may decode it into a segment separator.
    EncodedSeparator,
    /// An encoded or raw control character, NUL included.
    ControlCharacter,
    /// A `.` or `..` segment left after parsing.
    DotSegment,
    /// `//` inside the path: origins disagree on whether it equals `/`.
    EmptySegment,
}

impl PathError {
    /// A fixed phrase for the client and the log.
    pub fn description(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path must start with /",
            PathError::InvalidEscape => "invalid percent-encoding in path",
            PathError::EncodedSeparator => "encoded slash or backslash in path",
            PathError::ControlCharacter => "control character in path",
            PathError::DotSegment => "dot segment in path",
            PathError::EmptySegment => "empty segment in path",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Returns the normalised form of `raw`, the path part of a parsed request URL.
pub fn normalise(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }

    let mut normalised = String::with_capacity(raw.len());
    let segments: Vec<&str> = raw[1..].split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        normalised.push('/');
        // A trailing slash leaves one empty last segment, which is fine.
        if segment.is_empty() && index != last {
            return Err(PathError::EmptySegment);
        }
        let start = normalised.len();
        normalise_segment(segment, &mut normalised)?;
        if is_dot_segment_for_some_origin(&normalised[start..]) {
            return Err(PathError::DotSegment);
        }
    }
    Ok(normalised)
}

/// Tells whether an origin could read `segment` as `.` or `..`: as it is, once a
/// `;` parameter is dropped (servlet containers do), or once trailing dots are
/// dropped (Windows file systems do).
fn is_dot_segment_for_some_origin(segment: &str) -> bool {
    let base = segment.split(';').next().unwrap_or(segment);
    !base.is_empty() && base.bytes().all(|byte| byte == b'.')
}

/// Returns the other ways an origin might read a normalised path, for paths where
/// one exists: `;` parameters dropped from every segment and trailing dots dropped
/// from every segment. The route check rejects a path when one of these readings
/// falls under a different rule.
pub fn lenient_reading(path: &str) -> Option<String> {
    if !path.bytes().any(|byte| byte == b';' || byte == b'.') {
        return None;
    }
    let reading: Vec<&str> = path
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or(segment).trim_end_matches('.'))
        .collect();
    let reading = reading.join("/");
    (reading != path).then_some(reading)
}

fn normalise_segment(segment: &str, out: &mut String) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte.is_ascii_control() {
            return Err(PathError::ControlCharacter);
        }
        if byte != b'%' {
            // Copy whole UTF-8 sequences; the URL parser leaves none, but stay safe.
            let width = utf8_width(byte);
            let end = (index + width).min(bytes.len());
            out.push_str(segment.get(index..end).ok_or(PathError::InvalidEscape)?);
            index = end;
            continue;
        }

        let decoded = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
            .ok_or(PathError::InvalidEscape)?;
        if decoded == b'/' || decoded == b'\\' {
            return Err(PathError::EncodedSeparator);
        }
        if decoded.is_ascii_control() {
            return Err(PathError::ControlCharacter);
        }
        if is_unreserved(decoded) {
            out.push(decoded as char);
        } else {
            out.push('%');
            out.push_str(&format!("{decoded:02X}"));
        }
        index += 3;
    }
    Ok(())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_plain_path_unchanged() {
        assert_eq!(normalise("/v1/reports/2024").unwrap(), "/v1/reports/2024");
        assert_eq!(normalise("/").unwrap(), "/");
        assert_eq!(normalise("/v1/reports/").unwrap(), "/v1/reports/");
    }

    #[test]
    fn normalise_decodes_unreserved_escapes() {
        assert_eq!(normalise("/v1/%72eports/x").unwrap(), "/v1/reports/x");
        assert_eq!(normalise("/a%7Eb%2d").unwrap(), "/a~b-");
    }

    #[test]
    fn normalise_uppercases_other_escapes() {
        assert_eq!(normalise("/a%3fb%20c").unwrap(), "/a%3Fb%20c");
    }

    #[test]
    fn normalise_encoded_separators_rejected() {
        assert_eq!(normalise("/public%2F..%2Fv1/reports"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/public%2f"), Err(PathError::EncodedSeparator));
        assert_eq!(normalise("/a%5Cb"), Err(PathError::EncodedSeparator));
    }

    #[test]
    fn normalise_encoded_dot_segments_rejected() {
        assert_eq!(normalise("/public/%2e%2E/v1"), Err(PathError::DotSegment));
        assert_eq!(normalise("/public/%2e"), Err(PathError::DotSegment));
        assert_eq!(normalise("/public/../v1"), Err(PathError::DotSegment));
    }

    #[test]
    fn normalise_control_characters_rejected() {
        assert_eq!(normalise("/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(normalise("/a%0Ab"), Err(PathError::ControlCharacter));
        assert_eq!(normalise("/a\tb"), Err(PathError::ControlCharacter));
    }

    #[test]
    fn normalise_dot_segments_behind_parameters_rejected() {
        assert_eq!(normalise("/public/..;/v1/pro"), Err(PathError::DotSegment));
        assert_eq!(normalise("/public/.;x=1/v1"), Err(PathError::DotSegment));
        assert_eq!(normalise("/public/.../v1"), Err(PathError::DotSegment));
    }

    #[test]
    fn lenient_reading_drops_parameters_and_trailing_dots() {
        assert_eq!(lenient_reading("/v1/pro;jsessionid=1/x").as_deref(), Some("/v1/pro/x"));
        assert_eq!(lenient_reading("/v1/pro./x").as_deref(), Some("/v1/pro/x"));
        assert_eq!(lenient_reading("/v1/report.json"), None);
        assert_eq!(lenient_reading("/v1/pro/x"), None);
    }

    #[test]
    fn normalise_empty_segment_rejected() {
        assert_eq!(normalise("/v1//reports"), Err(PathError::EmptySegment));
        assert_eq!(normalise("//v1"), Err(PathError::EmptySegment));
    }

    #[test]
    fn normalise_invalid_escape_rejected() {
        assert_eq!(normalise("/a%zz"), Err(PathError::InvalidEscape));
        assert_eq!(normalise("/a%4"), Err(PathError::InvalidEscape));
    }

    #[test]
    fn normalise_relative_path_rejected() {
        assert_eq!(normalise("v1"), Err(PathError::NotAbsolute));
        assert_eq!(normalise(""), Err(PathError::NotAbsolute));
    }
}
