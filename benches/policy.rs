//! Per-CSR cost of `policy::decide`, the daemon's hot path: `cargo bench --bench policy`.
//!
//! Prints median and p99 wall time per decision for the requests the daemon sees: the kubelet's
//! ECDSA P-256 bootstrap CSR, an RSA-2048 renewal, a serving CSR, an already-approved CSR (no
//! parse), and a megabyte of garbage (refused on size); then the worst cases under the size limit
//! (thousands of attributes, of SANs) at n and 4n, whose ratio shows the cost is linear (≈ 4, a
//! quadratic step would give ≈ 16). No criterion: a plain binary keeps the
//! dependency set small and the figure easy to quote in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tlsboot::policy::{
    CsrFacts, MAX_REQUEST_BYTES, NodeAddress, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING,
    Verdict, compare_sans_with_node, decide, parse_csr,
};

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
    measure_n(case, groups, 3000)
}

fn measure_n(case: &Case, groups: &[String], iterations: usize) -> (Duration, Duration, Duration) {
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
    time_n(
        || {
            black_box(decide(black_box(&facts)));
        },
        iterations,
    )
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

fn time(f: impl FnMut()) -> (Duration, Duration, Duration) {
    time_n(f, 3000)
}

fn time_n(mut f: impl FnMut(), iterations: usize) -> (Duration, Duration, Duration) {
    for _ in 0..iterations / 15 {
        f();
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let median = samples[iterations / 2];
    let p99 = samples[iterations * 99 / 100];
    let mean = samples.iter().sum::<Duration>() / u32::try_from(iterations).unwrap();
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
    worst_cases(&p256, &groups);
}

/// A renewal-shaped client CSR carrying `n` unknown attributes (allowed, as in Go).
fn csr_with_attributes(key: &KeyPair, n: u32) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    p.distinguished_name
        .push(DnType::CommonName, "system:node:worker-1");
    let attrs = (0..n)
        .map(|i| rcgen::Attribute {
            // rcgen wants a 'static OID; a bench process can afford to leak a few thousand.
            oid: Box::leak(vec![1, 2, 3, u64::from(i)].into_boxed_slice()),
            values: vec![0x31, 0x02, 0x05, 0x00], // SET { NULL }
        })
        .collect();
    p.serialize_request_with_attributes(key, attrs)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

/// Per-decision cost at n and 4n of the largest inputs that pass the 64 KiB size check, and of
/// comparing thousands of SANs with a Node. Timing these belongs here, not in the unit tests:
/// an unoptimised test build on a shared machine cannot tell slow from quadratic by a bound.
fn worst_cases(key: &KeyPair, groups: &[String]) {
    let client = strings(&["digital signature", "client auth"]);
    let serving = strings(&["digital signature", "server auth"]);
    let attributes = |n| Case {
        name: "attributes",
        signer: SIGNER_KUBELET_CLIENT,
        request: csr_with_attributes(key, n),
        usages: client.clone(),
        approved: false,
        expect: Verdict::Authorize,
    };
    let sans = |n: u32| Case {
        name: "DNS SANs",
        signer: SIGNER_KUBELET_SERVING,
        request: csr(
            key,
            (0..n)
                .map(|i| SanType::DnsName(format!("n{i}.example").try_into().unwrap()))
                .collect(),
        ),
        usages: serving.clone(),
        approved: false,
        expect: Verdict::Manual,
    };
    println!();
    println!(
        "{:<42} {:>12} {:>12} {:>8}",
        "worst cases (median per call)", "n", "4n", "4n/n"
    );
    let row = |name: String,
               (n, _, _): (Duration, Duration, Duration),
               (n4, _, _): (Duration, Duration, Duration)| {
        println!(
            "{:<42} {:>10.1}µs {:>10.1}µs {:>8.1}",
            name,
            n.as_secs_f64() * 1e6,
            n4.as_secs_f64() * 1e6,
            n4.as_secs_f64() / n.as_secs_f64()
        );
    };
    for (what, n, make) in [
        ("attributes", 875, &attributes as &dyn Fn(u32) -> Case),
        ("DNS SANs", 750, &sans),
    ] {
        let (small, large) = (make(n), make(4 * n));
        assert!(
            large.request.len() <= MAX_REQUEST_BYTES,
            "{what}: over the size limit"
        );
        row(
            format!("decide(), {n} vs {} {what}", 4 * n),
            measure_n(&small, groups, 300),
            measure_n(&large, groups, 300),
        );
    }
    let node = [NodeAddress {
        kind: "Hostname",
        address: "n1.example",
    }];
    let compare = |n: u32| {
        let parsed = parse_csr(&sans(n).request).unwrap();
        time_n(
            || {
                black_box(compare_sans_with_node(black_box(&parsed), Some(&node)));
            },
            300,
        )
    };
    row(
        "compare_sans_with_node, 750 vs 3000 SANs".into(),
        compare(750),
        compare(3000),
    );
    println!("(linear cost gives 4n/n ≈ 4 or less; a quadratic step would give ≈ 16)");
}
