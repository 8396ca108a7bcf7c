//! Per-CSR cost of `policy::decide`, the daemon's hot path: `cargo bench --bench policy`.
//!
//! Prints median and p99 wall time per decision for the requests the daemon sees: the kubelet's
//! ECDSA P-256 bootstrap CSR, an RSA-2048 renewal, a serving CSR, an already-approved CSR (no
//! parse), and a megabyte of garbage (refused on size). No criterion: a plain binary keeps the
//! dependency set small and the figure easy to quote in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tlsboot::policy::{CsrFacts, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING, Verdict, decide};

fn csr(key: &KeyPair, sans: Vec<SanType>) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    p.distinguished_name
        .push(DnType::CommonName, "system:node:worker-1");
    p.subject_alt_names = sans;
    p.serialize_request(key)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

struct Case {
    name: &'static str,
    signer: &'static str,
    request: Vec<u8>,
    usages: Vec<String>,
    approved: bool,
    expect: Verdict,
}

fn measure(case: &Case, groups: &[String]) -> (Duration, Duration, Duration) {
    let facts = CsrFacts {
        name: "csr-bench",
        signer_name: case.signer,
        request: &case.request,
        usages: &case.usages,
        username: "system:node:worker-1",
        groups,
        approved: case.approved,
        denied: false,
        issued: false,
    };
    assert_eq!(decide(&facts).verdict, case.expect, "{}", case.name);
    // Single decisions are timed so the percentiles mean something.
    time(|| {
        black_box(decide(black_box(&facts)));
    })
}

fn verify_only(pem: &[u8]) -> (Duration, Duration, Duration) {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let (_, req) = X509CertificationRequest::from_der(&block.contents).unwrap();
    let key = req
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data
        .to_vec();
    let tbs = req.certification_request_info.raw.to_vec();
    let sig = req.signature_value.data.to_vec();
    let verify = || {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &key)
            .verify(&tbs, &sig)
            .unwrap();
    };
    time(verify)
}

fn time(mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    for _ in 0..200 {
        f();
    }
    let iterations = 3000;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let median = samples[iterations / 2];
    let p99 = samples[iterations * 99 / 100];
    let mean = samples.iter().sum::<Duration>() / iterations as u32;
    (median, p99, mean)
}

fn print(name: &str, (median, p99, mean): (Duration, Duration, Duration)) {
    println!(
        "{:<42} {:>10.1}µs {:>10.1}µs {:>10.1}µs",
        name,
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("policy bench: run with `cargo bench --bench policy`");
        return;
    }
    let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rsa = KeyPair::from_pem(include_str!("../tests/fixtures/policy/rsa-2048.key")).unwrap();
    let client = strings(&["digital signature", "key encipherment", "client auth"]);
    let serving = strings(&["digital signature", "server auth"]);
    let cases = [
        Case {
            name: "kubelet-client P-256 (bootstrap shape)",
            signer: SIGNER_KUBELET_CLIENT,
            request: csr(&p256, vec![]),
            usages: client.clone(),
            approved: false,
            expect: Verdict::Authorize,
        },
        Case {
            name: "kubelet-client RSA-2048",
            signer: SIGNER_KUBELET_CLIENT,
            request: csr(&rsa, vec![]),
            usages: client.clone(),
            approved: false,
            expect: Verdict::Authorize,
        },
        Case {
            name: "kubelet-serving P-256, 2 SANs",
            signer: SIGNER_KUBELET_SERVING,
            request: csr(
                &p256,
                vec![
                    SanType::DnsName("worker-1".try_into().unwrap()),
                    SanType::IpAddress("10.0.0.5".parse().unwrap()),
                ],
            ),
            usages: serving,
            approved: false,
            expect: Verdict::Manual,
        },
        Case {
            name: "already approved (not parsed)",
            signer: SIGNER_KUBELET_CLIENT,
            request: csr(&p256, vec![]),
            usages: client.clone(),
            approved: true,
            expect: Verdict::Ignore,
        },
        Case {
            name: "1 MiB of garbage (size refusal)",
            signer: SIGNER_KUBELET_CLIENT,
            request: vec![b'A'; 1 << 20],
            usages: client,
            approved: false,
            expect: Verdict::Reject,
        },
    ];
    let groups = strings(&["system:nodes", "system:authenticated"]);
    println!(
        "{:<42} {:>12} {:>12} {:>12}",
        "decide() per CSR", "median", "p99", "mean"
    );
    for case in &cases {
        print(case.name, measure(case, &groups));
    }
    print(
        "  (ring P-256 signature check alone)",
        verify_only(&cases[0].request),
    );
}
