//! Policy tests with real CSRs: rcgen at test time, hand-assembled DER signed with a real key for
//! shapes no encoder produces, and committed openssl fixtures (tests/fixtures/policy/README.md)
//! for what neither can make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::check;
use super::upstream::*;
use super::*;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, OtherNameValue, PublicKeyData, SanType,
    SigningKey,
};

pub(crate) mod support {
    //! Test helpers shared with the property tests.
    use super::*;

    pub const BOOTSTRAP_USER: &str = "system:bootstrap:abcdef";
    pub const NODE_USER: &str = "system:node:worker-1";

    pub fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The spec half of a CSR object: who asked, for which signer and usages.
    #[derive(Clone, Debug)]
    pub struct Spec {
        pub signer: String,
        pub usages: Vec<String>,
        pub username: String,
        pub groups: Vec<String>,
        pub approved: bool,
        pub denied: bool,
        pub issued: bool,
    }

    impl Spec {
        /// §10 case A: the kubelet's initial bootstrap CSR as kubeadm's token user sends it.
        pub fn bootstrap() -> Self {
            Self {
                signer: SIGNER_KUBELET_CLIENT.into(),
                usages: strings(&["digital signature", "key encipherment", "client auth"]),
                username: BOOTSTRAP_USER.into(),
                groups: strings(&[
                    "system:bootstrappers",
                    "system:bootstrappers:kubeadm:default-node-token",
                    "system:authenticated",
                ]),
                approved: false,
                denied: false,
                issued: false,
            }
        }

        /// §10 case C: an ECDSA kubelet renewing its own client certificate.
        pub fn renewal() -> Self {
            Self {
                usages: strings(&["digital signature", "client auth"]),
                username: NODE_USER.into(),
                groups: strings(&["system:nodes", "system:authenticated"]),
                ..Self::bootstrap()
            }
        }

        /// §10 case 1: an ECDSA kubelet asking for a serving certificate.
        pub fn serving() -> Self {
            Self {
                signer: SIGNER_KUBELET_SERVING.into(),
                usages: strings(&["digital signature", "server auth"]),
                ..Self::renewal()
            }
        }

        pub fn usages(mut self, u: &[&str]) -> Self {
            self.usages = strings(u);
            self
        }

        pub fn signer(mut self, s: &str) -> Self {
            self.signer = s.into();
            self
        }

        pub fn user(mut self, u: &str, groups: &[&str]) -> Self {
            self.username = u.into();
            self.groups = strings(groups);
            self
        }

        pub fn facts<'a>(&'a self, request: &'a [u8]) -> CsrFacts<'a> {
            CsrFacts {
                name: "csr-test",
                signer_name: &self.signer,
                request,
                usages: &self.usages,
                username: &self.username,
                groups: &self.groups,
                approved: self.approved,
                denied: self.denied,
                issued: self.issued,
            }
        }

        pub fn decide(&self, request: impl AsRef<[u8]>) -> Decision {
            decide(&self.facts(request.as_ref()))
        }
    }

    pub fn p256() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    pub fn rsa2048() -> KeyPair {
        KeyPair::from_pem(include_str!("../../tests/fixtures/policy/rsa-2048.key")).unwrap()
    }

    /// A CSR from rcgen with the subject in Go's order (O before CN) and the given SANs.
    pub fn csr(key: &KeyPair, cn: Option<&str>, o: Option<&str>, sans: Vec<SanType>) -> String {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        if let Some(o) = o {
            p.distinguished_name.push(DnType::OrganizationName, o);
        }
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.subject_alt_names = sans;
        p.serialize_request(key).unwrap().pem().unwrap()
    }

    /// The kubelet's client CSR shape: `O=system:nodes, CN=system:node:worker-1`, no SANs.
    pub fn kubelet_client_csr(key: &KeyPair) -> String {
        csr(key, Some(NODE_USER), Some(ORG_SYSTEM_NODES), vec![])
    }

    pub fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }

    pub fn ip(s: &str) -> SanType {
        SanType::IpAddress(s.parse().unwrap())
    }

    pub fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/policy/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    // --- a tiny DER writer, for requests no encoder will produce ---

    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &parts.concat())
    }

    pub fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
        let mut body = Vec::new();
        let mut push = |mut v: u64| {
            let mut chunk = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                chunk.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            chunk.reverse();
            body.extend(chunk);
        };
        push(arcs[0] * 40 + arcs[1]);
        for a in &arcs[2..] {
            push(*a);
        }
        tlv(0x06, &body)
    }

    pub fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }

    pub const OID_CN: &str = "2.5.4.3";
    pub const OID_O: &str = "2.5.4.10";
    pub const OID_EXTENSION_REQUEST: &str = "1.2.840.113549.1.9.14";
    pub const OID_SAN: &str = "2.5.29.17";
    pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

    /// A Name with one attribute per RDN.
    pub fn name(attrs: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let rdns: Vec<Vec<u8>> = attrs
            .iter()
            .map(|(o, v)| set(&[seq(&[oid(o), v.clone()])]))
            .collect();
        seq(&rdns)
    }

    pub fn node_subject() -> Vec<u8> {
        name(&[(OID_O, utf8(ORG_SYSTEM_NODES)), (OID_CN, utf8(NODE_USER))])
    }

    /// An extensionRequest attribute carrying the given extensions (each `SEQUENCE{oid, value}`).
    pub fn extension_request(exts: &[Vec<u8>]) -> Vec<u8> {
        seq(&[oid(OID_EXTENSION_REQUEST), set(&[seq(exts)])])
    }

    pub fn san_extension(general_names: &[Vec<u8>]) -> Vec<u8> {
        seq(&[oid(OID_SAN), tlv(0x04, &seq(general_names))])
    }

    pub fn dns_name(s: &str) -> Vec<u8> {
        tlv(0x82, s.as_bytes())
    }

    pub fn tbs(version: u8, subject: Vec<u8>, key: &KeyPair, attributes: &[Vec<u8>]) -> Vec<u8> {
        seq(&[
            tlv(0x02, &[version]),
            subject,
            key.subject_public_key_info(),
            tlv(0xa0, &attributes.concat()),
        ])
    }

    /// Signs `tbs` with the P-256 `key` and assembles the CertificationRequest DER.
    pub fn sign(key: &KeyPair, tbs: Vec<u8>, sig_alg: &str) -> Vec<u8> {
        let sig = key.sign(&tbs).unwrap();
        let mut bits = vec![0u8];
        bits.extend(sig);
        seq(&[tbs, seq(&[oid(sig_alg)]), tlv(0x03, &bits)])
    }

    pub fn pem(der: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in der.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    b64.push('=');
                }
            }
        }
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            lines.join("\n")
        )
    }

    pub fn der_of(pem_text: &str) -> Vec<u8> {
        super::super::pem::decode_csr_pem(pem_text.as_bytes()).unwrap()
    }

    pub fn failed(d: &Decision) -> Vec<&'static str> {
        d.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }
}

use support::*;

fn assert_authorize(d: &Decision, sars: &[SarSubresource]) {
    assert_eq!(d.verdict, Verdict::Authorize, "{d:#?}");
    assert_eq!(d.subject_access_reviews, sars);
    assert!(d.violations.is_empty());
    assert!(d.checks.iter().all(|c| c.passed));
}

/// What a CSR whose checks fail gets: a client CSR is rejected; a serving CSR still goes to a
/// person (docs/security.md, kubelet-serving), who sees the same violations.
fn failing_verdict(d: &Decision) -> Verdict {
    match d.class {
        SignerClass::KubeletServing => Verdict::Manual,
        _ => Verdict::Reject,
    }
}

fn assert_violates(d: &Decision, first_violation: &str) {
    assert_eq!(d.verdict, failing_verdict(d), "{d:#?}");
    assert!(d.subject_access_reviews.is_empty());
    assert_eq!(
        d.violations.first().map(String::as_str),
        Some(first_violation),
        "{:#?}",
        d.violations
    );
}

fn assert_parse_fails(d: &Decision, stage_name: &str, pred: impl Fn(&str) -> bool) {
    assert_eq!(d.verdict, failing_verdict(d), "{d:#?}");
    assert!(d.parsed.is_none());
    let last = d.checks.last().unwrap();
    assert_eq!(last.name, stage_name, "{:#?}", d.checks);
    assert!(!last.passed);
    assert_eq!(d.violations.len(), 1);
    assert!(pred(&d.violations[0]), "{}", d.violations[0]);
}

// ---------------------------------------------------------------- must approve (§10 A–E)

#[test]
fn case_a_bootstrap_p256_with_key_encipherment_authorizes_nodeclient() {
    let key = p256();
    let d = Spec::bootstrap().decide(kubelet_client_csr(&key));
    assert_authorize(&d, &[SarSubresource::NodeClient]);
    assert_eq!(d.class, SignerClass::KubeletClient);
    let parsed = d.parsed.as_ref().unwrap();
    assert_eq!(parsed.common_names, [NODE_USER]);
    assert_eq!(parsed.organizations, [ORG_SYSTEM_NODES]);
    assert_eq!(parsed.public_key.algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(parsed.signature_algorithm, "ECDSA-SHA256");
    assert_eq!(parsed.subject, "O=system:nodes, CN=system:node:worker-1");
    assert_eq!(
        SarSubresource::NodeClient.approval_message(),
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
}

#[test]
fn case_b_bootstrap_without_key_encipherment_authorizes() {
    let d = Spec::bootstrap()
        .usages(&["digital signature", "client auth"])
        .decide(kubelet_client_csr(&p256()));
    assert_authorize(&d, &[SarSubresource::NodeClient]);
}

#[test]
fn case_c_renewal_tries_selfnodeclient_then_nodeclient() {
    let d = Spec::renewal().decide(kubelet_client_csr(&p256()));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );
    assert_eq!(
        SarSubresource::SelfNodeClient.approval_message(),
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    );
    assert_eq!(SarSubresource::SelfNodeClient.as_str(), "selfnodeclient");
    assert_eq!(SarSubresource::NodeClient.as_str(), "nodeclient");
}

#[test]
fn case_d_rsa_2048_renewal_with_usages_in_another_order() {
    let key = rsa2048();
    let d = Spec::renewal()
        .usages(&["client auth", "key encipherment", "digital signature"])
        .decide(kubelet_client_csr(&key));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );
    let parsed = d.parsed.unwrap();
    assert_eq!(
        parsed.public_key,
        PublicKeyInfo {
            algorithm: KeyAlgorithm::Rsa,
            bits: 2048
        }
    );
    assert_eq!(parsed.signature_algorithm, "SHA256-RSA");
}

#[test]
fn case_e_ecdsa_renewal_with_key_encipherment() {
    // No key-type/usage coupling (and expirationSeconds is not policy's business).
    let d = Spec::renewal()
        .usages(&["digital signature", "key encipherment", "client auth"])
        .decide(kubelet_client_csr(&p256()));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );
}

#[test]
fn duplicate_usages_still_match_as_a_set() {
    let d = Spec::renewal()
        .usages(&["client auth", "digital signature", "client auth"])
        .decide(kubelet_client_csr(&p256()));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );
}

#[test]
fn every_allow_listed_algorithm_authorizes() {
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let key = KeyPair::generate_for(alg).unwrap();
        let d = Spec::renewal().decide(kubelet_client_csr(&key));
        assert_eq!(d.verdict, Verdict::Authorize, "{alg:?}: {:?}", d.violations);
    }
    for (alg, name) in [
        (&rcgen::PKCS_RSA_SHA256, "SHA256-RSA"),
        (&rcgen::PKCS_RSA_SHA384, "SHA384-RSA"),
        (&rcgen::PKCS_RSA_SHA512, "SHA512-RSA"),
    ] {
        let key = KeyPair::from_pkcs8_pem_and_sign_algo(
            include_str!("../../tests/fixtures/policy/rsa-2048.key"),
            alg,
        )
        .unwrap();
        let d = Spec::renewal().decide(kubelet_client_csr(&key));
        assert_eq!(d.verdict, Verdict::Authorize, "{name}: {:?}", d.violations);
        assert_eq!(d.parsed.unwrap().signature_algorithm, name);
    }
    let d = Spec::renewal().decide(fixture("rsa-pss-sha256.csr.pem"));
    assert_eq!(d.verdict, Verdict::Authorize, "{:?}", d.violations);
    assert_eq!(d.parsed.unwrap().signature_algorithm, "SHA256-RSAPSS");
    let d = Spec::renewal().decide(fixture("rsa-2048.csr.pem"));
    assert_eq!(d.verdict, Verdict::Authorize, "{:?}", d.violations);
}

// ---------------------------------------------------------------- must not approve (§10 1–12)

#[test]
fn case_1_serving_csr_is_manual_never_authorize() {
    let key = p256();
    let d = Spec::serving().decide(csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![ip("10.0.0.5"), dns("worker-1")],
    ));
    assert_eq!(d.verdict, Verdict::Manual, "{d:#?}");
    assert_eq!(d.class, SignerClass::KubeletServing);
    assert!(d.subject_access_reviews.is_empty());
    assert!(d.violations.is_empty());
    let names: Vec<&str> = d.checks.iter().map(|c| c.name).collect();
    for expected in [
        check::ORGANIZATION,
        check::DNS_OR_IP_SAN,
        check::NO_EMAIL_SANS,
        check::NO_URI_SANS,
        check::USAGES,
        check::COMMON_NAME_PREFIX,
        check::SINGLE_COMMON_NAME,
        check::NODE_NAME,
        check::REQUESTER_IS_NODE,
        check::REQUESTER_IN_NODES_GROUP,
        check::COMMON_NAME_IS_REQUESTER,
        check::NO_API_SERVER_IDENTITY,
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // The upstream checks come first, in upstream order.
    let upstream_order = [
        check::ORGANIZATION,
        check::DNS_OR_IP_SAN,
        check::NO_EMAIL_SANS,
        check::NO_URI_SANS,
        check::USAGES,
        check::COMMON_NAME_PREFIX,
    ];
    let start = stage::ALL.len();
    assert_eq!(&names[start..start + upstream_order.len()], upstream_order);
}

#[test]
fn case_2_other_signers_are_ignored() {
    let key = p256();
    for signer in [
        "kubernetes.io/kube-apiserver-client",
        "kubernetes.io/legacy-unknown",
        "example.com/foo",
        "Kubernetes.io/kube-apiserver-client-kubelet",
        "",
    ] {
        let d = Spec::bootstrap()
            .signer(signer)
            .decide(kubelet_client_csr(&key));
        assert_eq!(d.verdict, Verdict::Ignore, "{signer}");
        assert_eq!(d.class, SignerClass::Other);
        assert!(d.ignore_reason.unwrap().contains("not handled"));
        assert!(d.checks.is_empty());
    }
}

#[test]
fn case_3_second_organization_is_rejected() {
    // Two O values: rcgen cannot make this; committed openssl fixture.
    let d = Spec::bootstrap().decide(fixture("two-o.csr.pem"));
    assert_violates(&d, ORGANIZATION_NOT_SYSTEM_NODES);
    assert_eq!(failed(&d), [check::ORGANIZATION]);
    assert_eq!(
        d.parsed.unwrap().organizations,
        ["system:nodes", "system:masters"]
    );

    // The same O twice is also not DeepEqual to ["system:nodes"].
    let key = p256();
    let subject = name(&[
        (OID_O, utf8(ORG_SYSTEM_NODES)),
        (OID_O, utf8(ORG_SYSTEM_NODES)),
        (OID_CN, utf8(NODE_USER)),
    ]);
    let der = sign(&key, tbs(0, subject, &key, &[]), OID_ECDSA_SHA256);
    assert_violates(
        &Spec::bootstrap().decide(pem(&der)),
        ORGANIZATION_NOT_SYSTEM_NODES,
    );
}

#[test]
fn case_4_wrong_or_missing_organization_is_rejected() {
    let key = p256();
    for o in [
        Some("system:masters"),
        None,
        Some("System:Nodes"),
        Some("system:nodes "),
    ] {
        let d = Spec::bootstrap().decide(csr(&key, Some(NODE_USER), o, vec![]));
        assert_violates(&d, ORGANIZATION_NOT_SYSTEM_NODES);
    }
}

#[test]
fn case_5_common_name_prefix_is_case_sensitive() {
    let key = p256();
    for cn in [
        "system:admin",
        "System:Node:n1",
        "system:nodes:n1",
        "node:n1",
        " system:node:n1",
    ] {
        let d = Spec::bootstrap().decide(csr(&key, Some(cn), Some(ORG_SYSTEM_NODES), vec![]));
        assert_violates(&d, COMMON_NAME_NOT_SYSTEM_NODE);
        // No node name to judge when the prefix is wrong.
        assert!(d.checks.iter().all(|c| c.name != check::NODE_NAME));
    }
    let d = Spec::bootstrap().decide(csr(&key, None, Some(ORG_SYSTEM_NODES), vec![]));
    assert_violates(&d, COMMON_NAME_NOT_SYSTEM_NODE);
    assert!(
        d.violations
            .iter()
            .any(|v| v.contains("exactly one common name, has 0"))
    );
}

#[test]
fn case_6_and_7_sans_on_client_csrs_are_rejected_in_upstream_order() {
    let key = p256();
    let email = SanType::Rfc822Name("a@example.com".try_into().unwrap());
    let uri = SanType::URI("spiffe://cluster/ns/x".try_into().unwrap());
    let cases: Vec<(Vec<SanType>, &str)> = vec![
        (vec![dns("n1.example.com")], DNS_SAN_NOT_ALLOWED),
        (vec![ip("10.0.0.5")], IP_SAN_NOT_ALLOWED),
        (vec![uri.clone()], URI_SAN_NOT_ALLOWED),
        (vec![email.clone()], EMAIL_SAN_NOT_ALLOWED),
    ];
    for (sans, msg) in cases {
        let d = Spec::bootstrap().decide(csr(&key, Some(NODE_USER), Some(ORG_SYSTEM_NODES), sans));
        assert_violates(&d, msg);
        assert_eq!(d.violations.len(), 1);
    }
    // All at once: reported in upstream's order (DNS, email, IP, URI).
    let d = Spec::bootstrap().decide(csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![uri, ip("10.0.0.5"), email, dns("n1")],
    ));
    assert_eq!(
        d.violations,
        [
            DNS_SAN_NOT_ALLOWED,
            EMAIL_SAN_NOT_ALLOWED,
            IP_SAN_NOT_ALLOWED,
            URI_SAN_NOT_ALLOWED
        ]
    );
}

#[test]
fn case_8_usages_must_match_a_set_exactly() {
    let key = kubelet_client_csr(&p256());
    for usages in [
        &[
            "digital signature",
            "key encipherment",
            "client auth",
            "server auth",
        ][..],
        &["client auth"],
        &[
            "digital signature",
            "key encipherment",
            "client auth",
            "cert sign",
        ],
        &["digital signature", "key encipherment"],
        &[],
        &["Digital Signature", "Client Auth"],
    ] {
        let d = Spec::bootstrap().usages(usages).decide(&key);
        assert_violates(&d, CLIENT_USAGES_DID_NOT_MATCH);
        assert_eq!(failed(&d), [check::USAGES], "{usages:?}");
    }
}

#[test]
fn case_9_node_asking_for_another_node_is_only_nodeclient() {
    let key = p256();
    let request = csr(&key, Some("system:node:n2"), Some(ORG_SYSTEM_NODES), vec![]);
    let d = Spec::renewal()
        .user("system:node:n1", &["system:nodes", "system:authenticated"])
        .decide(request);
    // Content is valid; only the nodeclient review (which system:nodes is not granted) is tried.
    assert_authorize(&d, &[SarSubresource::NodeClient]);
}

#[test]
fn case_10_unprivileged_requesters_still_go_to_the_review() {
    let request = kubelet_client_csr(&p256());
    for (user, groups) in [
        (
            "system:bootstrap:abcdef",
            &["system:bootstrappers:other"][..],
        ),
        ("system:serviceaccount:ns:sa", &["system:serviceaccounts"]),
    ] {
        let d = Spec::bootstrap().user(user, groups).decide(&request);
        assert_authorize(&d, &[SarSubresource::NodeClient]);
    }
}

#[test]
fn case_11_decided_or_issued_csrs_are_ignored_without_parsing() {
    for (approved, denied, issued, reason) in [
        (true, false, false, "Approved"),
        (false, true, false, "Denied"),
        (true, true, false, "Denied"),
        (false, false, true, "certificate"),
        (true, false, true, "certificate"),
    ] {
        let spec = Spec {
            approved,
            denied,
            issued,
            ..Spec::bootstrap()
        };
        // Garbage request: ignoring must not even look at it.
        let d = spec.decide(vec![0xffu8; 2 * MAX_REQUEST_BYTES]);
        assert_eq!(d.verdict, Verdict::Ignore);
        assert!(
            d.ignore_reason.as_deref().unwrap().contains(reason),
            "{d:?}"
        );
        assert!(d.parsed.is_none() && d.checks.is_empty() && d.violations.is_empty());
    }
}

#[test]
fn case_12_non_csr_pem_and_garbage_are_rejected_for_our_signers() {
    let good = kubelet_client_csr(&p256());
    let relabelled = good.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
    for (request, expected) in [
        (
            relabelled.clone(),
            "PEM block type must be CERTIFICATE REQUEST: found a \"NEW CERTIFICATE REQUEST\" block",
        ),
        (
            "garbage".to_owned(),
            "PEM block type must be CERTIFICATE REQUEST: no PEM block found",
        ),
        (
            String::new(),
            "PEM block type must be CERTIFICATE REQUEST: no PEM block found",
        ),
    ] {
        for spec in [Spec::bootstrap(), Spec::serving()] {
            let d = spec.decide(&request);
            assert_parse_fails(&d, stage::PEM, |v| v == expected);
            assert!(d.violations[0].starts_with(PEM_BLOCK_TYPE_MUST_BE_CSR));
        }
        let d = Spec::bootstrap().signer("example.com/x").decide(&request);
        assert_eq!(d.verdict, Verdict::Ignore);
    }
}

// ---------------------------------------------------------------- hardening

#[test]
fn exactly_one_common_name_is_required() {
    // Go keeps the last CN, so upstream sees system:node:worker-1 and would approve.
    let d = Spec::renewal().decide(fixture("two-cn.csr.pem"));
    assert_eq!(d.verdict, Verdict::Reject);
    assert_eq!(failed(&d), [check::SINGLE_COMMON_NAME]);
    assert_eq!(
        d.violations,
        ["subject must have exactly one common name, has 2"]
    );
    let parsed = d.parsed.unwrap();
    assert_eq!(parsed.go_common_name(), NODE_USER);
    assert_eq!(parsed.common_name(), None);
}

#[test]
fn node_name_must_be_a_dns1123_subdomain() {
    let key = p256();
    let d = Spec::bootstrap().decide(csr(
        &key,
        Some("system:node:"),
        Some(ORG_SYSTEM_NODES),
        vec![],
    ));
    assert_violates(&d, "the node name after \"system:node:\" is empty");
    assert_eq!(failed(&d), [check::NODE_NAME]);
    for bad in [
        "Worker-1",
        "worker_1",
        "worker-1.",
        "-w",
        "w\u{0}",
        &"a".repeat(254),
    ] {
        let cn = format!("system:node:{bad}");
        let d = Spec::bootstrap().decide(csr(&key, Some(&cn), Some(ORG_SYSTEM_NODES), vec![]));
        assert_eq!(failed(&d), [check::NODE_NAME], "{bad:?}");
        assert!(
            d.violations[0].starts_with("node name "),
            "{:?}",
            d.violations
        );
    }
}

#[test]
fn other_san_types_are_rejected() {
    let key = p256();
    let other = SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        OtherNameValue::Utf8String("admin@corp".into()),
    ));
    let d = Spec::bootstrap().decide(csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![other],
    ));
    assert_eq!(failed(&d), [check::NO_OTHER_SANS]);
    assert!(d.violations[0].contains("otherName:1.3.6.1.4.1.311.20.2.3"));

    // registeredID and directoryName, hand-assembled.
    let der = sign(
        &key,
        tbs(
            0,
            node_subject(),
            &key,
            &[extension_request(&[san_extension(&[
                tlv(0x88, &oid("1.2.3.4")[2..]),
                tlv(0xa4, &name(&[(OID_CN, utf8("x"))])),
            ])])],
        ),
        OID_ECDSA_SHA256,
    );
    let d = Spec::bootstrap().decide(pem(&der));
    assert_eq!(failed(&d), [check::NO_OTHER_SANS]);
    assert_eq!(
        d.parsed.unwrap().other_names,
        ["registeredID:1.2.3.4", "dirName:CN=x"]
    );
}

#[test]
fn weak_and_unsupported_signatures_are_rejected_by_name() {
    let d = Spec::renewal().decide(fixture("sha1-rsa.csr.pem"));
    assert_parse_fails(&d, stage::SIGNATURE_ALGORITHM, |v| {
        v == "SHA1-RSA signatures are not accepted: the hash is broken; use SHA-256 or stronger"
    });
    let d = Spec::renewal().decide(fixture("sha1-ecdsa.csr.pem"));
    assert_parse_fails(&d, stage::SIGNATURE_ALGORITHM, |v| {
        v.starts_with("ECDSA-SHA1 signatures")
    });
    let d = Spec::renewal().decide(fixture("p521.csr.pem"));
    assert_parse_fails(&d, stage::PUBLIC_KEY, |v| {
        v == "unsupported elliptic curve P-521; only P-256 and P-384 are accepted"
    });
    let d = Spec::renewal().decide(fixture("rsa-1024.csr.pem"));
    assert_parse_fails(&d, stage::PUBLIC_KEY, |v| {
        v == "RSA key is 1024 bits; at least 2048 are required"
    });

    let key = p256();
    let t = tbs(0, node_subject(), &key, &[]);
    let d = Spec::renewal().decide(pem(&sign(&key, t.clone(), "1.2.840.113549.1.1.11")));
    assert_parse_fails(&d, stage::SIGNATURE_ALGORITHM, |v| {
        v == "signature algorithm SHA256-RSA does not match the ECDSA P-256 public key"
    });
    let d = Spec::renewal().decide(pem(&sign(&key, t.clone(), "1.2.840.10045.4.3.4")));
    assert_parse_fails(&d, stage::SIGNATURE_ALGORITHM, |v| {
        v == "unsupported signature algorithm ECDSA-SHA512"
    });
    let d = Spec::renewal().decide(pem(&sign(&key, t, "1.2.3.4")));
    assert_parse_fails(&d, stage::SIGNATURE_ALGORITHM, |v| {
        v == "unsupported signature algorithm 1.2.3.4"
    });
}

#[test]
fn tampered_signatures_are_rejected() {
    let d = Spec::renewal().decide(fixture("tampered-signature.csr.pem"));
    assert_parse_fails(&d, stage::SIGNATURE, |v| {
        v == "the signature does not verify with the request's own public key"
    });

    // Change one byte of the signed content (the node name) and keep the old signature.
    let good = der_of(&kubelet_client_csr(&p256()));
    let pos = good.windows(8).position(|w| w == b"worker-1").unwrap();
    let mut bad = good.clone();
    bad[pos + 7] = b'2';
    let d = Spec::renewal().decide(pem(&bad));
    assert_parse_fails(&d, stage::SIGNATURE, |_| true);

    // A signature made by a different key.
    let (k1, k2) = (p256(), p256());
    let mut t = tbs(0, node_subject(), &k1, &[]);
    let forged = sign(&k2, t.clone(), OID_ECDSA_SHA256);
    let d = Spec::renewal().decide(pem(&forged));
    assert_parse_fails(&d, stage::SIGNATURE, |_| true);
    // And the same TBS signed by its own key is fine (the helper is not the reason).
    t = tbs(0, node_subject(), &k1, &[]);
    assert_eq!(
        Spec::renewal()
            .decide(pem(&sign(&k1, t, OID_ECDSA_SHA256)))
            .verdict,
        Verdict::Authorize
    );
}

#[test]
fn repeated_extension_requests_and_extensions_are_rejected() {
    // Two SAN extensions in one extensionRequest (committed openssl fixture).
    let d = Spec::serving().decide(fixture("dup-san.csr.pem"));
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
        v == "extension 2.5.29.17 is requested more than once"
    });

    let key = p256();
    let san1 = san_extension(&[dns_name("worker-1")]);
    let san2 = san_extension(&[dns_name("kubernetes.default")]);
    // Two extensionRequest attributes: x509-parser's requested_extensions() would see only the first.
    let t = tbs(
        0,
        node_subject(),
        &key,
        &[
            extension_request(std::slice::from_ref(&san1)),
            extension_request(std::slice::from_ref(&san2)),
        ],
    );
    let d = Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)));
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
        v == "PKCS#10 attribute 1.2.840.113549.1.9.14 appears more than once"
    });

    // One extensionRequest attribute whose SET holds two values.
    let two_values = seq(&[
        oid(OID_EXTENSION_REQUEST),
        set(&[
            seq(std::slice::from_ref(&san1)),
            seq(std::slice::from_ref(&san2)),
        ]),
    ]);
    let t = tbs(0, node_subject(), &key, &[two_values]);
    let d = Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)));
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
        v == "PKCS#10 attribute 1.2.840.113549.1.9.14 must have exactly one value, has 2"
    });

    // Same, via rcgen's custom attributes: SAN from params plus a second extensionRequest.
    let mut p = CertificateParams::new(vec!["worker-1".into()]).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, ORG_SYSTEM_NODES);
    p.distinguished_name.push(DnType::CommonName, NODE_USER);
    let attr = rcgen::Attribute {
        oid: &[1, 2, 840, 113549, 1, 9, 14],
        values: set(&[seq(&[san2])]),
    };
    let request = p
        .serialize_request_with_attributes(&key, vec![attr])
        .unwrap();
    let d = Spec::serving().decide(request.pem().unwrap());
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
        v.contains("appears more than once")
    });
}

#[test]
fn a_single_well_formed_extension_request_is_read_in_full() {
    let key = p256();
    let t = tbs(
        0,
        node_subject(),
        &key,
        &[extension_request(&[san_extension(&[
            dns_name("worker-1"),
            tlv(0x87, &[10, 0, 0, 5]),
            tlv(0x87, &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]),
        ])])],
    );
    let d = Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)));
    assert_eq!(d.verdict, Verdict::Manual, "{:?}", d.violations);
    let p = d.parsed.unwrap();
    assert_eq!(p.dns_names, ["worker-1"]);
    assert_eq!(
        p.ip_addresses,
        [
            "10.0.0.5".parse::<std::net::IpAddr>().unwrap(),
            "fd00::5".parse().unwrap()
        ]
    );
    assert_eq!(p.attributes, [OID_EXTENSION_REQUEST]);
    assert_eq!(p.requested_extensions.len(), 1);
    assert_eq!(
        p.requested_extensions[0].name.as_deref(),
        Some("subjectAltName")
    );
}

#[test]
fn malformed_structures_are_rejected_with_named_reasons() {
    let key = p256();
    let good = der_of(&kubelet_client_csr(&key));

    // Bytes after the DER.
    let mut trailing = good.clone();
    trailing.extend([0x05, 0x00]);
    assert_parse_fails(&Spec::renewal().decide(pem(&trailing)), stage::DER, |v| {
        v.contains("after the last element")
    });
    // Truncated DER.
    assert_parse_fails(
        &Spec::renewal().decide(pem(&good[..good.len() - 10])),
        stage::DER,
        |_| true,
    );
    // An extra element inside the signed request info.
    let t = seq(&[
        tlv(0x02, &[0]),
        node_subject(),
        key.subject_public_key_info(),
        tlv(0xa0, &[]),
        tlv(0x05, &[]),
    ]);
    assert_parse_fails(
        &Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::DER,
        |v| v.contains("attributes"),
    );
    // Version 2.
    let t = tbs(1, node_subject(), &key, &[]);
    assert_parse_fails(
        &Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::DER,
        |v| v == "unsupported CertificationRequest version 1; only v1 (0) exists",
    );
    // A CN that is not a string type Go or we read as such (BMPString).
    let subject = name(&[
        (OID_O, utf8(ORG_SYSTEM_NODES)),
        (OID_CN, tlv(0x1e, b"\0s\0y")),
    ]);
    let t = tbs(0, subject, &key, &[]);
    assert_parse_fails(
        &Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::SUBJECT_AND_SANS,
        |v| v.starts_with("subject attribute 2.5.4.3 is not"),
    );
    // A 5-byte IP SAN.
    let t = tbs(
        0,
        node_subject(),
        &key,
        &[extension_request(&[san_extension(&[tlv(
            0x87,
            &[1, 2, 3, 4, 5],
        )])])],
    );
    assert_parse_fails(
        &Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::SUBJECT_AND_SANS,
        |v| v == "subjectAltName entry is malformed: IP address of length 5",
    );
    // Bytes smuggled after the SAN value inside its OCTET STRING.
    let mut value = seq(&[dns_name("worker-1")]);
    value.extend(seq(&[dns_name("kubernetes")]));
    let ext = seq(&[oid(OID_SAN), tlv(0x04, &value)]);
    let t = tbs(0, node_subject(), &key, &[extension_request(&[ext])]);
    assert_parse_fails(
        &Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::ATTRIBUTES,
        |v| v.starts_with("requested extension 2.5.29.17 is malformed"),
    );
    // A non-minimal length somewhere inside: the request is not DER.
    let mut non_der = good.clone();
    assert_eq!(non_der[0], 0x30);
    let n = non_der[1] & 0x7f;
    non_der[1] = 0x80 | (n + 1);
    non_der.insert(2, 0);
    assert_parse_fails(&Spec::renewal().decide(pem(&non_der)), stage::DER, |v| {
        v.contains("not minimally encoded")
    });
}

#[test]
fn pem_framing_is_strict() {
    let good = kubelet_client_csr(&p256());
    assert_eq!(
        Spec::renewal()
            .decide(format!("\n\n  {good}\n\t\n"))
            .verdict,
        Verdict::Authorize
    );
    for (request, reason) in [
        (format!("{good}{good}"), "more than one PEM block"),
        (format!("hello\n{good}"), "before the CERTIFICATE REQUEST"),
        (format!("{good}hello"), "after the CERTIFICATE REQUEST"),
        (
            good.replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n"),
            "PEM headers",
        ),
    ] {
        let d = Spec::renewal().decide(&request);
        assert_parse_fails(&d, stage::PEM, |v| v.contains(reason));
    }
}

#[test]
fn megabytes_of_garbage_are_refused_before_decoding() {
    let garbage = vec![b'A'; 4 * 1024 * 1024];
    let d = Spec::bootstrap().decide(&garbage);
    // Refused by the size check alone: no later stage ran, nothing was parsed.
    assert!(d.parsed.is_none());
    assert_parse_fails(&d, stage::REQUEST_SIZE, |v| {
        v == "request is 4194304 bytes, more than the 65536-byte limit"
    });
    assert_eq!(d.checks.len(), 1);
    // Just under the limit is parsed (and fails as PEM, not as size).
    let d = Spec::bootstrap().decide(vec![b'A'; MAX_REQUEST_BYTES]);
    assert_eq!(d.checks.last().unwrap().name, stage::PEM);
}

#[test]
fn parse_failures_list_the_stages_that_passed() {
    let d = Spec::renewal().decide(fixture("tampered-signature.csr.pem"));
    let names: Vec<&str> = d.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, stage::ALL);
    assert!(d.checks[..stage::ALL.len() - 1].iter().all(|c| c.passed));
}

// ---------------------------------------------------------------- serving review checks

#[test]
fn serving_flags_api_server_identities_and_foreign_requesters() {
    let key = p256();
    let hostile = csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![
            dns("worker-1"),
            dns("Kubernetes.Default.Svc.cluster.local."),
            dns("*.apps.example.com"),
            ip("127.0.0.1"),
            ip("::ffff:127.0.0.1"),
        ],
    );
    let d = Spec::serving().decide(&hostile);
    assert_eq!(d.verdict, Verdict::Manual);
    assert_eq!(failed(&d), [check::NO_API_SERVER_IDENTITY]);
    let v = &d.violations[0];
    for needle in [
        "Kubernetes.Default.Svc",
        "wildcard",
        "127.0.0.1 is a loopback",
        "::ffff:127.0.0.1",
    ] {
        assert!(v.contains(needle), "{needle} not in {v}");
    }

    let request = csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![ip("10.0.0.5")],
    );
    let d = Spec::serving()
        .user("system:bootstrap:abcdef", &["system:bootstrappers"])
        .decide(&request);
    assert_eq!(
        failed(&d),
        [
            check::REQUESTER_IS_NODE,
            check::REQUESTER_IN_NODES_GROUP,
            check::COMMON_NAME_IS_REQUESTER
        ]
    );
    let d = Spec::serving()
        .user("system:node:worker-2", &["system:nodes"])
        .decide(&request);
    assert_eq!(failed(&d), [check::COMMON_NAME_IS_REQUESTER]);
    assert_eq!(
        d.violations,
        [
            "subject common name \"system:node:worker-1\" is not the requester \"system:node:worker-2\""
        ]
    );
}

#[test]
fn serving_upstream_rules_use_upstream_strings() {
    let key = p256();
    let no_sans = csr(&key, Some(NODE_USER), Some(ORG_SYSTEM_NODES), vec![]);
    assert_violates(&Spec::serving().decide(&no_sans), DNS_OR_IP_SAN_REQUIRED);
    let with_ip = csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![ip("10.0.0.5")],
    );
    assert_violates(
        &Spec::serving()
            .usages(&["digital signature", "client auth"])
            .decide(&with_ip),
        SERVING_USAGES_DID_NOT_MATCH,
    );
    assert_eq!(
        Spec::serving()
            .usages(&["server auth", "key encipherment", "digital signature"])
            .decide(&with_ip)
            .verdict,
        Verdict::Manual
    );
    let d = Spec::serving().decide(csr(
        &key,
        Some("system:admin"),
        Some("system:masters"),
        vec![ip("10.0.0.5")],
    ));
    assert_eq!(d.violations[0], ORGANIZATION_NOT_SYSTEM_NODES);
    assert!(
        d.violations
            .iter()
            .any(|v| v == COMMON_NAME_NOT_SYSTEM_NODE)
    );
}

#[test]
fn sans_are_compared_with_the_node_addresses() {
    let key = p256();
    let request = csr(
        &key,
        Some(NODE_USER),
        Some(ORG_SYSTEM_NODES),
        vec![
            dns("Worker-1.Example."),
            ip("10.0.0.5"),
            ip("::ffff:192.168.1.7"),
            dns("other"),
            ip("10.0.0.6"),
        ],
    );
    let parsed = parse_csr(request.as_bytes()).unwrap();
    let addresses = [
        NodeAddress {
            kind: "Hostname",
            address: "worker-1.example",
        },
        NodeAddress {
            kind: "InternalIP",
            address: "10.0.0.5",
        },
        NodeAddress {
            kind: "ExternalIP",
            address: "192.168.1.7",
        },
        // An IP-kind address never matches a DNS SAN and vice versa.
        NodeAddress {
            kind: "InternalIP",
            address: "other",
        },
        NodeAddress {
            kind: "InternalDNS",
            address: "10.0.0.6",
        },
    ];
    let got = compare_sans_with_node(&parsed, Some(&addresses));
    let expected = [
        ("DNS:Worker-1.Example.", SanMatch::Matches),
        ("DNS:other", SanMatch::NotOnNode),
        ("IP:10.0.0.5", SanMatch::Matches),
        ("IP:::ffff:192.168.1.7", SanMatch::Matches),
        ("IP:10.0.0.6", SanMatch::NotOnNode),
    ];
    let got: Vec<(&str, SanMatch)> = got.iter().map(|(s, m)| (s.as_str(), *m)).collect();
    assert_eq!(got, expected);

    let unknown = compare_sans_with_node(&parsed, None);
    assert_eq!(unknown.len(), 5);
    assert!(unknown.iter().all(|(_, m)| *m == SanMatch::NodeNotFound));
}

// ---------------------------------------------------------------- plumbing

#[test]
fn facts_from_a_kubernetes_object() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestSpec,
    };
    let request = kubelet_client_csr(&p256());
    let mut csr = CertificateSigningRequest {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("node-csr-abc".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER_KUBELET_CLIENT.into(),
            usages: Some(strings(&[
                "digital signature",
                "key encipherment",
                "client auth",
            ])),
            username: Some(BOOTSTRAP_USER.into()),
            groups: Some(strings(&["system:bootstrappers"])),
            ..Default::default()
        },
        status: None,
    };
    let d = decide(&CsrFacts::from_csr(&csr));
    assert_authorize(&d, &[SarSubresource::NodeClient]);
    assert_eq!(CsrFacts::from_csr(&csr).name, "node-csr-abc");

    // A Denied condition with status False still counts (upstream matches on type only).
    csr.status = Some(test_status(&[("Denied", "False")], None));
    let facts = CsrFacts::from_csr(&csr);
    assert!(facts.denied && !facts.approved && !facts.issued);
    assert_eq!(decide(&facts).verdict, Verdict::Ignore);

    // An empty certificate is not "issued"; a non-empty one is.
    csr.status = Some(test_status(&[("Failed", "True")], Some(b"")));
    let facts = CsrFacts::from_csr(&csr);
    assert!(!facts.issued && !facts.approved && !facts.denied);
    assert_eq!(decide(&facts).verdict, Verdict::Authorize);
    csr.status.as_mut().unwrap().certificate = Some(ByteString(b"x".to_vec()));
    assert!(CsrFacts::from_csr(&csr).issued);
}

#[test]
fn decision_serialises_with_the_documented_names() {
    let d = Spec::renewal().decide(kubelet_client_csr(&p256()));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["class"], "kubelet-client");
    assert_eq!(v["verdict"], "authorize");
    assert_eq!(
        v["subjectAccessReviews"],
        serde_json::json!(["selfnodeclient", "nodeclient"])
    );
    assert_eq!(v["violations"], serde_json::json!([]));
    assert_eq!(v["parsed"]["publicKey"]["algorithm"], "ECDSA-P256");
    assert_eq!(v["parsed"]["commonNames"], serde_json::json!([NODE_USER]));
    assert_eq!(
        serde_json::to_value(SignerClass::KubeletServing).unwrap(),
        "kubelet-serving"
    );
    assert_eq!(serde_json::to_value(SignerClass::Other).unwrap(), "other");
    assert_eq!(serde_json::to_value(Verdict::Manual).unwrap(), "manual");
    assert_eq!(
        serde_json::to_value(SanMatch::NotOnNode).unwrap(),
        "not-on-node"
    );
}

#[test]
fn decide_with_parse_uses_the_callers_result() {
    let spec = Spec::bootstrap();
    let err = ParseError::RequestEncoding(Base64Error::BadLength);
    let d = decide_with_parse(&spec.facts(b""), Err(err));
    assert_parse_fails(&d, stage::PEM, |v| {
        v == "spec.request is not valid base64: length is not a multiple of 4"
    });
    let request = kubelet_client_csr(&p256());
    let parsed = parse_csr(request.as_bytes());
    assert_authorize(
        &decide_with_parse(&spec.facts(request.as_bytes()), parsed),
        &[SarSubresource::NodeClient],
    );
}

#[test]
fn worst_case_requests_under_the_size_limit_are_decided() {
    // Thousands of tiny attributes, or thousands of SANs: each is decided, and every item is
    // accounted for. Their cost at n and 4n is measured by `cargo bench --bench policy`.
    let key = p256();
    let many_attributes: Vec<Vec<u8>> = (0..3500u32)
        .map(|i| seq(&[oid(&format!("1.2.3.{i}")), set(&[tlv(0x05, &[])])]))
        .collect();
    let t = tbs(0, node_subject(), &key, &many_attributes);
    let request = pem(&sign(&key, t, OID_ECDSA_SHA256));
    assert!(request.len() < MAX_REQUEST_BYTES, "{}", request.len());
    let d = Spec::renewal().decide(&request);
    // Unknown attributes are allowed (Go ignores them too); all are listed for the reader.
    assert_eq!(d.verdict, Verdict::Authorize, "{:?}", d.violations);
    assert_eq!(d.parsed.unwrap().attributes.len(), 3500);

    let names: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| dns_name(&format!("n{i}.example")))
        .collect();
    let t = tbs(
        0,
        node_subject(),
        &key,
        &[extension_request(&[san_extension(&names)])],
    );
    let request = pem(&sign(&key, t, OID_ECDSA_SHA256));
    assert!(request.len() < MAX_REQUEST_BYTES, "{}", request.len());
    let d = Spec::serving().decide(&request);
    assert_eq!(d.verdict, Verdict::Manual, "{:?}", d.violations);
    let parsed = d.parsed.unwrap();
    assert_eq!(parsed.dns_names.len(), 3000);
    let node = [NodeAddress {
        kind: "Hostname",
        address: "n1.example",
    }];
    let matches = compare_sans_with_node(&parsed, Some(&node));
    assert_eq!(matches.len(), 3000);
    assert_eq!(
        matches
            .iter()
            .filter(|(_, m)| *m == SanMatch::Matches)
            .count(),
        1
    );
}

// ---------------------------------------------------------------- Go-strict strings

/// The PrintableString set of X.680 plus the `*` and `&` Go's `encoding/asn1` also accepts,
/// spelled out rather than taken from the code under test.
const GO_PRINTABLE: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&";
const OID_OU: &str = "2.5.4.11";
const OID_EMAIL: &str = "1.2.840.113549.1.9.1";
const OID_CHALLENGE_PASSWORD: &str = "1.2.840.113549.1.9.7";

/// A kubelet client request (`O=system:nodes, CN=system:node:worker-1`) with `extra` appended
/// to its subject, each attribute in its own RDN, signed with a real P-256 key.
fn client_request_with(key: &KeyPair, extra: &[(&str, Vec<u8>)]) -> String {
    let mut attrs = vec![(OID_O, utf8(ORG_SYSTEM_NODES)), (OID_CN, utf8(NODE_USER))];
    attrs.extend(extra.iter().cloned());
    pem(&sign(key, tbs(0, name(&attrs), key, &[]), OID_ECDSA_SHA256))
}

/// A kubelet client request whose subject is exactly `attrs`.
fn request_with_subject(key: &KeyPair, attrs: &[(&str, Vec<u8>)]) -> String {
    pem(&sign(key, tbs(0, name(attrs), key, &[]), OID_ECDSA_SHA256))
}

fn subject_reason(oid: &str, string_type: &str) -> impl Fn(&str) -> bool {
    let prefix = format!("subject attribute {oid} is not a valid {string_type}: ");
    move |v: &str| v.starts_with(&prefix)
}

#[test]
fn printable_string_accepts_exactly_gos_set() {
    let key = p256();
    // The kubelet's own subject as PrintableStrings: ':' and '-' are in the set.
    let printable = |s: &[u8]| tlv(0x13, s);
    let d = Spec::renewal().decide(request_with_subject(
        &key,
        &[
            (OID_O, printable(ORG_SYSTEM_NODES.as_bytes())),
            (OID_CN, printable(NODE_USER.as_bytes())),
        ],
    ));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );

    // Every byte value, in an attribute policy does not otherwise read: the set decides alone.
    for b in 0..=u8::MAX {
        let value = [b'a', b, b'z'];
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, printable(&value))]));
        if GO_PRINTABLE.contains(&b) {
            assert_eq!(
                d.verdict,
                Verdict::Authorize,
                "byte 0x{b:02x}: {:?}",
                d.violations
            );
            let subject = d.parsed.unwrap().subject;
            let shown = format!("OU={}", String::from_utf8(value.to_vec()).unwrap());
            assert!(subject.ends_with(&shown), "{subject}");
        } else {
            assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
                v.starts_with(&format!(
                    "subject attribute 2.5.4.11 is not a valid PrintableString: byte 0x{b:02x}"
                )) && v.contains("at offset 1 is outside the PrintableString set")
            });
        }
    }
    // In the CN too (x509-parser alone would read "system:node:worker_1" and pass it on).
    for bad in [
        "system:node:worker_1",
        "system:node:worker@1",
        "system:node:wörker",
    ] {
        let d = Spec::renewal().decide(request_with_subject(
            &key,
            &[
                (OID_O, printable(ORG_SYSTEM_NODES.as_bytes())),
                (OID_CN, printable(bad.as_bytes())),
            ],
        ));
        assert_parse_fails(
            &d,
            stage::SUBJECT_AND_SANS,
            subject_reason(OID_CN, "PrintableString"),
        );
    }
}

#[test]
fn numeric_string_accepts_digits_and_space_only() {
    let key = p256();
    for b in 0..=u8::MAX {
        let value = [b'1', b, b'2'];
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, tlv(0x12, &value))]));
        if b.is_ascii_digit() || b == b' ' {
            assert_eq!(
                d.verdict,
                Verdict::Authorize,
                "byte 0x{b:02x}: {:?}",
                d.violations
            );
        } else {
            assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
                v == format!(
                    "subject attribute 2.5.4.11 is not a valid NumericString: byte {} at offset 1 is not a digit or a space",
                    if b.is_ascii_graphic() {
                        format!("0x{b:02x} ({:?})", char::from(b))
                    } else {
                        format!("0x{b:02x}")
                    }
                )
            });
        }
    }
}

#[test]
fn ia5_string_accepts_ascii_only() {
    let key = p256();
    for b in 0..=u8::MAX {
        let value = [b'a', b, b'@', b'b'];
        let d =
            Spec::renewal().decide(client_request_with(&key, &[(OID_EMAIL, tlv(0x16, &value))]));
        if b < 0x80 {
            assert_eq!(
                d.verdict,
                Verdict::Authorize,
                "byte 0x{b:02x}: {:?}",
                d.violations
            );
        } else {
            assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
                v == format!(
                    "subject attribute {OID_EMAIL} is not a valid IA5String: byte 0x{b:02x} at offset 1 is not ASCII"
                )
            });
        }
    }
    // Valid UTF-8 that is not ASCII: x509-parser reads it, Go refuses it.
    let d = Spec::renewal().decide(request_with_subject(
        &key,
        &[
            (OID_O, tlv(0x16, ORG_SYSTEM_NODES.as_bytes())),
            (OID_CN, tlv(0x16, "system:node:wörker".as_bytes())),
        ],
    ));
    assert_parse_fails(
        &d,
        stage::SUBJECT_AND_SANS,
        subject_reason(OID_CN, "IA5String"),
    );
    // The kubelet's subject as IA5Strings is fine.
    let d = Spec::renewal().decide(request_with_subject(
        &key,
        &[
            (OID_O, tlv(0x16, ORG_SYSTEM_NODES.as_bytes())),
            (OID_CN, tlv(0x16, NODE_USER.as_bytes())),
        ],
    ));
    assert_authorize(
        &d,
        &[SarSubresource::SelfNodeClient, SarSubresource::NodeClient],
    );
}

#[test]
fn utf8_string_must_be_valid_utf8() {
    let key = p256();
    let ok = "wörker ✓ 𝄞 \u{0}";
    let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, utf8(ok))]));
    assert_eq!(d.verdict, Verdict::Authorize, "{:?}", d.violations);
    assert!(d.parsed.unwrap().subject.ends_with(ok));
    for (bad, offset) in [
        (&b"ab\x80"[..], 2),      // lone continuation byte
        (b"\xc0\xaf", 0),         // overlong '/'
        (b"a\xed\xa0\x80", 1),    // UTF-16 surrogate D800
        (b"\xf4\x90\x80\x80", 0), // above U+10FFFF
        (b"ab\xe2\x82", 2),       // truncated sequence
        (b"\xff", 0),
    ] {
        for attr in [OID_OU, OID_CN] {
            let d = Spec::renewal().decide(request_with_subject(
                &key,
                &[(OID_O, utf8(ORG_SYSTEM_NODES)), (attr, tlv(0x0c, bad))],
            ));
            assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
                v == format!(
                    "subject attribute {attr} is not a valid UTF8String: the bytes from offset {offset} are not valid UTF-8"
                )
            });
        }
    }
}

#[test]
fn bmp_and_t61_strings_are_checked_like_go_and_never_read_as_cn_or_o() {
    let key = p256();
    // Outside CN and O they are shown in hex, as before; Go's BMPString checks still apply.
    for ok in [&b"\0w\0x"[..], b"\0w\0x\0\0", b"", b"\x4e\x2d"] {
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, tlv(0x1e, ok))]));
        assert_eq!(d.verdict, Verdict::Authorize, "{ok:?}: {:?}", d.violations);
    }
    for (bad, reason) in [
        (&b"\0w\0"[..], "its length, 3 bytes, is odd"),
        (
            b"\0w\xd8\x00",
            "code unit 0xd800 at offset 2 is a surrogate or a noncharacter",
        ),
        (
            b"\xdf\xff",
            "code unit 0xdfff at offset 0 is a surrogate or a noncharacter",
        ),
        (
            b"\xff\xfe",
            "code unit 0xfffe at offset 0 is a surrogate or a noncharacter",
        ),
        (
            b"\xff\xff",
            "code unit 0xffff at offset 0 is a surrogate or a noncharacter",
        ),
        (
            b"\xfd\xd0",
            "code unit 0xfdd0 at offset 0 is a surrogate or a noncharacter",
        ),
        (
            b"\xfd\xef",
            "code unit 0xfdef at offset 0 is a surrogate or a noncharacter",
        ),
    ] {
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, tlv(0x1e, bad))]));
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v == format!("subject attribute 2.5.4.11 is not a valid BMPString: {reason}")
        });
    }
    // Go reads T61String as Latin-1 without any check; so does tlsboot outside CN and O.
    let d = Spec::renewal().decide(client_request_with(
        &key,
        &[(OID_OU, tlv(0x14, b"\xe9\x00\x1b"))],
    ));
    assert_eq!(d.verdict, Verdict::Authorize, "{:?}", d.violations);
    // As the CN or O: refused by type, valid content or not.
    for (tag, content) in [
        (0x14u8, NODE_USER.as_bytes().to_vec()),
        (0x1e, NODE_USER.bytes().flat_map(|b| [0, b]).collect()),
    ] {
        for attr in [OID_CN, OID_O] {
            let mut attrs = vec![(OID_O, utf8(ORG_SYSTEM_NODES)), (OID_CN, utf8(NODE_USER))];
            attrs.retain(|(o, _)| *o != attr);
            attrs.push((attr, tlv(tag, &content)));
            let d = Spec::renewal().decide(request_with_subject(&key, &attrs));
            assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
                v == format!(
                    "subject attribute {attr} is not a PrintableString, UTF8String, IA5String or NumericString"
                )
            });
        }
    }
}

#[test]
fn non_string_subject_values_go_validates_are_refused() {
    let key = p256();
    for (value, type_name) in [
        (tlv(0x01, &[0xff]), "BOOLEAN"),
        (tlv(0x02, &[0x00, 0x01]), "INTEGER"), // not even minimal: Go would refuse it
        (tlv(0x03, &[0x00, 0x01]), "BIT STRING"),
        (oid("1.2.3"), "OBJECT IDENTIFIER"),
        (tlv(0x17, b"300101000000Z"), "UTCTime"),
        (tlv(0x18, b"20300101000000Z"), "GeneralizedTime"),
    ] {
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, value)]));
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v == format!(
                "subject attribute 2.5.4.11 holds a value of type {type_name}; only string values are accepted in the subject"
            )
        });
    }
    // Values Go leaves alone (no check, value nil or bytes) stay accepted outside CN and O.
    for value in [
        tlv(0x04, b"\x00\xff"),
        tlv(0x05, &[]),
        seq(&[utf8("x")]),
        tlv(0x80, b"anything"),
    ] {
        let d = Spec::renewal().decide(client_request_with(&key, &[(OID_OU, value.clone())]));
        assert_eq!(
            d.verdict,
            Verdict::Authorize,
            "{value:02x?}: {:?}",
            d.violations
        );
    }
}

#[test]
fn san_names_must_be_ia5_strings_like_go() {
    let key = p256();
    let serving = |names: &[Vec<u8>]| {
        let t = tbs(
            0,
            node_subject(),
            &key,
            &[extension_request(&[san_extension(names)])],
        );
        Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)))
    };
    // Any ASCII passes the parse in a dNSName or rfc822Name, control characters included
    // (Go's isIA5String is all it checks), and the serving checks then judge the names.
    let d = serving(&[
        tlv(0x82, b"worker-1\x01"),
        tlv(0x81, b"a\x01@b"),
        tlv(0x86, b"spiffe://x/~"),
    ]);
    let parsed = d.parsed.as_ref().unwrap();
    assert_eq!(parsed.dns_names, ["worker-1\u{1}"]);
    assert_eq!(parsed.email_addresses, ["a\u{1}@b"]);
    assert_eq!(parsed.uris, ["spiffe://x/~"]);
    // A URI goes through Go's url.Parse, which refuses control characters first of all.
    for uri in [&b"spiffe://x\x7f"[..], b"spiffe://x\x00", b"\x1fspiffe://x"] {
        let d = serving(&[dns_name("worker-1"), tlv(0x86, uri)]);
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v.starts_with(
                "subjectAltName entry is malformed: uniformResourceIdentifier has a control character at offset",
            )
        });
    }
    for (tag, kind) in [
        (0x82u8, "dNSName"),
        (0x81, "rfc822Name"),
        (0x86, "uniformResourceIdentifier"),
    ] {
        // Valid UTF-8 that is not ASCII: x509-parser reads it, Go refuses it.
        let d = serving(&[dns_name("worker-1"), tlv(tag, "wörker-1".as_bytes())]);
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v == format!(
                "subjectAltName entry is malformed: {kind} is not an IA5String: byte 0xc3 at offset 1 is not ASCII"
            )
        });
        // Not UTF-8 at all: x509-parser already marks the entry invalid.
        let d = serving(&[dns_name("worker-1"), tlv(tag, b"worker-\xff")]);
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v == format!(
                "subjectAltName entry is malformed: entry with tag [{}] does not decode",
                tag & 0x1f
            )
        });
    }
}

#[test]
fn san_entries_must_use_their_der_form() {
    let key = p256();
    let serving = |names: &[Vec<u8>]| {
        let t = tbs(
            0,
            node_subject(),
            &key,
            &[extension_request(&[san_extension(names)])],
        );
        Spec::serving().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)))
    };
    // The only DNS name is a constructed [2]: Go ignores it (and would refuse the request for
    // having no DNS or IP SAN); x509-parser reads its content as a name.
    let d = serving(&[tlv(0xa2, &tlv(0x16, b"worker-1"))]);
    assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
        v == "subjectAltName entry is malformed: entry [2] is constructed; DER encodes it primitive"
    });
    for (entry, reason) in [
        (
            tlv(0xa7, &[10, 0, 0, 1]),
            "entry [7] is constructed; DER encodes it primitive",
        ),
        (
            tlv(0xa1, &tlv(0x16, b"a@b")),
            "entry [1] is constructed; DER encodes it primitive",
        ),
        (
            tlv(0xa6, &tlv(0x16, b"spiffe://x")),
            "entry [6] is constructed; DER encodes it primitive",
        ),
        (
            tlv(0x84, b"x"),
            "entry [4] is primitive; DER encodes it constructed",
        ),
        (tlv(0x89, &[1]), "entry with tag [9] is not a GeneralName"),
    ] {
        let d = serving(&[dns_name("worker-1"), entry]);
        assert_parse_fails(&d, stage::SUBJECT_AND_SANS, |v| {
            v == format!("subjectAltName entry is malformed: {reason}")
        });
    }
    // A universal-class entry: x509-parser already refuses the whole extension.
    let d = serving(&[dns_name("worker-1"), tlv(0x02, &[1])]);
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
        v.starts_with("requested extension 2.5.29.17 is malformed")
    });
}

// ---------------------------------------------------------------- challengePassword

#[test]
fn challenge_password_is_refused_whatever_its_string_type() {
    let key = p256();
    for value in [
        tlv(0x16, b"not-a-real-password"), // IA5String: Go ignores it, x509-parser cannot read it
        tlv(0x13, b"not-a-real-password"),
        utf8("not-a-real-password"),
        tlv(0x16, b"\xff"), // not even a valid IA5String: Go never looks
    ] {
        let attr = seq(&[oid(OID_CHALLENGE_PASSWORD), set(&[value])]);
        let t = tbs(0, node_subject(), &key, &[attr]);
        let d = Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256)));
        assert_parse_fails(&d, stage::ATTRIBUTES, |v| {
            v.starts_with(
                "PKCS#10 attribute challengePassword (1.2.840.113549.1.9.7) is not accepted",
            )
        });
    }
    // What a real client writes: OpenSSL's `[req_attributes] challengePassword` (UTF8String).
    let d = Spec::renewal().decide(fixture("challenge-password.csr.pem"));
    assert_parse_fails(&d, stage::ATTRIBUTES, |v| v.contains("challengePassword"));
    // Every stage before it passed: the rest of the request is well-formed.
    assert!(d.checks[..d.checks.len() - 1].iter().all(|c| c.passed));
    assert!(!d.violations[0].contains("not-a-real-password"));
}

// Found by the `decide` and `parse_csr_der` fuzz targets and their independent oracle: x509-parser
// read an element whose identifier octet is wrong as if it were right. Go's encoding/asn1 refuses
// both requests, so kube-apiserver never stores them; the policy must not judge them either.

#[test]
fn attribute_type_and_value_with_a_context_specific_tag_is_refused() {
    let key = p256();
    // O=system:nodes wrapped in [16] constructed, context-specific (0xb0) instead of SEQUENCE.
    let subject = seq(&[
        set(&[tlv(0xb0, &[oid(OID_O), utf8(ORG_SYSTEM_NODES)].concat())]),
        set(&[seq(&[oid(OID_CN), utf8(NODE_USER)])]),
    ]);
    let request = pem(&sign(&key, tbs(0, subject, &key, &[]), OID_ECDSA_SHA256));
    assert_parse_fails(&Spec::renewal().decide(request), stage::DER, |v| {
        v.contains("AttributeTypeAndValue is not a SEQUENCE")
    });
    // The same request with the right tag is authorized: only the tag differs.
    let request = pem(&sign(
        &key,
        tbs(0, node_subject(), &key, &[]),
        OID_ECDSA_SHA256,
    ));
    assert_eq!(Spec::renewal().decide(request).verdict, Verdict::Authorize);
}

#[test]
fn pss_mask_generation_oid_with_another_tag_is_refused() {
    let good = der_of(std::str::from_utf8(&fixture("rsa-pss-sha256.csr.pem")).unwrap());
    assert_eq!(
        Spec::renewal().decide(pem(&good)).verdict,
        Verdict::Authorize
    );
    // The signature algorithm's parameters are not signed: retag the MGF1 OID as a BOOLEAN.
    let mgf1 = oid("1.2.840.113549.1.1.8");
    let at = good
        .windows(mgf1.len())
        .position(|w| w == mgf1.as_slice())
        .unwrap();
    let mut retagged = good.clone();
    retagged[at] = 0x01;
    assert_parse_fails(&Spec::renewal().decide(pem(&retagged)), stage::DER, |v| {
        v.contains("RSASSA-PSS parameters")
    });
}

#[test]
fn extension_id_with_another_tag_is_refused() {
    let key = p256();
    // The fuzzer's find: an extension whose extnID is tagged [APPLICATION 21] (0x55) instead of
    // OBJECT IDENTIFIER, carrying a URI SAN in its value. Read as an unknown extension, the SAN
    // went unseen and the request was authorized.
    let uri = tlv(0x86, b"spiffe://example/node");
    let ext = seq(&[tlv(0x55, &[0x1d, 0x11, 0x06]), tlv(0x04, &seq(&[uri]))]);
    let t = tbs(0, node_subject(), &key, &[extension_request(&[ext])]);
    assert_parse_fails(
        &Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::DER,
        |v| v.contains("extension id: expected tag 0x06, found 0x55"),
    );
}

#[test]
fn ec_named_curve_with_another_tag_is_refused() {
    let key = p256();
    // The fuzzer's find: the P-256 curve OID retagged 0x2e (constructed, universal 14).
    let mut spki = key.subject_public_key_info();
    let curve = oid("1.2.840.10045.3.1.7");
    let at = spki
        .windows(curve.len())
        .position(|w| w == curve.as_slice())
        .unwrap();
    spki[at] = 0x2e;
    let t = seq(&[tlv(0x02, &[0]), node_subject(), spki, tlv(0xa0, &[])]);
    assert_parse_fails(
        &Spec::renewal().decide(pem(&sign(&key, t, OID_ECDSA_SHA256))),
        stage::DER,
        |v| v.contains("EC named curve: expected tag 0x06, found 0x2e"),
    );
}

#[test]
fn pss_hash_parameters_other_than_null_are_refused() {
    let good = der_of(std::str::from_utf8(&fixture("rsa-pss-sha256.csr.pem")).unwrap());
    // The fuzzer's find: the SHA-256 AlgorithmIdentifier's NULL retagged RELATIVE-OID (0x0d).
    // Go answers UnknownSignatureAlgorithm for anything but absent or NULL.
    let sha256_null = [oid("2.16.840.1.101.3.4.2.1"), vec![0x05, 0x00]].concat();
    let at = good
        .windows(sha256_null.len())
        .position(|w| w == sha256_null.as_slice())
        .unwrap();
    let mut retagged = good.clone();
    retagged[at + sha256_null.len() - 2] = 0x0d;
    assert_parse_fails(&Spec::renewal().decide(pem(&retagged)), stage::DER, |v| {
        v.contains("a hash's parameters are neither absent nor NULL")
    });
}
