//! `entitlement::parse_record` on arbitrary text, then evaluation of what parses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::entitlement::{parse_record, Entitlement};
use tollgate_fuzz::NOW;

fuzz_target!(|text: &str| {
    let Ok(record) = parse_record(text) else { return };
    for feature in &record.features {
        assert!(!feature.is_empty(), "empty feature accepted");
        assert!(!feature.contains(','), "feature {feature:?} with a comma accepted");
    }

    let entitlement = Entitlement::evaluate(&record, NOW);
    assert_eq!(entitlement.plan, record.plan);
    assert_eq!(entitlement.status, record.status);
    for feature in &entitlement.features {
        assert!(record.features.contains(feature), "granted {feature:?}, which the record does not list");
    }
    let grants_anything = matches!(record.status.as_str(), "active" | "trialing" | "past_due");
    if !grants_anything {
        assert!(entitlement.features.is_empty(), "status {:?} granted features", record.status);
    }
});
