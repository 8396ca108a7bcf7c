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
use rcgen::{KeyPair, PublicKeyData, SanType};
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
    // Go right-aligns a signature BIT STRING with unused bits before checking it, so such a
    // signature never verifies there; x509-parser's verifier ignores the unused-bits count.
    if !rest.is_empty() || req.signature_value.unused_bits != 0 || req.verify_signature().is_err() {
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
            // Only client CSRs are rejected; a failing serving CSR goes to a person.
            prop_assert_eq!(d.class, SignerClass::KubeletClient);
            prop_assert!(!d.violations.is_empty());
            prop_assert!(d.subject_access_reviews.is_empty());
        }
        Verdict::Manual => {
            // Every serving CSR, failing checks or not; its violations are kept for the person.
            prop_assert_eq!(d.class, SignerClass::KubeletServing);
            prop_assert!(d.subject_access_reviews.is_empty());
            prop_assert_eq!(
                d.violations.len(),
                d.checks.iter().filter(|c| !c.passed).count()
            );
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
            let expected = if spec.signer == SIGNER_KUBELET_SERVING {
                Verdict::Manual
            } else {
                Verdict::Reject
            };
            prop_assert_eq!(d.verdict, expected);
            prop_assert!(!d.violations.is_empty());
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
    let cn_ok = cn.is_some_and(|cn| cn.strip_prefix("system:node:").is_some_and(model_dns1123));
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

// ------------------------------------------------------------------ structure, re-signed

// Byte mutations of a signed request only ever test the signature check: any change to the signed
// part breaks it. These properties generate the request's *structure* instead — subject CN/O
// values, string types, counts and order; SANs of every kind; extensions and attributes; key type,
// curve and size; signature algorithm — build it as DER, sign it with a real key, and compare the
// whole decision with a model written from docs/security.md that calls no policy code.

use ring::signature::{self as rs, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};

/// The model's own DNS-1123 subdomain check: `[a-z0-9]([-a-z0-9]*[a-z0-9])?` labels joined by
/// dots, 253 characters at most.
fn model_dns1123(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.len() <= 253
        && s.split('.').all(|label| {
            label.starts_with(alnum)
                && label.ends_with(alnum)
                && label.chars().all(|c| alnum(c) || c == '-')
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrType {
    Utf8,
    Printable,
    Ia5,
    Bmp,
    T61,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Attr {
    Cn(StrType, &'static str),
    O(StrType, &'static str),
    Ou(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum San {
    Dns(&'static str),
    Ip(std::net::IpAddr),
    Email(&'static str),
    Uri(&'static str),
    OtherName,
    DirName,
    RegisteredId,
    /// An IP SAN of 5 bytes.
    BadIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    KeyUsage,
    ExtendedKeyUsage,
    BasicConstraints,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtFault {
    /// keyUsage requested twice.
    Duplicate,
    /// A keyUsage value that does not decode.
    Malformed,
    /// Bytes after an extension's value inside its OCTET STRING.
    Trailing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrFault {
    /// A second extensionRequest attribute.
    TwoExtensionRequests,
    /// The extensionRequest SET holds two values.
    TwoValues,
    /// A challengePassword attribute (refused: docs/security.md, divergence 12).
    ChallengePassword,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    /// Keys ring cannot sign with: the request carries the key, the signature is junk.
    P521,
    Rsa1024,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigAlg {
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    EcdsaSha1,
    RsaSha256,
    RsaSha384,
    RsaSha512,
    RsaSha1,
    Pss256,
    Pss384,
    Pss512,
    Ed25519,
}

/// One generated request and the CSR object around it.
#[derive(Debug, Clone)]
struct Shape {
    /// Attributes in encoded order; `rdn_split[i]` starts a new RDN before attribute i.
    subject: Vec<Attr>,
    /// Put the first two attributes in one multi-valued RDN.
    multi_valued_rdn: bool,
    sans: Vec<San>,
    extensions: Vec<Ext>,
    ext_fault: Option<ExtFault>,
    attr_fault: Option<AttrFault>,
    key: Key,
    sig: SigAlg,
    tampered: bool,
    version: u8,
    signer: &'static str,
    usages: Vec<&'static str>,
    username: &'static str,
    groups: Vec<&'static str>,
}

impl Shape {
    /// The subject's CN values, in order (the model and the parse check read the same list).
    fn common_names(&self) -> Vec<&'static str> {
        self.subject_values(|a| {
            if let Attr::Cn(_, v) = a {
                Some(v)
            } else {
                None
            }
        })
    }

    /// The subject's O values, in order.
    fn organizations(&self) -> Vec<&'static str> {
        self.subject_values(|a| if let Attr::O(_, v) = a { Some(v) } else { None })
    }

    fn subject_values(&self, pick: fn(&Attr) -> Option<&&'static str>) -> Vec<&'static str> {
        self.subject.iter().filter_map(pick).copied().collect()
    }
}

const VALID_CN: &str = "system:node:worker-1";

fn str_type() -> impl Strategy<Value = StrType> {
    prop_oneof![
        12 => Just(StrType::Utf8),
        3 => Just(StrType::Printable),
        2 => Just(StrType::Ia5),
        1 => Just(StrType::Bmp),
        1 => Just(StrType::T61),
    ]
}

/// `system:node:` and a node name of `n` characters.
fn node_cn(n: usize) -> &'static str {
    static NAMES: OnceLock<(String, String)> = OnceLock::new();
    let (longest, too_long) = NAMES.get_or_init(|| {
        (
            format!("system:node:{}.{}", "a".repeat(126), "b".repeat(126)),
            format!("system:node:{}", "a".repeat(254)),
        )
    });
    if n <= 253 { longest } else { too_long }
}

fn cn_value() -> impl Strategy<Value = &'static str> {
    let long = node_cn(253);
    let too_long = node_cn(254);
    prop_oneof![
        8 => Just(VALID_CN),
        2 => Just("system:node:a.b-c"),
        1 => Just(long),
        4 => prop::sample::select(vec![
            "system:node:",
            "system:node:Worker-1",
            "system:node:worker_1",
            "system:node:worker-1.",
            "system:node:-w",
            "system:node:a..b",
            "system:node:worker-1 ",
            "system:nodes:worker-1",
            "System:node:worker-1",
            "system:admin",
            "",
            too_long,
        ]),
    ]
}

fn o_value() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just("system:nodes"),
        3 => prop::sample::select(vec!["system:masters", "System:nodes", "system:nodes ", ""]),
    ]
}

fn subject_strategy() -> impl Strategy<Value = (Vec<Attr>, bool)> {
    let cn = || (str_type(), cn_value()).prop_map(|(t, v)| Attr::Cn(t, v));
    let o = || (str_type(), o_value()).prop_map(|(t, v)| Attr::O(t, v));
    // Mostly exactly one of each, so the other rules get a chance to decide.
    let cns = prop_oneof![
        6 => prop::collection::vec(cn(), 1..=1),
        1 => prop::collection::vec(cn(), 0..=3),
    ];
    let os = prop_oneof![
        6 => prop::collection::vec(o(), 1..=1),
        1 => prop::collection::vec(o(), 0..=3),
    ];
    let ou = prop::option::weighted(0.2, prop::sample::select(vec!["pool-a", "system:masters"]));
    (
        os,
        cns,
        ou,
        any::<prop::sample::Index>(),
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(os, cns, ou, rotate, cn_first, multi)| {
            // Go writes O before CN; other orders happen (OpenSSL -subj, hand-made requests).
            let mut attrs: Vec<Attr> = if cn_first {
                cns.into_iter().chain(os).collect()
            } else {
                os.into_iter().chain(cns).collect()
            };
            if let Some(ou) = ou {
                let at = rotate.index(attrs.len() + 1);
                attrs.insert(at, Attr::Ou(ou));
            }
            let multi = multi && attrs.len() >= 2;
            (attrs, multi)
        })
}

fn san_strategy() -> impl Strategy<Value = San> {
    use std::net::IpAddr;
    let ips: Vec<IpAddr> = [
        "10.0.0.5",
        "127.0.0.1",
        "0.0.0.0",
        "::1",
        "fd00::5",
        "::ffff:127.0.0.1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    prop_oneof![
        4 => prop::sample::select(vec![
            "worker-1", "worker-1.example", "Worker-1.Example.", "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost",
            "a.localhost", "*.example",
        ]).prop_map(San::Dns),
        3 => prop::sample::select(ips).prop_map(San::Ip),
        1 => Just(San::Email("node@example.com")),
        1 => Just(San::Uri("spiffe://cluster/node")),
        1 => Just(San::OtherName),
        1 => Just(San::DirName),
        1 => Just(San::RegisteredId),
        1 => Just(San::BadIp),
    ]
}

fn usages_strategy() -> impl Strategy<Value = Vec<&'static str>> {
    let client_sets = prop::sample::select(vec![
        vec!["digital signature", "key encipherment", "client auth"],
        vec!["client auth", "digital signature"],
        vec!["client auth", "digital signature", "client auth"],
    ]);
    let serving_sets = prop::sample::select(vec![
        vec!["digital signature", "key encipherment", "server auth"],
        vec!["server auth", "digital signature"],
    ]);
    let any_usages = prop::sample::subsequence(
        vec![
            "digital signature",
            "key encipherment",
            "client auth",
            "server auth",
            "cert sign",
            "Client Auth",
        ],
        0..=6,
    );
    prop_oneof![6 => client_sets, 2 => serving_sets, 2 => any_usages]
}

fn key_and_sig() -> impl Strategy<Value = (Key, SigAlg)> {
    let key = prop_oneof![
        6 => Just(Key::P256),
        2 => Just(Key::P384),
        2 => Just(Key::Ed25519),
        2 => Just(Key::Rsa2048),
        1 => Just(Key::P521),
        1 => Just(Key::Rsa1024),
    ];
    let any_sig = prop::sample::select(vec![
        SigAlg::EcdsaSha256,
        SigAlg::EcdsaSha384,
        SigAlg::EcdsaSha512,
        SigAlg::EcdsaSha1,
        SigAlg::RsaSha256,
        SigAlg::RsaSha384,
        SigAlg::RsaSha512,
        SigAlg::RsaSha1,
        SigAlg::Pss256,
        SigAlg::Pss384,
        SigAlg::Pss512,
        SigAlg::Ed25519,
    ]);
    (key, prop::option::weighted(0.3, any_sig)).prop_map(|(key, sig)| {
        let natural = match key {
            Key::P256 | Key::P521 => SigAlg::EcdsaSha256,
            Key::P384 => SigAlg::EcdsaSha384,
            Key::Ed25519 => SigAlg::Ed25519,
            Key::Rsa2048 | Key::Rsa1024 => SigAlg::RsaSha256,
        };
        // ring signs ECDSA only with the curve's own hash (P-256/SHA-256, P-384/SHA-384); the
        // allowed cross pairs (P-256 with SHA-384, P-384 with SHA-256) cannot be made here.
        let sig = match (key, sig) {
            (Key::P256, Some(SigAlg::EcdsaSha384)) | (Key::P384, Some(SigAlg::EcdsaSha256)) => None,
            _ => sig,
        };
        (key, sig.unwrap_or(natural))
    })
}

fn shape_strategy() -> impl Strategy<Value = Shape> {
    let extensions = prop::sample::subsequence(
        vec![
            Ext::KeyUsage,
            Ext::ExtendedKeyUsage,
            Ext::BasicConstraints,
            Ext::Unknown,
        ],
        0..=4,
    );
    let ext_fault = prop::option::weighted(
        0.08,
        prop::sample::select(vec![
            ExtFault::Duplicate,
            ExtFault::Malformed,
            ExtFault::Trailing,
        ]),
    );
    let attr_fault = prop::option::weighted(
        0.1,
        prop::sample::select(vec![
            AttrFault::TwoExtensionRequests,
            AttrFault::TwoValues,
            AttrFault::ChallengePassword,
        ]),
    );
    let sans = prop_oneof![5 => Just(vec![]), 3 => prop::collection::vec(san_strategy(), 1..=3)];
    let signer = prop_oneof![3 => Just(SIGNER_KUBELET_CLIENT), 1 => Just(SIGNER_KUBELET_SERVING)];
    let requester = prop::sample::select(vec![
        (VALID_CN, vec!["system:nodes"]),
        (VALID_CN, vec!["system:bootstrappers"]),
        (BOOTSTRAP_USER, vec!["system:bootstrappers"]),
        ("system:node:a.b-c", vec!["system:nodes"]),
    ]);
    (
        (subject_strategy(), sans, extensions, ext_fault, attr_fault),
        (
            key_and_sig(),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.05),
        ),
        (signer, usages_strategy(), requester),
    )
        .prop_map(
            |(
                ((subject, multi_valued_rdn), sans, extensions, ext_fault, attr_fault),
                ((key, sig), tampered, v2),
                (signer, usages, (username, groups)),
            )| Shape {
                subject,
                multi_valued_rdn,
                sans,
                extensions,
                ext_fault,
                attr_fault,
                key,
                sig,
                tampered,
                version: u8::from(v2),
                signer,
                usages,
                username,
                groups,
            },
        )
}

// --- building and signing ---

struct Signers {
    p256: KeyPair,
    p384: KeyPair,
    ed25519: KeyPair,
    rsa: KeyPair,
    p521_spki: Vec<u8>,
    rsa1024_spki: Vec<u8>,
}

fn signers() -> &'static Signers {
    static S: OnceLock<Signers> = OnceLock::new();
    S.get_or_init(|| {
        let spki_of = |fixture_name: &str| {
            let text = fixture(fixture_name);
            let body: Vec<u8> = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.starts_with(b"-----"))
                .flatten()
                .copied()
                .collect();
            let der = reference_base64(&body).unwrap();
            let (_, req) = X509CertificationRequest::from_der(&der).unwrap();
            req.certification_request_info.subject_pki.raw.to_vec()
        };
        Signers {
            p256: p256(),
            p384: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            ed25519: KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            rsa: rsa2048(),
            p521_spki: spki_of("p521.csr.pem"),
            rsa1024_spki: spki_of("rsa-1024.csr.pem"),
        }
    })
}

fn hash_alg(dotted: &str) -> Vec<u8> {
    seq(&[oid(dotted), vec![0x05, 0x00]])
}

fn sig_algorithm_identifier(sig: SigAlg) -> Vec<u8> {
    let null = || vec![0x05, 0x00];
    let pss = |hash: &str, salt: u8| {
        seq(&[
            oid("1.2.840.113549.1.1.10"),
            seq(&[
                tlv(0xa0, &hash_alg(hash)),
                tlv(0xa1, &seq(&[oid("1.2.840.113549.1.1.8"), hash_alg(hash)])),
                tlv(0xa2, &tlv(0x02, &[salt])),
            ]),
        ])
    };
    match sig {
        SigAlg::EcdsaSha256 => seq(&[oid("1.2.840.10045.4.3.2")]),
        SigAlg::EcdsaSha384 => seq(&[oid("1.2.840.10045.4.3.3")]),
        SigAlg::EcdsaSha512 => seq(&[oid("1.2.840.10045.4.3.4")]),
        SigAlg::EcdsaSha1 => seq(&[oid("1.2.840.10045.4.1")]),
        SigAlg::RsaSha256 => seq(&[oid("1.2.840.113549.1.1.11"), null()]),
        SigAlg::RsaSha384 => seq(&[oid("1.2.840.113549.1.1.12"), null()]),
        SigAlg::RsaSha512 => seq(&[oid("1.2.840.113549.1.1.13"), null()]),
        SigAlg::RsaSha1 => seq(&[oid("1.2.840.113549.1.1.5"), null()]),
        SigAlg::Pss256 => pss("2.16.840.1.101.3.4.2.1", 32),
        SigAlg::Pss384 => pss("2.16.840.1.101.3.4.2.2", 48),
        SigAlg::Pss512 => pss("2.16.840.1.101.3.4.2.3", 64),
        SigAlg::Ed25519 => seq(&[oid("1.3.101.112")]),
    }
}

/// The model's allow-list (docs/security.md, `signature-algorithm`): which algorithm may sign
/// with which key. Everything else is refused by name.
fn model_sig_allowed(key: Key, sig: SigAlg) -> bool {
    matches!(
        (key, sig),
        (
            Key::P256 | Key::P384,
            SigAlg::EcdsaSha256 | SigAlg::EcdsaSha384
        ) | (
            Key::Rsa2048,
            SigAlg::RsaSha256
                | SigAlg::RsaSha384
                | SigAlg::RsaSha512
                | SigAlg::Pss256
                | SigAlg::Pss384
                | SigAlg::Pss512
        ) | (Key::Ed25519, SigAlg::Ed25519)
    )
}

/// A real signature by the shape's key with the shape's algorithm, or — where that pair is not
/// one the signer can make (a refused algorithm, a mismatched key, a key ring cannot use) — the
/// key's natural signature: the policy must refuse those before looking at the signature.
fn sign_tbs(key: Key, sig: SigAlg, tbs: &[u8]) -> Vec<u8> {
    let s = signers();
    let rng = ring::rand::SystemRandom::new();
    let ecdsa = |pair: &KeyPair, alg| {
        EcdsaKeyPair::from_pkcs8(alg, &pair.serialize_der(), &rng)
            .unwrap()
            .sign(&rng, tbs)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let rsa = |padding: &'static dyn rs::RsaEncoding| {
        let pair = RsaKeyPair::from_pkcs8(&s.rsa.serialize_der()).unwrap();
        let mut out = vec![0; pair.public().modulus_len()];
        pair.sign(padding, &rng, tbs, &mut out).unwrap();
        out
    };
    match (key, model_sig_allowed(key, sig).then_some(sig)) {
        (Key::P256 | Key::P521, _) => ecdsa(&s.p256, &rs::ECDSA_P256_SHA256_ASN1_SIGNING),
        (Key::P384, _) => ecdsa(&s.p384, &rs::ECDSA_P384_SHA384_ASN1_SIGNING),
        (Key::Ed25519, _) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&s.ed25519.serialize_der())
            .unwrap()
            .sign(tbs)
            .as_ref()
            .to_vec(),
        (Key::Rsa2048 | Key::Rsa1024, Some(SigAlg::RsaSha384)) => rsa(&rs::RSA_PKCS1_SHA384),
        (Key::Rsa2048 | Key::Rsa1024, Some(SigAlg::RsaSha512)) => rsa(&rs::RSA_PKCS1_SHA512),
        (Key::Rsa2048 | Key::Rsa1024, Some(SigAlg::Pss256)) => rsa(&rs::RSA_PSS_SHA256),
        (Key::Rsa2048 | Key::Rsa1024, Some(SigAlg::Pss384)) => rsa(&rs::RSA_PSS_SHA384),
        (Key::Rsa2048 | Key::Rsa1024, Some(SigAlg::Pss512)) => rsa(&rs::RSA_PSS_SHA512),
        (Key::Rsa2048 | Key::Rsa1024, _) => rsa(&rs::RSA_PKCS1_SHA256),
    }
}

fn string_value(t: StrType, v: &str) -> Vec<u8> {
    match t {
        StrType::Utf8 => tlv(0x0c, v.as_bytes()),
        StrType::Printable => tlv(0x13, v.as_bytes()),
        StrType::Ia5 => tlv(0x16, v.as_bytes()),
        StrType::Bmp => {
            let units: Vec<u8> = v.encode_utf16().flat_map(u16::to_be_bytes).collect();
            tlv(0x1e, &units)
        }
        StrType::T61 => tlv(0x14, v.as_bytes()),
    }
}

/// A PrintableString may only hold `A-Za-z0-9 '()+,-./:=?`; for values outside that set the
/// shape uses a UTF8String instead, so the model never depends on how strictly a parser reads
/// PrintableString characters.
fn effective_type(t: StrType, v: &str) -> StrType {
    let printable = v
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&c));
    if t == StrType::Printable && !printable {
        StrType::Utf8
    } else {
        t
    }
}

fn atv(a: &Attr) -> Vec<u8> {
    let (o, value) = match a {
        Attr::Cn(t, v) => (OID_CN, string_value(effective_type(*t, v), v)),
        Attr::O(t, v) => (OID_O, string_value(effective_type(*t, v), v)),
        Attr::Ou(v) => ("2.5.4.11", utf8(v)),
    };
    seq(&[oid(o), value])
}

fn san_entry(s: &San) -> Vec<u8> {
    match s {
        San::Dns(d) => tlv(0x82, d.as_bytes()),
        San::Ip(std::net::IpAddr::V4(a)) => tlv(0x87, &a.octets()),
        San::Ip(std::net::IpAddr::V6(a)) => tlv(0x87, &a.octets()),
        San::Email(e) => tlv(0x81, e.as_bytes()),
        San::Uri(u) => tlv(0x86, u.as_bytes()),
        San::OtherName => tlv(
            0xa0,
            &[
                oid("1.3.6.1.4.1.311.20.2.3"),
                tlv(0xa0, &utf8("admin@corp")),
            ]
            .concat(),
        ),
        San::DirName => tlv(0xa4, &name(&[(OID_CN, utf8("system:admin"))])),
        San::RegisteredId => tlv(0x88, &oid("1.2.3.4")[2..]),
        San::BadIp => tlv(0x87, &[1, 2, 3, 4, 5]),
    }
}

fn extension_der(id: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, &value));
    seq(&parts)
}

const OID_KEY_USAGE: &str = "2.5.29.15";

fn build(shape: &Shape) -> Vec<u8> {
    let s = signers();
    let mut rdns: Vec<Vec<u8>> = Vec::new();
    let mut attrs = shape.subject.iter();
    if shape.multi_valued_rdn {
        let first: Vec<Vec<u8>> = attrs.by_ref().take(2).map(atv).collect();
        rdns.push(set(&first));
    }
    rdns.extend(attrs.map(|a| set(&[atv(a)])));
    let subject = seq(&rdns);

    let mut exts: Vec<Vec<u8>> = Vec::new();
    if !shape.sans.is_empty() {
        let names: Vec<Vec<u8>> = shape.sans.iter().map(san_entry).collect();
        exts.push(extension_der(OID_SAN, false, seq(&names)));
    }
    for e in &shape.extensions {
        exts.push(match e {
            Ext::KeyUsage => extension_der(OID_KEY_USAGE, true, tlv(0x03, &[0x05, 0xa0])),
            Ext::ExtendedKeyUsage => {
                extension_der("2.5.29.37", false, seq(&[oid("1.3.6.1.5.5.7.3.2")]))
            }
            Ext::BasicConstraints => extension_der("2.5.29.19", true, seq(&[])),
            Ext::Unknown => extension_der("1.3.6.1.4.1.99999.1", false, tlv(0x04, b"x")),
        });
    }
    match shape.ext_fault {
        Some(ExtFault::Duplicate) => {
            let ku = extension_der(OID_KEY_USAGE, true, tlv(0x03, &[0x07, 0x80]));
            exts.push(ku.clone());
            exts.push(ku);
        }
        Some(ExtFault::Malformed) => {
            exts.push(extension_der(OID_KEY_USAGE, true, tlv(0x04, &[1])));
        }
        Some(ExtFault::Trailing) => {
            let mut value = seq(&[oid("1.3.6.1.5.5.7.3.2")]);
            value.extend([0x05, 0x00]);
            exts.push(extension_der("2.5.29.37", false, value));
        }
        None => {}
    }
    let mut attributes: Vec<Vec<u8>> = Vec::new();
    match shape.attr_fault {
        Some(AttrFault::TwoValues) => attributes.push(seq(&[
            oid(OID_EXTENSION_REQUEST),
            set(&[seq(&exts), seq(&[])]),
        ])),
        Some(AttrFault::TwoExtensionRequests) => {
            attributes.push(extension_request(&exts));
            attributes.push(extension_request(&[]));
        }
        Some(AttrFault::ChallengePassword) | None => {
            if !exts.is_empty() {
                attributes.push(extension_request(&exts));
            }
        }
    }
    if shape.attr_fault == Some(AttrFault::ChallengePassword) {
        attributes.push(seq(&[oid("1.2.840.113549.1.9.7"), set(&[utf8("secret")])]));
    }

    let spki = match shape.key {
        Key::P256 => s.p256.subject_public_key_info(),
        Key::P384 => s.p384.subject_public_key_info(),
        Key::Ed25519 => s.ed25519.subject_public_key_info(),
        Key::Rsa2048 => s.rsa.subject_public_key_info(),
        Key::P521 => s.p521_spki.clone(),
        Key::Rsa1024 => s.rsa1024_spki.clone(),
    };
    let tbs = seq(&[
        tlv(0x02, &[shape.version]),
        subject,
        spki,
        tlv(0xa0, &attributes.concat()),
    ]);
    let mut signature = sign_tbs(shape.key, shape.sig, &tbs);
    if shape.tampered
        && let Some(b) = signature.last_mut()
    {
        *b ^= 1;
    }
    let mut bits = vec![0u8];
    bits.extend(signature);
    seq(&[tbs, sig_algorithm_identifier(shape.sig), tlv(0x03, &bits)])
}

// --- the model ---

/// What docs/security.md says `decide` returns for a shape: the verdict and the names of the
/// failed checks, in check order.
fn model(shape: &Shape) -> (Verdict, Vec<&'static str>) {
    let string_ok = |t: StrType| !matches!(t, StrType::Bmp | StrType::T61);
    // Parse stages, in order; the first failure is the only failed check.
    let stage = if shape.version != 0 {
        Some("der")
    } else if shape.ext_fault.is_some() || shape.attr_fault.is_some() {
        Some("attributes")
    } else if shape.subject.iter().any(|a| match a {
        Attr::Cn(t, _) | Attr::O(t, _) => !string_ok(*t),
        Attr::Ou(_) => false,
    }) || shape.sans.contains(&San::BadIp)
    {
        Some("subject-and-sans")
    } else if matches!(shape.key, Key::P521 | Key::Rsa1024) {
        Some("public-key")
    } else if !model_sig_allowed(shape.key, shape.sig) {
        Some("signature-algorithm")
    } else if shape.tampered {
        Some("signature")
    } else {
        None
    };
    // A serving CSR goes to a person whatever fails; only a client CSR is rejected.
    let failing_verdict = if shape.signer == SIGNER_KUBELET_CLIENT {
        Verdict::Reject
    } else {
        Verdict::Manual
    };
    if let Some(stage) = stage {
        return (failing_verdict, vec![stage]);
    }

    let cns = shape.common_names();
    let orgs = shape.organizations();
    let last_cn = cns.last().copied().unwrap_or("");
    let has = |f: fn(&San) -> bool| shape.sans.iter().any(f);
    let dns = has(|s| matches!(s, San::Dns(_)));
    let ip = has(|s| matches!(s, San::Ip(_)));
    let email = has(|s| matches!(s, San::Email(_)));
    let uri = has(|s| matches!(s, San::Uri(_)));
    let other = has(|s| matches!(s, San::OtherName | San::DirName | San::RegisteredId));
    let usage_set: std::collections::BTreeSet<&str> = shape.usages.iter().copied().collect();
    let sets_equal = |allowed: &[&[&str]]| {
        allowed
            .iter()
            .any(|a| usage_set == a.iter().copied().collect())
    };
    let prefix = last_cn.starts_with("system:node:");
    let node_name_ok = last_cn
        .strip_prefix("system:node:")
        .map(|n| !n.is_empty() && model_dns1123(n));

    let mut checks: Vec<(&'static str, bool)> = Vec::new();
    let client = shape.signer == SIGNER_KUBELET_CLIENT;
    checks.push(("organization", orgs == ["system:nodes"]));
    if client {
        checks.extend([
            ("no-dns-sans", !dns),
            ("no-email-sans", !email),
            ("no-ip-sans", !ip),
            ("no-uri-sans", !uri),
            ("common-name-prefix", prefix),
            (
                "usages",
                sets_equal(&[
                    &["digital signature", "key encipherment", "client auth"],
                    &["digital signature", "client auth"],
                ]),
            ),
        ]);
    } else {
        checks.extend([
            ("dns-or-ip-san", dns || ip),
            ("no-email-sans", !email),
            ("no-uri-sans", !uri),
            (
                "usages",
                sets_equal(&[
                    &["digital signature", "key encipherment", "server auth"],
                    &["digital signature", "server auth"],
                ]),
            ),
            ("common-name-prefix", prefix),
        ]);
    }
    checks.push(("single-common-name", cns.len() == 1));
    if let Some(ok) = node_name_ok {
        checks.push(("node-name", ok));
    }
    checks.push(("no-other-sans", !other));
    if !client {
        let flagged = shape.sans.iter().any(|s| match s {
            San::Dns(d) => {
                let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
                d.contains('*')
                    || ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
                        .contains(&d.as_str())
                    || d.starts_with("kubernetes.default.svc.")
                    || d == "localhost"
                    || d.ends_with(".localhost")
            }
            San::Ip(ip) => {
                let ip = ip.to_canonical();
                ip.is_loopback() || ip.is_unspecified()
            }
            _ => false,
        });
        checks.extend([
            (
                "requester-is-node",
                shape
                    .username
                    .strip_prefix("system:node:")
                    .is_some_and(|n| !n.is_empty()),
            ),
            (
                "requester-in-nodes-group",
                shape.groups.contains(&"system:nodes"),
            ),
            ("common-name-is-requester", last_cn == shape.username),
            ("no-api-server-identity", !flagged),
        ]);
    }
    let failed: Vec<&'static str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    let verdict = match (client, failed.is_empty()) {
        (true, true) => Verdict::Authorize,
        (false, true) => Verdict::Manual,
        (_, false) => failing_verdict,
    };
    (verdict, failed)
}

fn check_against_model(shape: &Shape) -> Result<(), TestCaseError> {
    let der = build(shape);
    let request = pem(&der);
    let spec = Spec {
        signer: shape.signer.into(),
        usages: strings(&shape.usages),
        username: shape.username.into(),
        groups: strings(&shape.groups),
        approved: false,
        denied: false,
        issued: false,
    };
    let d = spec.decide(&request);
    let (verdict, failed_checks) = model(shape);
    prop_assert_eq!(
        (d.verdict, failed(&d)),
        (verdict, failed_checks),
        "violations: {:?}",
        d.violations
    );
    if let Some(parsed) = &d.parsed {
        // The parser read exactly what was built.
        prop_assert_eq!(&parsed.common_names, &shape.common_names());
        prop_assert_eq!(&parsed.organizations, &shape.organizations());
        let dns: Vec<&str> = shape
            .sans
            .iter()
            .filter_map(|s| match s {
                San::Dns(d) => Some(*d),
                _ => None,
            })
            .collect();
        let ips: Vec<std::net::IpAddr> = shape
            .sans
            .iter()
            .filter_map(|s| match s {
                San::Ip(ip) => Some(*ip),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&parsed.dns_names, &dns);
        prop_assert_eq!(&parsed.ip_addresses, &ips);
        let other = shape
            .sans
            .iter()
            .filter(|s| matches!(s, San::OtherName | San::DirName | San::RegisteredId))
            .count();
        prop_assert_eq!(parsed.other_names.len(), other);
        let expected_key = match shape.key {
            Key::P256 => KeyAlgorithm::EcdsaP256,
            Key::P384 => KeyAlgorithm::EcdsaP384,
            Key::Ed25519 => KeyAlgorithm::Ed25519,
            _ => KeyAlgorithm::Rsa,
        };
        prop_assert_eq!(parsed.public_key.algorithm, expected_key);
    }
    if d.verdict == Verdict::Authorize {
        // Authorized means exactly one CN; selfnodeclient is tried first when it is the requester.
        let cn_is_requester = shape
            .subject
            .iter()
            .any(|a| matches!(a, Attr::Cn(_, v) if *v == shape.username));
        let expected = if cn_is_requester {
            vec![SarSubresource::SelfNodeClient, SarSubresource::NodeClient]
        } else {
            vec![SarSubresource::NodeClient]
        };
        prop_assert_eq!(&d.subject_access_reviews, &expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Generated, re-signed requests get exactly the model's verdict and failed checks.
    #[test]
    fn generated_structures_get_the_models_decision(shape in shape_strategy()) {
        check_against_model(&shape)?;
    }
}

/// The structural property reaches both outcomes for every rule: over a fixed-seed run, each
/// check name the model knows fails at least once and `authorize` and `manual` both occur —
/// otherwise the property could pass without exercising the rule it claims to test.
#[test]
fn structural_generation_reaches_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = shape_strategy();
    let mut failed_seen = std::collections::BTreeSet::new();
    let mut verdicts = std::collections::BTreeSet::new();
    for _ in 0..1500 {
        let shape = strategy.new_tree(&mut runner).unwrap().current();
        let (verdict, failed_checks) = model(&shape);
        verdicts.insert(verdict.as_str());
        failed_seen.extend(failed_checks);
    }
    let every_rule = [
        "der",
        "attributes",
        "subject-and-sans",
        "public-key",
        "signature-algorithm",
        "signature",
        "organization",
        "no-dns-sans",
        "no-email-sans",
        "no-ip-sans",
        "no-uri-sans",
        "common-name-prefix",
        "usages",
        "single-common-name",
        "node-name",
        "no-other-sans",
        "dns-or-ip-san",
        "requester-is-node",
        "requester-in-nodes-group",
        "common-name-is-requester",
        "no-api-server-identity",
    ];
    let missing: Vec<&&str> = every_rule
        .iter()
        .filter(|r| !failed_seen.contains(*r))
        .collect();
    assert!(missing.is_empty(), "never failed: {missing:?}");
    assert!(
        verdicts.contains("authorize")
            && verdicts.contains("manual")
            && verdicts.contains("reject"),
        "{verdicts:?}"
    );
}
