//! Raw `spec.request` bytes straight into the parser: PEM framing, base64, size limit.
//! Seeds: `fuzz/seeds/parse_csr/` (PEM text), made by `fuzz/gen-seeds.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = tlsboot::policy::parse_csr(data);
    // Parsing is a pure function of the bytes.
    assert_eq!(first, tlsboot::policy::parse_csr(data));
    // Whatever the policy accepts as PEM, the oracle's own PEM and DER reading accepts too.
    if let Ok(parsed) = first {
        let der = tlsboot_fuzz::pem_to_der(data)
            .unwrap_or_else(|why| panic!("policy parsed PEM the oracle cannot decode: {}", why.0));
        if let Err(why) = tlsboot_fuzz::read_request(&der) {
            panic!("policy parsed a request the oracle refuses ({}): {parsed:#?}", why.0);
        }
    }
});
