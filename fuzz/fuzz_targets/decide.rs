//! The whole decision: the fuzzer's bytes split into a request and the spec fields around it.
//! `decide` must never panic, and may only authorize what the kubelet-client rules allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsboot::policy::{
    CsrFacts, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING, Verdict, decide,
};

const USAGES: [&str; 5] = [
    "digital signature",
    "key encipherment",
    "client auth",
    "server auth",
    "cert sign",
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, request)) = data.split_first() else {
        return;
    };
    let signer = match control & 0b11 {
        0 | 1 => SIGNER_KUBELET_CLIENT,
        2 => SIGNER_KUBELET_SERVING,
        _ => "example.com/other",
    };
    let usages: Vec<String> = USAGES
        .iter()
        .enumerate()
        .filter(|(i, _)| control & (0b100 << i) != 0)
        .map(|(_, u)| (*u).to_owned())
        .collect();
    let groups = vec!["system:nodes".to_owned()];
    let facts = CsrFacts {
        name: "csr-fuzz",
        signer_name: signer,
        request,
        usages: &usages,
        username: "system:node:worker-1",
        groups: &groups,
        approved: false,
        denied: false,
        issued: false,
    };
    let d = decide(&facts);
    if d.verdict == Verdict::Authorize {
        let parsed = d.parsed.as_ref().expect("authorize carries the parsed request");
        assert_eq!(signer, SIGNER_KUBELET_CLIENT);
        assert_eq!(parsed.organizations, ["system:nodes"]);
        assert!(parsed.dns_names.is_empty() && parsed.ip_addresses.is_empty());
        assert!(parsed.email_addresses.is_empty() && parsed.uris.is_empty());
        assert!(parsed.other_names.is_empty());
        assert!(parsed.common_name().is_some_and(|cn| cn.starts_with("system:node:")));
        assert!(d.violations.is_empty());
    }
});
