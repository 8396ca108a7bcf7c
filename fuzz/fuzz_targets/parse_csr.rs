//! Raw `spec.request` bytes straight into the parser: PEM framing, base64, size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = tlsboot::policy::parse_csr(data);
    // Parsing is a pure function of the bytes.
    assert_eq!(first, tlsboot::policy::parse_csr(data));
});
