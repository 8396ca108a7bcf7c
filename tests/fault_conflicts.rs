//! Reliability: 30 % of the daemon's approval writes answered 409 Conflict (as when
//! another writer changed the CSR). The daemon re-reads and retries: every valid CSR
//! ends with exactly one Approved condition and exactly one accepted write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::Duration;

use fault_support::*;
use tlsboot_harness::faultproxy::Faults;

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_on_approval_writes() {
    let faults = Faults {
        conflict_on_approval: 0.3,
        ..Faults::default()
    };
    let Some((cp, _proxy, handle, d)) =
        one_daemon_behind_proxy(faults, "fault-conflicts", &[], Duration::from_secs(60)).await
    else {
        return;
    };
    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(60);
    let (joined, invalid, wall) = join_with_invalid(cp, &boot, "conflict", n, 5, || d.logs()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = assert_joins_exactly_once(cp, &handle, &joined, &invalid, &d).await;
    let s = handle.stats();
    let took: Vec<Duration> = joined.iter().map(|j| j.took).collect();
    figure("conflicts", "nodes", joined.len());
    figure("conflicts", "injected_409", s.injected_409);
    figure("conflicts", "join_wall_s", secs(wall));
    figure(
        "conflicts",
        "join_p99_s",
        format!("{:.2}", percentile(took, 0.99).as_secs_f64()),
    );
    figure_tally("conflicts", &tally, &[&d], &[]);
    assert!(s.injected_409 > 0, "{s:?}");
}
