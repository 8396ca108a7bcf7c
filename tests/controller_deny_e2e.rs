//! `--deny-invalid`: invalid kubelet client CSRs are Denied, with upstream's reasons in
//! the message; a serving CSR that fails its checks is never denied, and the daemon and
//! `tlsboot inspect` agree it is `manual`. Its own test binary (own control plane): a second approving daemon
//! would disturb the other suites' assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::Duration;

use controller_support::*;
use tlsboot_harness::ControlPlane;

/// One daemon for both cases: tests in one binary run in parallel, and two of them applying
/// the daemon's manifests at once race on AlreadyExists.
#[tokio::test(flavor = "multi_thread")]
async fn deny_invalid_denies_client_csrs_never_serving_ones() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let sa = daemon_identity(cp).await;
    let d = Daemon::start(
        cp,
        sa.path(),
        "deny-invalid",
        &["--deny-invalid", "--leader-elect=false"],
    );
    d.wait_ready(Duration::from_secs(60));
    invalid_client_csr_is_denied_with_reasons(cp, &d).await;
    failing_serving_csr_is_manual_for_the_daemon_and_for_inspect(cp, &d).await;
}

async fn invalid_client_csr_is_denied_with_reasons(cp: &ControlPlane, d: &Daemon) {
    let boot = bootstrap(cp).await.1.client().unwrap();
    let name = cp.unique_name("masters");
    let node = cp.unique_name("n");
    create_client_csr(boot, &name, &node_client_pem(&node, "system:masters")).await;
    let csr = wait_csr(
        cp,
        &name,
        Duration::from_secs(30),
        || d.logs(),
        |c| !conditions(c).is_empty(),
    )
    .await;
    let conds = conditions(&csr);
    assert_eq!(conds.len(), 1, "{conds:?}");
    let (t, reason, message) = &conds[0];
    assert_eq!(t, "Denied");
    assert_eq!(reason, "KubeletClientCSRInvalid");
    assert!(
        message.contains("subject organization is not system:nodes"),
        "{message}"
    );
}

/// A serving CSR whose checks fail is a person's call everywhere: the daemon — even with
/// `--deny-invalid` — queues it (AwaitingReview, no condition) and `tlsboot inspect` on the same
/// object says `manual` with the same violations the daemon's Event names. Fails if the daemon
/// and inspect ever read the policy differently for such a CSR.
async fn failing_serving_csr_is_manual_for_the_daemon_and_for_inspect(
    cp: &ControlPlane,
    d: &Daemon,
) {
    let node = cp.unique_name("n");
    let id = cp
        .user_kubeconfig(&format!("system:node:{node}"), &["system:nodes"])
        .await
        .unwrap();
    let name = cp.unique_name("serving-apiserver-san");
    // Names the API server: the no-api-server-identity check fails, nothing else does.
    let pem = csr_pem(
        &format!("system:node:{node}"),
        &["system:nodes"],
        &[node.as_str(), "kubernetes.default.svc"],
        false,
        true,
    );
    create_csr(
        id.client().unwrap(),
        &name,
        &pem,
        "kubernetes.io/kubelet-serving",
        &["digital signature", "server auth"],
    )
    .await;

    let event = wait_event(cp, &name, "AwaitingReview", Duration::from_secs(30), || {
        d.logs()
    })
    .await;
    let note = event.note.unwrap_or_default();
    let csr = get_csr(cp, &name).await;
    assert!(
        conditions(&csr).is_empty(),
        "the daemon decided a serving CSR: {:?}",
        conditions(&csr)
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .arg("--kubeconfig")
        .arg(cp.kubeconfig_path())
        .args(["inspect", &name, "-o", "json"])
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decision = &reports[0]["decision"];
    assert_eq!(decision["verdict"], "manual", "{decision}");
    let violations = decision["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    for v in violations {
        let v = v.as_str().unwrap();
        assert!(v.contains("kubernetes.default.svc"), "{v}");
        assert!(note.contains(v), "daemon's Event {note:?} lacks {v:?}");
    }
}
