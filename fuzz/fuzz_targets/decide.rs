//! The whole decision: two control bytes choose the spec fields (signer, usages, requester,
//! groups, conditions) and how the rest reaches `spec.request` (DER wrapped in PEM, or the raw
//! bytes as PEM text). `decide` must never panic, and it may only authorize what the
//! independent oracle in `fuzz/src/lib.rs` — its own PEM, DER and signature code, none of
//! tlsboot's — finds authorizable under the kubelet-client rules.
//!
//! Input layout (the committed seeds in `fuzz/seeds/decide/` follow it; `fuzz/gen-seeds.sh`):
//! - byte 0: bits 0-1 signer (0, 1 client, 2 serving, 3 another signer); bits 2-7 one usage each
//!   from [`USAGES`];
//! - byte 1: bits 0-1 requester ([`USERS`]), bits 2-3 groups, bit 4 repeat the first usage,
//!   bits 5-6 what the rest is (0 and 3: DER, wrapped in PEM here; 1: PEM text; 2: a
//!   certificationRequestInfo, signed here by the fixed re-signing key so that mutations of the
//!   subject, SANs and attributes get past the signature check), bit 7 an Approved condition;
//! - the rest: the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsboot::policy::{
    CsrFacts, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING, SarSubresource, Verdict, decide,
};
use tlsboot_fuzz::{Spec, authorizable, der_to_pem, resign_p256};

/// Exactly the strings `spec.usages` may hold that matter here, plus a case variant: the sets
/// compare strings exactly.
const USAGES: [&str; 6] = [
    "digital signature",
    "key encipherment",
    "client auth",
    "server auth",
    "cert sign",
    "Client Auth",
];

const USERS: [&str; 4] = [
    "system:bootstrap:abcdef",
    "system:node:worker-1",
    "system:node:worker-2",
    "",
];

fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("TLSBOOT_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let [c0, c1, rest @ ..] = data else {
        return;
    };
    let (c0, c1) = (*c0, *c1);
    let signer = match c0 & 0b11 {
        0 | 1 => SIGNER_KUBELET_CLIENT,
        2 => SIGNER_KUBELET_SERVING,
        _ => "kubernetes.io/kube-apiserver-client",
    };
    let mut usages: Vec<String> = USAGES
        .iter()
        .enumerate()
        .filter(|(i, _)| c0 & (0b100 << i) != 0)
        .map(|(_, u)| (*u).to_owned())
        .collect();
    if c1 & 0x10 != 0
        && let Some(first) = usages.first().cloned()
    {
        usages.push(first);
    }
    let username = USERS[usize::from(c1 & 0b11)];
    let groups: Vec<String> = match (c1 >> 2) & 0b11 {
        0 => vec!["system:nodes".into(), "system:authenticated".into()],
        1 => vec!["system:bootstrappers".into(), "system:authenticated".into()],
        2 => vec![],
        _ => vec!["system:masters".into()],
    };
    let request = match (c1 >> 5) & 0b11 {
        1 => rest.to_vec(),
        2 => der_to_pem(&resign_p256(rest)),
        _ => der_to_pem(rest),
    };
    let (approved, denied, issued) = (c1 & 0x80 != 0, false, false);
    let facts = CsrFacts {
        name: "csr-fuzz",
        signer_name: signer,
        request: &request,
        usages: &usages,
        username,
        groups: &groups,
        approved,
        denied,
        issued,
    };
    let d = decide(&facts);
    let spec = Spec {
        signer_name: signer,
        usages: &usages,
        approved,
        denied,
        issued,
    };
    if verbose() {
        // What each input got from both sides: to check a seed corpus reaches the approve
        // branch (TLSBOOT_FUZZ_VERBOSE=1 cargo fuzz run decide seeds/decide -- -runs=0).
        let oracle = authorizable(&spec, &request);
        eprintln!("decide: {:?} {:?}; oracle: {oracle:?}", d.verdict, d.violations);
    }
    if d.verdict != Verdict::Authorize {
        return;
    }
    let cn = match authorizable(&spec, &request) {
        Ok(cn) => cn,
        Err(why) => panic!(
            "WRONG APPROVAL: decide authorized a request the oracle refuses ({}).\n\
             usages {usages:?}, signer {signer}, requester {username:?}\ndecision: {d:#?}",
            why.0
        ),
    };
    assert!(d.violations.is_empty(), "authorized with violations: {d:#?}");
    // Upstream's recognizers: selfnodeclient first when the requester is the subject CN.
    let want = if username == cn {
        vec![SarSubresource::SelfNodeClient, SarSubresource::NodeClient]
    } else {
        vec![SarSubresource::NodeClient]
    };
    assert_eq!(d.subject_access_reviews, want, "SubjectAccessReviews for CN {cn:?}");
});
