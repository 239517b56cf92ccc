//! `path::normalise` on arbitrary text: the output is a fixed point and has none of
//! the forms the module rejects.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::path::normalise;

fuzz_target!(|raw: &str| {
    let Ok(normalised) = normalise(raw) else { return };
    assert!(normalised.starts_with('/'));
    assert_eq!(normalise(&normalised).as_ref(), Ok(&normalised), "not idempotent for {raw:?}");
    for form in ["//", "%2F", "%5C", "%00"] {
        assert!(!normalised.contains(form), "{raw:?} normalised to {normalised:?}, which contains {form}");
    }
    let segments: Vec<&str> = normalised[1..].split('/').collect();
    assert!(!segments.iter().any(|segment| matches!(*segment, "." | "..")), "dot segment in {normalised:?}");
});
