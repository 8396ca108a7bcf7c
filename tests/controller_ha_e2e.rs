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

/// The daemon's defaults (`--leader-elect-lease-duration`, `--leader-elect-retry-period`).
const LEASE_DURATION: Duration = Duration::from_secs(15);
const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// The sum of `d`'s metric lines starting with `prefix`, read from its /metrics. A failed
/// scrape fails the test rather than reading as 0 (which would pass "the standby did not
/// write" for a daemon that cannot be asked). A labelled counter has no line until it is
/// first counted: that is 0, on a page known to be the daemon's by its leader gauge.
fn scrape(d: &Daemon, prefix: &str) -> f64 {
    let body = match d.get("/metrics") {
        Some((200, body)) => body,
        other => panic!(
            "cannot read {}'s /metrics (got {other:?}):\n{}",
            d.name,
            d.logs()
        ),
    };
    assert!(
        body.lines().any(|l| l.starts_with("tlsboot_leader ")),
        "{}'s /metrics has no tlsboot_leader gauge:\n{body}",
        d.name
    );
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("unreadable metric line {l:?}"))
        })
        .sum()
}

fn approved_by(d: &Daemon) -> f64 {
    scrape(d, APPROVED)
}

fn leads(d: &Daemon) -> bool {
    scrape(d, "tlsboot_leader ") == 1.0
}

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
    assert!(approved_by(leader) >= 1.0);
    assert_eq!(approved_by(standby), 0.0, "the standby must not write");

    // SIGKILL: no release; the standby takes over once the lease expires by its clock.
    let killed_at = Instant::now();
    leader.child.kill();
    let (_, took) = join(cp, "after-kill", logs).await;
    let handover = killed_at.elapsed();
    eprintln!(
        "SIGKILL hand-over: new CSR approved {handover:?} after the kill (join took {took:?})"
    );
    assert!(leads(standby));
    assert!(approved_by(standby) >= 1.0);
    // Lease duration 15 s + retry 2 s + a kubelet's own round trips.
    assert!(
        handover < Duration::from_secs(30),
        "hand-over took {handover:?}"
    );

    // SIGTERM: the leader finishes, releases the lease, exits 0; a new standby takes over at once.
    let c = Daemon::start(cp, sa.path(), "replica-c", &[]);
    c.wait_ready(Duration::from_secs(60));
    assert!(!leads(&c));
    // Timed from before the signal: the release happens while the process exits.
    let termed_at = Instant::now();
    standby.child.terminate(Duration::from_secs(15));
    let status = standby.child.exited().expect("exited after SIGTERM");
    assert!(
        status.success(),
        "SIGTERM must exit 0, got {status}\n{}",
        standby.logs()
    );
    let log = std::fs::read_to_string(standby.child.log_path()).unwrap();
    assert!(
        log.contains("released leader lease"),
        "no release in {}'s log:\n{}",
        standby.name,
        standby.logs()
    );
    let new_leader = wait_leader(&[&c], 2 * LEASE_DURATION);
    let term_handover = termed_at.elapsed();
    eprintln!("SIGTERM hand-over: {term_handover:?}");
    // A lease that was not released could be taken no sooner than its duration after c last
    // saw it renewed, at most one retry period before the signal.
    assert!(
        term_handover < LEASE_DURATION - RETRY_PERIOD,
        "c took {term_handover:?} to lead: it waited for expiry, not for the release"
    );
    join(cp, "after-term", || new_leader.logs()).await;
}
