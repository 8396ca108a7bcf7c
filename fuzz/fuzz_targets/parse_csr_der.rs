//! The fuzzer's bytes as the DER inside a well-formed PEM block, so mutations reach the DER walk,
//! x509-parser, the attribute checks and signature verification instead of dying at PEM framing.
//! Seed the corpus with real requests: `openssl req -in x.pem -outform DER -out corpus/parse_csr_der/x`.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE REQUEST-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE REQUEST-----\n");
    if let Ok(parsed) = tlsboot::policy::parse_csr(pem.as_bytes()) {
        // Anything that parses verified its own signature with an allow-listed algorithm.
        assert!(!parsed.signature_algorithm.is_empty());
        assert!(!parsed.signature_algorithm.contains("SHA1"));
    }
});
