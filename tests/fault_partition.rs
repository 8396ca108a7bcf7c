//! Reliability: the leader is partitioned from its Lease — only its Lease writes fail
//! (per-identity fault at the proxy), its approvals would still go through. It must
//! stop writing before its lease can expire (no approval reaches the API server after
//! its last successful renewal + renew deadline), the standby takes over after the
//! lease duration, no CSR is approved by two leaders, and none is lost.
//!
//! The partitioned leader then exits non-zero: fail-stop on lost leadership, as
//! kube-controller-manager does (its Pod is restarted). That exit is asserted, not a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;

use tlsboot_harness::faultproxy::{Faults, HttpMethod as Method, IdentityFault};

const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// A write fenced just before the deadline still needs to reach the proxy. The bound
/// stays far below the lease duration (15 s), when a standby may take over.
const IN_TRANSIT: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread")]
async fn leader_partitioned_from_its_lease_stops_before_expiry() {
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    let (a, b) = two_daemons_via_proxy(cp, &proxy, "part-a", "part-b").await;
    let (leader, standby) = leader_and_standby(&a, &b, Duration::from_secs(30));
    let logs = || format!("{}\n---\n{}", a.logs(), b.logs());

    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(60);
    // CSRs arrive steadily for 30 s: before, during and after the partition.
    let set = spawn_joins_over(cp, &boot, "part", n, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let partitioned_at = Instant::now();
    handle.set(|f| {
        f.identity.push(IdentityFault {
            identity: leader.name.clone(),
            method: Some(Method::PUT),
            path_contains: "/leases/".into(),
            status: 500,
        })
    });
    let joined = collect(set, logs).await;
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();
    let invalid = create_invalid(cp, &boot, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let writes = handle.writes();
    let lease_ok = |who: &str| {
        writes
            .iter()
            .filter(|w| w.identity == who && w.path.contains("/leases/") && w.status == 200)
            .map(|w| w.at)
            .collect::<Vec<_>>()
    };
    // The renewal started before the proxy saw it: its deadline is earlier still.
    let last_renew = *lease_ok(&leader.name).last().expect("the leader renewed");
    let fence = last_renew + RENEW_DEADLINE;
    let approvals = handle.approvals_accepted();
    let old = approval_times(&approvals, &leader.name);
    let new = approval_times(&approvals, &standby.name);
    let old_last = *old
        .last()
        .expect("the leader approved before the partition");
    let new_first = *new.first().expect("the standby took over and approved");
    // Also writes the proxy refused or the API server rejected: nothing at all after the fence.
    let late: Vec<_> = writes
        .iter()
        .filter(|w| {
            w.identity == leader.name && w.path.ends_with("/approval") && w.at > fence + IN_TRANSIT
        })
        .collect();
    assert!(
        late.is_empty(),
        "approval writes after the renew deadline: {late:?}\n{}",
        leader.logs()
    );
    assert!(old_last < new_first, "two leaders wrote at once");
    assert!(
        lease_ok(&standby.name).iter().all(|t| *t > last_renew),
        "the standby held the lease while the leader still renewed"
    );
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;

    let status = leader
        .child
        .exited()
        .expect("the partitioned leader fail-stops");
    assert!(
        !status.success(),
        "lost leadership exits non-zero: {status}"
    );
    assert!(
        leader.logs().contains("leadership lost"),
        "{}",
        leader.logs()
    );
    assert_running(standby);
    assert!(standby.is_leader());

    figure("partition", "nodes", joined.len());
    // Signed: negative = the last write arrived after the bound (still within IN_TRANSIT).
    let margin_ms = if fence >= old_last {
        (fence - old_last).as_millis() as i128
    } else {
        -((old_last - fence).as_millis() as i128)
    };
    figure(
        "partition",
        "old_leader_last_write_before_bound_ms",
        margin_ms,
    );
    figure(
        "partition",
        "partition_to_last_old_write_s",
        secs(old_last.saturating_duration_since(partitioned_at)),
    );
    figure(
        "partition",
        "partition_to_first_new_write_s",
        secs(new_first - partitioned_at),
    );
    figure(
        "partition",
        "gap_between_leaders_s",
        secs(new_first - old_last),
    );
    figure("partition", "approvals_old_leader", old.len());
    figure("partition", "approvals_new_leader", new.len());
    figure(
        "partition",
        "lease_puts_refused",
        handle.stats().injected_identity,
    );
    figure_tally("partition", &tally, &[&a, &b], &[leader]);
    assert!(
        handle.stats().injected_identity > 0,
        "no Lease PUT was refused"
    );
}
