//! `token::verify` on arbitrary text, against the fixture configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::token::{self, MAX_RECORD_KEY_BYTES};
use tollgate_fuzz::{config, NOW};

fuzz_target!(|text: &str| {
    let Ok(verified) = token::verify(text, config(), NOW) else { return };
    // Only the seed tokens signed with the fixture secret can get here.
    let subject = &verified.subject;
    assert!(!subject.is_empty());
    assert!(subject.len() <= MAX_RECORD_KEY_BYTES);
    assert!(!subject.chars().any(char::is_control), "subject with a control character: {subject:?}");
});
