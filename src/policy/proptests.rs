//! Property tests: `decide` never panics, and never authorizes a request that breaks a rule.
//!
//! The oracle re-checks every kubelet-client rule through a different path (x509-parser's PEM
//! reader, its own signature verification, its attribute accessors) so a bug in the policy's
//! parser cannot hide behind itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::tests::support::*;
use super::upstream::*;
use super::*;
use proptest::prelude::*;
use rcgen::{KeyPair, SanType};
use std::sync::OnceLock;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

/// Valid requests to mutate: P-256 and RSA-2048 kubelet client CSRs (made once: key generation
/// per case would dominate the run time).
fn bases() -> &'static [Vec<u8>] {
    static BASES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BASES.get_or_init(|| {
        vec![
            der_of(&kubelet_client_csr(&p256())),
            der_of(&kubelet_client_csr(&rsa2048())),
        ]
    })
}

fn p256_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(p256)
}

/// True when `spec` + `request` satisfy every kubelet-client rule, checked independently.
fn oracle_authorizable(spec: &Spec, request: &[u8]) -> bool {
    if spec.signer != SIGNER_KUBELET_CLIENT || spec.approved || spec.denied || spec.issued {
        return false;
    }
    if request.len() > MAX_REQUEST_BYTES {
        return false;
    }
    // Go's pem.Decode drops spaces and tabs in the body and at line ends; model that loosely by
    // ignoring all whitespace (looser than the policy, which is what an oracle may be).
    let squeezed: Vec<u8> = request
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != 0x0b)
        .collect();
    let Some(body) = squeezed
        .strip_prefix(b"-----BEGINCERTIFICATEREQUEST-----".as_slice())
        .and_then(|r| r.strip_suffix(b"-----ENDCERTIFICATEREQUEST-----".as_slice()))
    else {
        return false;
    };
    if body.contains(&b'-') {
        return false;
    }
    let Some(der) = reference_base64(body) else {
        return false;
    };
    let Ok((rest, req)) = X509CertificationRequest::from_der(&der) else {
        return false;
    };
    if !rest.is_empty() || req.verify_signature().is_err() {
        return false;
    }
    let sig_oid = req.signature_algorithm.algorithm.to_id_string();
    let allowed = [
        "1.2.840.113549.1.1.11",
        "1.2.840.113549.1.1.12",
        "1.2.840.113549.1.1.13",
        "1.2.840.113549.1.1.10",
        "1.2.840.10045.4.3.2",
        "1.2.840.10045.4.3.3",
        "1.3.101.112",
    ];
    if !allowed.contains(&sig_oid.as_str()) {
        return false;
    }
    let info = &req.certification_request_info;
    let orgs: Vec<&str> = info
        .subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    if orgs != ["system:nodes"] || info.subject.iter_organization().count() != 1 {
        return false;
    }
    let cns: Vec<&str> = info
        .subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let [cn] = cns.as_slice() else {
        return false;
    };
    let Some(node) = cn.strip_prefix("system:node:") else {
        return false;
    };
    let node_ok = !node.is_empty()
        && node.len() <= 253
        && node.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !node_ok {
        return false;
    }
    // Every extensionRequest attribute, every SAN extension: no names at all.
    let mut extension_requests = 0;
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            extension_requests += 1;
            for ext in &er.extensions {
                match ext.parsed_extension() {
                    ParsedExtension::SubjectAlternativeName(san)
                        if !san.general_names.is_empty() =>
                    {
                        return false;
                    }
                    ParsedExtension::ParseError { .. } => return false,
                    _ => {}
                }
            }
        }
    }
    if extension_requests > 1 {
        return false;
    }
    let set: std::collections::BTreeSet<&str> = spec.usages.iter().map(String::as_str).collect();
    let a: std::collections::BTreeSet<&str> =
        ["digital signature", "key encipherment", "client auth"].into();
    let b: std::collections::BTreeSet<&str> = ["digital signature", "client auth"].into();
    set == a || set == b
}

/// A deliberately naive base64 decoder (no canonical-bits check), independent of the policy's.
fn reference_base64(body: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let trimmed: &[u8] = match body {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => body,
    };
    if !body.len().is_multiple_of(4) {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in trimmed {
        let v = ALPHABET.iter().position(|a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

/// Checks the invariants every decision must hold, whatever the input.
fn check_decision(spec: &Spec, request: &[u8], d: &Decision) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.class, SignerClass::of(&spec.signer));
    let names_unique = {
        let mut n: Vec<&str> = d.checks.iter().map(|c| c.name).collect();
        let len = n.len();
        n.sort_unstable();
        n.dedup();
        n.len() == len
    };
    prop_assert!(names_unique, "duplicate check names: {:?}", d.checks);
    let failed: Vec<&String> = d.checks.iter().filter_map(|c| c.detail.as_ref()).collect();
    prop_assert_eq!(failed, d.violations.iter().collect::<Vec<_>>());
    match d.verdict {
        Verdict::Authorize => {
            prop_assert!(
                oracle_authorizable(spec, request),
                "authorized a request that breaks a rule: {:?}",
                d
            );
            prop_assert!(d.violations.is_empty());
            prop_assert!(!d.subject_access_reviews.is_empty());
            prop_assert_eq!(
                d.subject_access_reviews.last(),
                Some(&SarSubresource::NodeClient)
            );
        }
        Verdict::Reject => {
            prop_assert!(!d.violations.is_empty());
            prop_assert!(d.subject_access_reviews.is_empty());
        }
        Verdict::Manual => {
            prop_assert_eq!(d.class, SignerClass::KubeletServing);
            prop_assert!(d.violations.is_empty());
        }
        Verdict::Ignore => {
            prop_assert!(d.ignore_reason.is_some());
            prop_assert!(d.checks.is_empty());
        }
    }
    // The converse for the unmutated shape: a request the oracle accepts is authorized.
    if oracle_authorizable(spec, request) && d.verdict != Verdict::Authorize {
        // Only strict-DER/PEM refusals the oracle does not model may differ.
        let stage_failed = d.checks.iter().any(|c| {
            !c.passed
                && (c.name == stage::DER || c.name == stage::PEM || c.name == stage::ATTRIBUTES)
        });
        prop_assert!(stage_failed, "oracle-valid request not authorized: {:?}", d);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    Insert { at: usize, value: u8 },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Set { at, value } => bytes[at % n] = value,
        Mutation::Insert { at, value } => bytes.insert(at % (n + 1), value),
        Mutation::Delete { at, len } => {
            let start = at % n;
            let end = (start + len).min(n);
            bytes.drain(start..end);
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::Duplicate { at, len } => {
            let start = at % n;
            let end = (start + len).min(n);
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let usages = prop::sample::subsequence(
        vec![
            "digital signature",
            "key encipherment",
            "client auth",
            "server auth",
            "cert sign",
        ],
        0..=5,
    );
    let signer = prop::sample::select(vec![
        SIGNER_KUBELET_CLIENT,
        SIGNER_KUBELET_CLIENT,
        SIGNER_KUBELET_CLIENT,
        SIGNER_KUBELET_SERVING,
        "kubernetes.io/kube-apiserver-client",
    ]);
    let user = prop::sample::select(vec![BOOTSTRAP_USER, NODE_USER, "system:node:worker-2", ""]);
    (usages, signer, user, any::<[bool; 3]>()).prop_map(|(usages, signer, user, flags)| Spec {
        signer: signer.into(),
        usages: strings(&usages),
        username: user.into(),
        groups: strings(&["system:nodes"]),
        // Mostly undecided, so the content checks run.
        approved: flags[0] && flags[1],
        denied: flags[0] && flags[2],
        issued: flags[1] && flags[2] && flags[0],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn der_mutations_never_panic_and_never_wrongly_authorize(
        base in 0usize..2,
        mutations in prop::collection::vec(mutation(), 0..4),
        spec in spec_strategy(),
    ) {
        let mut der = bases()[base].clone();
        for m in &mutations {
            apply(&mut der, m);
        }
        let request = pem(&der);
        let d = spec.decide(&request);
        check_decision(&spec, request.as_bytes(), &d)?;
        if mutations.is_empty() && spec.signer == SIGNER_KUBELET_CLIENT
            && !(spec.approved || spec.denied || spec.issued)
        {
            // Unmutated requests differ from a valid CSR only by the spec.
            prop_assert_eq!(d.verdict == Verdict::Authorize, oracle_authorizable(&spec, request.as_bytes()));
        }
    }

    #[test]
    fn pem_text_mutations_never_panic_and_never_wrongly_authorize(
        base in 0usize..2,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = pem(&bases()[base]).into_bytes();
        for m in &mutations {
            apply(&mut text, m);
        }
        let spec = Spec::renewal();
        let d = spec.decide(&text);
        check_decision(&spec, &text, &d)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for spec in [Spec::bootstrap(), Spec::serving()] {
            let d = spec.decide(&bytes);
            check_decision(&spec, &bytes, &d)?;
            prop_assert_eq!(d.verdict, Verdict::Reject);
        }
        // Random bytes wrapped as a PEM body reach the DER parser.
        let wrapped = pem(&bytes);
        let d = Spec::bootstrap().decide(&wrapped);
        check_decision(&Spec::bootstrap(), wrapped.as_bytes(), &d)?;
    }

    #[test]
    fn base64_decoding_inverts_encoding(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = pem(&bytes);
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        prop_assert_eq!(decode_base64(body.as_bytes()).unwrap(), bytes);
    }
}

/// Generated subjects, SANs and usages: the verdict must equal what the rules say, computed
/// from the parameters rather than from the request.
fn model_verdict(orgs: &[&str], cn: Option<&str>, n_sans: usize, spec: &Spec) -> Verdict {
    let usage_ok = {
        let set: std::collections::BTreeSet<&str> =
            spec.usages.iter().map(String::as_str).collect();
        set == ["digital signature", "key encipherment", "client auth"].into()
            || set == ["digital signature", "client auth"].into()
    };
    let cn_ok = cn.is_some_and(|cn| {
        cn.strip_prefix("system:node:")
            .is_some_and(|n| validate_dns1123_subdomain(n).is_ok())
    });
    if orgs == ["system:nodes"] && cn_ok && n_sans == 0 && usage_ok {
        Verdict::Authorize
    } else {
        Verdict::Reject
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_get_the_rules_verdict(
        org in prop::sample::select(vec![Some("system:nodes"), Some("system:masters"), Some("System:nodes"), None]),
        cn in prop::sample::select(vec![
            Some("system:node:worker-1"), Some("system:node:"), Some("system:node:Worker"),
            Some("system:admin"), Some("system:node:a.b-c"), None,
        ]),
        sans in prop::sample::subsequence(vec!["dns", "ip", "email", "uri"], 0..=4),
        usages in prop::sample::subsequence(vec!["digital signature", "key encipherment", "client auth", "server auth"], 0..=4),
        user in prop::sample::select(vec![NODE_USER, BOOTSTRAP_USER]),
    ) {
        let san_types: Vec<SanType> = sans.iter().map(|s| match *s {
            "dns" => dns("worker-1.example"),
            "ip" => ip("10.0.0.5"),
            "email" => SanType::Rfc822Name("a@b.c".try_into().unwrap()),
            _ => SanType::URI("spiffe://x/y".try_into().unwrap()),
        }).collect();
        let request = csr(p256_key(), cn, org, san_types);
        let spec = Spec::renewal().usages(&usages).user(user, &["system:nodes"]);
        let d = spec.decide(&request);
        let orgs: Vec<&str> = org.into_iter().collect();
        prop_assert_eq!(d.verdict, model_verdict(&orgs, cn, sans.len(), &spec), "{:?}", d);
        check_decision(&spec, request.as_bytes(), &d)?;
        if d.verdict == Verdict::Authorize {
            let expected = if Some(user) == cn {
                vec![SarSubresource::SelfNodeClient, SarSubresource::NodeClient]
            } else {
                vec![SarSubresource::NodeClient]
            };
            prop_assert_eq!(&d.subject_access_reviews, &expected);
        }
    }
}
