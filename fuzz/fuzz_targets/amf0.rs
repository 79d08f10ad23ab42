//! Decodes arbitrary bytes as AMF0. Whatever decodes must re-encode to bytes that
//! decode and encode again to the same bytes (compared as bytes, since NaN != NaN).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = onair_amf0::decode_all(data) else {
        return;
    };
    let encoded = onair_amf0::encode(&values);
    let again = onair_amf0::decode_all(&encoded).expect("re-encoded AMF0 decodes");
    assert_eq!(onair_amf0::encode(&again), encoded);
});
