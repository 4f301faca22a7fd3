#![no_main]
//! AdmissionReview bodies as the webhook receives them: any bytes give a review or a typed error,
//! and a parsed review is a well-formed request.
use libfuzzer_sys::fuzz_target;
use palisade_policy::parse_admission_review;

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = parse_admission_review(data) {
        let request = review.request;
        assert!(!request.kind.kind.is_empty());
        assert!(request.json.is_object());
        if let Some(object) = request.object() {
            assert!(object.is_object());
        }
    }
});
