//! Leader election end to end: two real daemons on one Lease; only the leader writes;
//! SIGKILL of the leader hands over within lease duration + retry; SIGTERM hands over
//! at once (the lease is released).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::{Duration, Instant};

use controller_support::*;
use tlsboot_harness::{ControlPlane, KubeletOptions, SimKubelet, Stage};

async fn join(cp: &ControlPlane, prefix: &str, logs: impl Fn() -> String) -> (String, Duration) {
    let (_token, boot) = bootstrap(cp).await;
    let mut opts = KubeletOptions::new(cp.unique_name(prefix));
    opts.stop_after = Stage::ClientCertIssued;
    opts.certificate_timeout = Duration::from_secs(60);
    let started = Instant::now();
    let mut k = SimKubelet::new(boot.config(), opts).unwrap();
    let report = k.run().await.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let name = report.client_csr.unwrap();
    let csr = get_csr(cp, &name).await;
    assert!(
        approved_with(&csr, NODECLIENT_MSG),
        "{:?}",
        conditions(&csr)
    );
    assert_eq!(conditions(&csr).len(), 1, "exactly one condition");
    (name, started.elapsed())
}

const APPROVED: &str = "tlsboot_csr_decisions_total{signer=\"kubernetes.io/kube-apiserver-client-kubelet\",outcome=\"approved\"}";

#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_writes_and_failover_is_prompt() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let sa = daemon_identity(cp).await;
    let a = Daemon::start(cp, sa.path(), "replica-a", &[]);
    let b = Daemon::start(cp, sa.path(), "replica-b", &[]);
    // Readiness does not depend on leadership: both become ready.
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));
    let (leader, standby) = leader_and_standby(&a, &b, Duration::from_secs(30));
    let logs = || format!("{}\n---\n{}", a.logs(), b.logs());

    join(cp, "ha", logs).await;
    assert!(leader.metric(APPROVED) >= 1.0);
    assert_eq!(standby.metric(APPROVED), 0.0, "the standby must not write");

    // SIGKILL: no release; the standby takes over once the lease expires by its clock.
    leader.child.kill();
    let killed_at = Instant::now();
    let (_, took) = join(cp, "after-kill", logs).await;
    let handover = killed_at.elapsed();
    eprintln!(
        "SIGKILL hand-over: new CSR approved {handover:?} after the kill (join took {took:?})"
    );
    assert!(standby.is_leader());
    assert!(standby.metric(APPROVED) >= 1.0);
    // Lease duration 15 s + retry 2 s + a kubelet's own round trips.
    assert!(
        handover < Duration::from_secs(30),
        "hand-over took {handover:?}"
    );

    // SIGTERM: the leader finishes, releases the lease, exits 0; a new standby takes over at once.
    let c = Daemon::start(cp, sa.path(), "replica-c", &[]);
    c.wait_ready(Duration::from_secs(60));
    assert!(!c.is_leader());
    standby.child.terminate(Duration::from_secs(15));
    let termed_at = Instant::now();
    let status = standby.child.exited().expect("exited after SIGTERM");
    assert!(
        status.success(),
        "SIGTERM must exit 0, got {status}\n{}",
        standby.logs()
    );
    let new_leader = wait_leader(&[&c], Duration::from_secs(10));
    let term_handover = termed_at.elapsed();
    eprintln!("SIGTERM hand-over: {term_handover:?}");
    assert!(
        term_handover < Duration::from_secs(6),
        "released lease should be taken within a retry period"
    );
    join(cp, "after-term", || new_leader.logs()).await;
}
