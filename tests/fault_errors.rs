//! Reliability: 20 % of the daemon's requests answered 500 and 10 % answered 429
//! (Retry-After: 1) while nodes join. Every valid CSR is approved exactly once, no
//! invalid one is, and the daemon keeps running.
//!
//! The Lease is exempt: at a 30 % failure rate per request, the five renew attempts of
//! one renew deadline (each a GET and a PUT) all fail with p ≈ 0.51⁵ ≈ 3.5 %, and the
//! leader then fail-stops by design (it exits; see docs/reliability.md). That behaviour
//! is covered by fault_partition.rs; this scenario is about CSR work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::Duration;

use fault_support::*;
use tlsboot_harness::faultproxy::Faults;

#[tokio::test(flavor = "multi_thread")]
async fn errors_and_throttling_during_a_join() {
    let faults = Faults {
        error_500: 0.2,
        error_429: 0.1 / 0.8,
        retry_after_secs: 1,
        random_exempt: vec!["/leases/".into()],
        ..Faults::default()
    };
    // Readiness needs the initial lists, themselves subject to the errors.
    let Some((cp, _proxy, handle, d)) =
        one_daemon_behind_proxy(faults, "fault-errors", &[], Duration::from_secs(90)).await
    else {
        return;
    };

    let n = nodes(60);
    let (_token, boot) = bootstrap_token(cp).await;
    let (joined, invalid, wall) = join_with_invalid(cp, &boot, "err", n, 5, || d.logs()).await;
    assert_running(&d);
    // Give a slow invalid CSR time to be (wrongly) approved before checking.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let tally = assert_joins_exactly_once(cp, &handle, &joined, &invalid, &d).await;
    let s = handle.stats();
    let took: Vec<Duration> = joined.iter().map(|j| j.took).collect();
    figure("errors", "nodes", joined.len());
    figure("errors", "requests", s.requests);
    figure("errors", "injected_500", s.injected_500);
    figure("errors", "injected_429", s.injected_429);
    figure("errors", "join_wall_s", secs(wall));
    figure(
        "errors",
        "join_p50_s",
        format!("{:.2}", percentile(took.clone(), 0.5).as_secs_f64()),
    );
    figure(
        "errors",
        "join_p99_s",
        format!("{:.2}", percentile(took, 0.99).as_secs_f64()),
    );
    figure_tally("errors", &tally, &[&d], &[]);
    assert!(
        s.injected_500 > 0 && s.injected_429 > 0,
        "faults were injected: {s:?}"
    );
}
