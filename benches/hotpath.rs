//! The daemon's per-CSR work apart from `policy::decide` (benches/policy.rs has that):
//! `cargo bench --bench hotpath`.
//!
//! For one kubelet bootstrap CSR as the watch delivers it: decoding the watch event's JSON,
//! extracting the policy facts, building the SubjectAccessReview and its request body, the SAR
//! cache key and a cache hit, and appending the Approved condition and serialising the
//! `PUT …/approval` body. Plain timing loops printing ns/op (no criterion), so a regression in
//! any step shows up as a number that can be quoted in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use tlsboot::controller::authz::{SarCache, SarKey, subject_access_review};
use tlsboot::controller::queue::{FairQueue, Flow};
use tlsboot::policy::{CsrFacts, SIGNER_KUBELET_CLIENT, SarSubresource};

fn bootstrap_csr() -> CertificateSigningRequest {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    p.distinguished_name
        .push(DnType::CommonName, "system:node:worker-1");
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    let json = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {
            "name": "node-csr-NFi61nEDgUE-kQUHWDmlMUNfEL9CssHcnVsnMenO0AY",
            "uid": "0b7cf3f5-6f0c-4f7e-9a57-0a3a2b1c0d4e",
            "resourceVersion": "123456",
            "creationTimestamp": "2026-11-25T20:00:00Z",
            "managedFields": [{
                "manager": "kubelet", "operation": "Update", "apiVersion": "certificates.k8s.io/v1",
                "time": "2026-11-25T20:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:request": {}, "f:signerName": {}, "f:usages": {}}}
            }]
        },
        "spec": {
            "request": ByteString(pem.into_bytes()),
            "signerName": SIGNER_KUBELET_CLIENT,
            "usages": ["digital signature", "key encipherment", "client auth"],
            "username": "system:bootstrap:abcdef",
            "groups": ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated"]
        },
        "status": {}
    });
    serde_json::from_value(json).unwrap()
}

/// Mean ns per call over `iters` calls after a warm-up; three rounds, the best one reported,
/// because on a shared 2-core machine the minimum is the most repeatable figure.
fn bench(name: &str, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    println!("{name:<52} {best:>10.0} ns/op");
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let iters = if quick { 10 } else { 20_000 };
    let csr = bootstrap_csr();
    let event = serde_json::to_vec(&csr).unwrap();
    println!("watch object: {} bytes of JSON", event.len());

    bench("decode CSR from watch JSON (serde_json)", iters, || {
        let c: CertificateSigningRequest = serde_json::from_slice(black_box(&event)).unwrap();
        black_box(c);
    });
    bench("CsrFacts::from_csr", iters, || {
        black_box(CsrFacts::from_csr(black_box(&csr)));
    });
    bench("subject_access_review (build)", iters, || {
        black_box(subject_access_review(
            black_box(&csr),
            SarSubresource::NodeClient,
        ));
    });
    bench("subject_access_review + serialize body", iters, || {
        let sar = subject_access_review(black_box(&csr), SarSubresource::NodeClient);
        black_box(serde_json::to_vec(&sar).unwrap());
    });
    bench("SarKey::new", iters, || {
        black_box(SarKey::new(black_box(&csr), SarSubresource::NodeClient));
    });
    let cache = SarCache::new(std::time::Duration::from_secs(3600));
    let now = tokio::time::Instant::now();
    cache.put(SarKey::new(&csr, SarSubresource::NodeClient), true, now);
    bench("SarKey::new + SarCache::get (hit)", iters, || {
        let k = SarKey::new(black_box(&csr), SarSubresource::NodeClient);
        assert_eq!(cache.get(&k, now), Some(true));
    });
    // The work queue under a flood: 10,000 keys of one requester queued, then one key of
    // another added and taken (round-robin), then handed back; the queue's size stays put.
    let mut queue = FairQueue::new();
    let flood: Flow = std::sync::Arc::from("system:bootstrap:flood1");
    for i in 0..10_000 {
        queue.add(&format!("junk-{i}"), &flood);
    }
    let node: Flow = std::sync::Arc::from("system:bootstrap:abcdef");
    let mut turn = 0u64;
    bench("FairQueue add + pop + done (10,000 queued)", iters, || {
        queue.add("node-csr-valid", &node);
        let (key, flow) = queue.pop().unwrap();
        queue.done(&key);
        if *flow != *node {
            // The flood's turn came first: put its key back at the end of its FIFO.
            queue.add(&key, &flow);
            let (k, _) = queue.pop().unwrap();
            queue.done(&k);
        }
        turn += 1;
    });
    black_box(turn);
    // What cluster::write_approval does before each PUT: clone, append, serialise.
    bench("approval body: clone + append condition", iters, || {
        let mut body = black_box(&csr).clone();
        append_approved(&mut body);
        black_box(body);
    });
    bench("approval body: clone + append + serialize", iters, || {
        let mut body = black_box(&csr).clone();
        append_approved(&mut body);
        black_box(serde_json::to_vec(&body).unwrap());
    });
}

fn append_approved(body: &mut CertificateSigningRequest) {
    body.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".to_owned(),
            status: "True".to_owned(),
            reason: Some("AutoApproved".to_owned()),
            message: Some(
                "Auto approving kubelet client certificate after SubjectAccessReview.".to_owned(),
            ),
            ..Default::default()
        });
}
