//! Reliability: the leader is stopped in the middle of a burst of joins — first with
//! SIGTERM (it finishes in-flight work, releases the Lease, exits 0; the standby
//! continues at once), then, with a fresh standby, with SIGKILL (the standby takes over
//! within lease duration + retry, ≤ 17 s at defaults). Nothing is lost or written twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use tlsboot_harness::faultproxy::{FaultHandle, Faults};

/// Waits until `who` had `count` approvals accepted (the burst is under way).
async fn wait_approvals(handle: &FaultHandle, who: &str, count: usize) {
    let start = Instant::now();
    while handle
        .approvals_accepted()
        .values()
        .flatten()
        .filter(|w| w.identity == who)
        .count()
        < count
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{who} approved nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (last write of `old`, first write of `new`) among accepted approvals.
fn handover(handle: &FaultHandle, old: &str, new: &str) -> (Instant, Instant) {
    let approvals = handle.approvals_accepted();
    let times = |who: &str| approval_times(&approvals, who);
    let old_last = *times(old).last().expect("old leader wrote");
    let new_first = *times(new).first().expect("new leader wrote");
    assert!(
        old_last < new_first,
        "{old} and {new} wrote at the same time"
    );
    (old_last, new_first)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_then_sigkill_of_the_leader_during_bursts() {
    let Some((cp, proxy, handle)) = behind_proxy(Faults::default()).await else {
        return;
    };
    let (a, b) = two_daemons_via_proxy(cp, &proxy, "fo-a", "fo-b").await;
    let (first, second) = leader_and_standby(&a, &b, Duration::from_secs(30));
    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(60);
    let mut valid = Vec::new();

    // SIGTERM during a burst.
    let set = spawn_joins_over(cp, &boot, "term", n, Duration::from_secs(6));
    wait_approvals(&handle, &first.name, n / 5).await;
    let termed = Instant::now();
    tokio::task::block_in_place(|| first.child.terminate(Duration::from_secs(15)));
    let exit_took = termed.elapsed();
    let status = first.child.exited().expect("exited after SIGTERM");
    assert!(
        status.success(),
        "SIGTERM exits 0: {status}\n{}",
        first.logs()
    );
    // The shutdown sequence with timestamps, for docs/reliability.md.
    for line in first.child.log_tail(8).lines() {
        eprintln!(
            "after SIGTERM: {}",
            line.chars().take(300).collect::<String>()
        );
    }
    let joined = collect(set, || second.logs()).await;
    valid.extend(joined.iter().map(|j| j.csr.clone()));
    let (old_last, new_first) = handover(&handle, &first.name, &second.name);
    figure("failover", "sigterm_exit_ms", exit_took.as_millis());
    // The release is the old leader's last Lease write, after the signal.
    let release = handle
        .writes()
        .into_iter()
        .rfind(|w| w.identity == first.name && w.path.contains("/leases/") && w.at >= termed);
    figure(
        "failover",
        "sigterm_to_lease_release_answered_ms",
        release.as_ref().map_or_else(
            || "none".to_owned(),
            |w| format!("{} ({})", (w.done - termed).as_millis(), w.status),
        ),
    );
    figure(
        "failover",
        "sigterm_gap_between_leaders_s",
        secs(new_first - old_last),
    );
    figure(
        "failover",
        "sigterm_to_first_new_write_s",
        secs(new_first.saturating_duration_since(termed)),
    );
    assert_running(second);

    // SIGKILL during a burst, with a fresh standby.
    let c = daemon_via_proxy(cp, &proxy, "fo-c", &[]).await;
    c.wait_ready(Duration::from_secs(60));
    assert!(second.is_leader() && !c.is_leader());
    let before = handle
        .approvals_accepted()
        .values()
        .flatten()
        .filter(|w| w.identity == second.name)
        .count();
    let set = spawn_joins_over(cp, &boot, "kill", n, Duration::from_secs(6));
    wait_approvals(&handle, &second.name, before + n / 5).await;
    let killed = Instant::now();
    second.child.kill();
    let joined = collect(set, || c.logs()).await;
    valid.extend(joined.iter().map(|j| j.csr.clone()));
    let (old_last, new_first) = handover(&handle, &second.name, &c.name);
    let takeover = new_first.saturating_duration_since(killed);
    figure("failover", "sigkill_to_first_new_write_s", secs(takeover));
    figure(
        "failover",
        "sigkill_gap_between_leaders_s",
        secs(new_first - old_last),
    );
    assert!(
        takeover <= Duration::from_secs(17) + Duration::from_secs(3),
        "take-over after SIGKILL took {takeover:?}"
    );

    let invalid = create_invalid(cp, &boot, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;
    assert_running(&c);
    figure("failover", "nodes", valid.len());
    figure_tally("failover", &tally, &[&a, &b, &c], &[]);
}
