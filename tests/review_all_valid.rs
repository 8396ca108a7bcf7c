//! `tlsboot approve --all-valid` against its own control plane (a separate test binary: it acts
//! on every pending CSR, so no other test may share the queue): valid serving CSRs are approved,
//! failing ones are skipped with their reasons, so are ones with a check that could not be
//! evaluated; kubelet-client CSRs are never touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod review_support;

use review_support::*;

#[tokio::test]
async fn all_valid_approves_only_passing_serving_csrs() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let n = cp.unique_name("bulk");
    let other = cp.unique_name("bulk-other");
    let ip = node_ip(&n).to_string();
    create_node(cp, &n, node_ip(&n)).await;
    create_node(cp, &other, node_ip(&other)).await;
    let other_ip = node_ip(&other).to_string();

    let good1 = node_with_serving_csr(cp, &n, &[&n, &ip]).await;
    let good2 = node_with_serving_csr(cp, &n, &[&ip]).await;
    let bad = node_with_serving_csr(cp, &n, &[&n, &other_ip]).await;
    // A valid kubelet-client renewal from the same node: --all-valid must leave it alone.
    let id = node_identity(cp, &n).await;
    let client_csr = create_csr(
        id.client().unwrap(),
        serving_request(&n, &[]).as_bytes(),
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    )
    .await;
    let listed = tlsboot(cp, &["list", "--signer", "kubelet-client"]).ok();
    assert_eq!(row(&listed.stdout, &client_csr).unwrap()[6], "ok");

    // A reviewer who cannot read the API server's Service cannot evaluate no-service-identity
    // for any CSR with an IP SAN: --all-valid approves nothing and says why for each.
    let (_, kc) = reviewer(cp, Lacking::GetServices).await;
    let run = tlsboot_with(kc.path(), &["approve", "--all-valid"]).ok();
    assert_eq!(run.stdout, "", "{run:#?}");
    for g in [&good1, &good2] {
        assert!(
            run.stderr.contains(&format!(
                "skipped {g}: no-service-identity (unknown): could not read Service default/kubernetes to compare IP SANs: services \"kubernetes\" is forbidden"
            )),
            "{}",
            run.stderr
        );
        assert_eq!(kubectl_condition(cp, g), "Pending");
    }
    assert!(
        run.stderr.contains(&format!(
            "skipped {bad}: sans-on-node: not addresses of Node {n}: IP:{other_ip}; sans-not-on-other-nodes: IP:{other_ip} is an address of {other}; no-service-identity (unknown): "
        )),
        "{}",
        run.stderr
    );

    // Dry run first: says what it would do, changes nothing.
    let dry = tlsboot(cp, &["approve", "--all-valid", "--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains(&format!("{good1} approved (server dry run)")),
        "{dry:#?}"
    );
    assert_eq!(kubectl_condition(cp, &good1), "Pending");

    let run = tlsboot(cp, &["approve", "--all-valid"]).ok();
    let mut approved: Vec<&str> = run.stdout.lines().collect();
    approved.sort_unstable();
    let mut want = vec![
        format!("certificatesigningrequest.certificates.k8s.io/{good1} approved"),
        format!("certificatesigningrequest.certificates.k8s.io/{good2} approved"),
    ];
    want.sort_unstable();
    assert_eq!(approved, want, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "skipped {bad}: sans-on-node: not addresses of Node {n}: IP:{other_ip}; sans-not-on-other-nodes: IP:{other_ip} is an address of {other}"
        )),
        "{}",
        run.stderr
    );
    for g in [&good1, &good2] {
        assert_eq!(conditions(cp, g).len(), 1);
    }
    assert_eq!(kubectl_condition(cp, &bad), "Pending");
    assert_eq!(kubectl_condition(cp, &client_csr), "Pending");

    // --all-valid cannot be combined with names or --force.
    let run = tlsboot(cp, &["approve", "--all-valid", "--force"]).failed();
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    let run = tlsboot(cp, &["approve", "--all-valid", &bad]).failed();
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    assert_eq!(kubectl_condition(cp, &bad), "Pending");
}
