//! Reliability: 30 % of the daemon's approval writes answered 409 Conflict (as when
//! another writer changed the CSR). The daemon re-reads and retries: every valid CSR
//! ends with exactly one Approved condition and exactly one accepted write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use tlsboot_harness::faultproxy::{FaultProxy, Faults};

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_on_approval_writes() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let proxy = FaultProxy::start(
        cp,
        Faults {
            conflict_on_approval: 0.3,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let handle = proxy.handle();
    let d = daemon_via_proxy(cp, &proxy, "fault-conflicts", &[]).await;
    d.wait_ready(Duration::from_secs(60));
    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(60);
    let started = Instant::now();
    let set = spawn_joins(cp, &boot, "conflict", n);
    let invalid = create_invalid(cp, &boot, 5).await;
    let joined = collect(set, || d.logs()).await;
    let wall = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();
    let (lost, dup) = assert_exactly_once(cp, &handle.approvals_accepted(), &valid, &invalid).await;
    assert_running(&d);
    let s = handle.stats();
    let took: Vec<Duration> = joined.iter().map(|j| j.took).collect();
    figure("conflicts", "nodes", n);
    figure("conflicts", "injected_409", s.injected_409);
    figure(
        "conflicts",
        "join_wall_s",
        format!("{:.1}", wall.as_secs_f64()),
    );
    figure(
        "conflicts",
        "join_p99_s",
        format!("{:.2}", percentile(took, 0.99).as_secs_f64()),
    );
    figure("conflicts", "lost", lost);
    figure("conflicts", "duplicates", dup);
    figure("conflicts", "crashes", 0);
    assert!(s.injected_409 > 0, "{s:?}");
}
