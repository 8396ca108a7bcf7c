//! `--deny-invalid`: invalid kubelet client CSRs are Denied, with upstream's reasons in
//! the message. Its own test binary (own control plane): a second approving daemon
//! would disturb the other suites' assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::Duration;

use controller_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn deny_invalid_denies_with_reasons() {
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
