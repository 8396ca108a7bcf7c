//! Reliability: the daemon's watches are cut every 2 s, its next watches are answered
//! 410 Gone (too old resourceVersion, forcing a re-list), and then the proxy "restarts"
//! (every connection dropped, new ones refused for 3 s) — all while nodes join. Every
//! valid CSR is approved exactly once and the daemon recovers without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use fault_support::*;
use tlsboot_harness::faultproxy::Faults;

#[tokio::test(flavor = "multi_thread")]
async fn watch_cuts_410_and_a_proxy_restart_during_a_join() {
    let faults = Faults {
        watch_cut_every: Some(Duration::from_secs(2)),
        ..Faults::default()
    };
    let Some((cp, _proxy, handle, d)) =
        one_daemon_behind_proxy(faults, "fault-watch", &[], Duration::from_secs(60)).await
    else {
        return;
    };
    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(60);
    let third = (n / 3).max(1);
    let mut valid = Vec::new();

    // Wave 1: watches cut every 2 s, CSRs arriving across several cuts.
    let started = Instant::now();
    let wave = collect(
        spawn_joins_over(cp, &boot, "cut", third, Duration::from_secs(7)),
        || d.logs(),
    )
    .await;
    figure("watch", "wave_cut_wall_s", secs(started.elapsed()));
    valid.extend(wave.into_iter().map(|j| j.csr));

    // Wave 2: both signers' next watches get 410; the reflector must re-list.
    handle.set(|f| f.gone_next_watches = 2);
    let started = Instant::now();
    // Served when the watches re-open after the next cut (≤ 2 s): CSRs keep arriving
    // across that re-list.
    let set = spawn_joins_over(cp, &boot, "gone", third, Duration::from_secs(5));
    let wave = collect(set, || d.logs()).await;
    figure("watch", "wave_410_wall_s", secs(started.elapsed()));
    valid.extend(wave.into_iter().map(|j| j.csr));
    assert_eq!(handle.faults().gone_next_watches, 0, "the 410s were served");

    // Wave 3: a proxy "restart" while CSRs are arriving. A 3 s pause stays below the
    // renew deadline (10 s), so the leader keeps its lease.
    let set = spawn_joins_over(cp, &boot, "restart", n - 2 * third, Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    handle.restart(Duration::from_secs(3));
    let wave = collect(set, || d.logs()).await;
    let last = wave.iter().map(|j| j.took).max().unwrap_or_default();
    figure("watch", "restart_wave_slowest_join_s", secs(last));
    figure("watch", "restart_to_wave_done_s", secs(restarted.elapsed()));
    valid.extend(wave.into_iter().map(|j| j.csr));
    assert_running(&d);

    let invalid = create_invalid(cp, &boot, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;
    assert_running(&d);
    let s = handle.stats();
    figure("watch", "nodes", valid.len());
    figure("watch", "watches_cut", s.watches_cut);
    figure("watch", "watches_410", s.injected_410_watches);
    figure("watch", "connections_refused", s.refused_connections);
    figure_tally("watch", &tally, &[&d], &[]);
    assert!(s.watches_cut > 0, "{s:?}");
    assert!(
        s.refused_connections > 0,
        "the restart refused no connection: {s:?}"
    );
    assert_eq!(s.injected_410_watches, 2, "{s:?}");
}
