//! The fuzzer's bytes as the DER inside a well-formed PEM block, so mutations reach the DER walk,
//! x509-parser, the attribute checks and signature verification instead of dying at PEM framing.
//! Differential: whatever the policy's parser accepts, the independent oracle
//! (`fuzz/src/lib.rs`: its own DER walk, RustCrypto signature verification) must accept too, and
//! read the same common names, organizations, number of SAN entries and key type.
//! Seeds: `fuzz/seeds/parse_csr_der/`, made by `fuzz/gen-seeds.sh`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsboot::policy::KeyAlgorithm;
use tlsboot_fuzz::{KeyKind, der_to_pem, read_request, string_value};

fuzz_target!(|der: &[u8]| {
    let pem = der_to_pem(der);
    let Ok(parsed) = tlsboot::policy::parse_csr(&pem) else {
        return;
    };
    let oracle = match read_request(der) {
        Ok(r) => r,
        Err(why) => panic!(
            "the policy parsed a request the oracle refuses ({}): {parsed:#?}",
            why.0
        ),
    };
    let text = |values: &[(u8, Vec<u8>)]| -> Vec<Option<String>> {
        values
            .iter()
            .map(|(t, v)| string_value(*t, v).map(str::to_owned))
            .collect()
    };
    let some = |values: &[String]| -> Vec<Option<String>> {
        values.iter().cloned().map(Some).collect()
    };
    assert_eq!(text(&oracle.common_names), some(&parsed.common_names), "common names");
    assert_eq!(text(&oracle.organizations), some(&parsed.organizations), "organizations");
    let policy_sans = parsed.dns_names.len()
        + parsed.ip_addresses.len()
        + parsed.email_addresses.len()
        + parsed.uris.len()
        + parsed.other_names.len();
    assert_eq!(oracle.san_entries.len(), policy_sans, "SAN entries: {parsed:#?}");
    let same_key = matches!(
        (oracle.key, parsed.public_key.algorithm),
        (KeyKind::Rsa { .. }, KeyAlgorithm::Rsa)
            | (KeyKind::P256, KeyAlgorithm::EcdsaP256)
            | (KeyKind::P384, KeyAlgorithm::EcdsaP384)
            | (KeyKind::Ed25519, KeyAlgorithm::Ed25519)
    );
    assert!(same_key, "key {:?} vs {:?}", oracle.key, parsed.public_key);
    if let KeyKind::Rsa { bits } = oracle.key {
        assert_eq!(u32::try_from(bits).ok(), Some(parsed.public_key.bits), "RSA bits");
    }
});
