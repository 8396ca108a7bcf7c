//! Reliability: the real kube-apiserver is SIGKILLed and restarted after an outage
//! (default 20 s, `TLSBOOT_FAULT_OUTAGE_SECS`), then etcd likewise (half as long),
//! while nodes keep trying to join. The daemon recovers on its own — no restart —
//! and every CSR made during or after the outage is approved exactly once.
//!
//! The daemon runs with `--leader-elect=false` here: a leader that cannot renew its
//! Lease for the renew deadline (10 s) fail-stops by design (fault_partition.rs),
//! so only a single replica without election can be expected to ride out a 20 s outage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use tlsboot_harness::Component;
use tlsboot_harness::faultproxy::{FaultHandle, Faults, WriteRecord};

fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("TLSBOOT_FAULT_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    )
}

/// First and last accepted approval among `names`, by when kube-apiserver answered.
fn approvals_of(handle: &FaultHandle, names: &[String]) -> (Instant, Instant) {
    let approvals = handle.approvals_accepted();
    let mut t: Vec<Instant> = names
        .iter()
        .filter_map(|n| approvals.get(n))
        .flatten()
        .map(|w| w.done)
        .collect();
    t.sort();
    (*t.first().expect("approved"), *t.last().expect("approved"))
}

/// Waits until an approval PUT for one of `names` has reached the proxy and is not
/// answered yet.
async fn wait_approval_in_flight(handle: &FaultHandle, names: &[String]) {
    let start = Instant::now();
    loop {
        let requests = handle.approval_requests();
        let in_flight = names
            .iter()
            .filter_map(|n| requests.get(n))
            .flatten()
            .any(WriteRecord::in_flight);
        if in_flight {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no approval of {names:?} reached the proxy: {requests:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apiserver_and_etcd_killed_and_restarted() {
    let Some((cp, _proxy, handle, d)) = one_daemon_behind_proxy(
        Faults::default(),
        "fault-restart",
        &["--leader-elect=false"],
        Duration::from_secs(60),
    )
    .await
    else {
        return;
    };
    let (token, boot) = bootstrap_token(cp).await;
    let n = nodes(45);
    let third = (n / 3).max(1);
    let mut valid = Vec::new();

    let wave = collect(spawn_joins(cp, &boot, "before", third), || d.logs()).await;
    valid.extend(wave.into_iter().map(|j| j.csr));

    let client = kube::Client::try_from(boot.clone()).unwrap();
    for (component, pause) in [
        (Component::ApiServer, outage()),
        (Component::Etcd, outage() / 2),
    ] {
        let label = component.name();
        // CSRs pending at the moment of the kill: the proxy holds each request of the
        // daemon for 3 s, and the kill comes as soon as an approval PUT of one of them
        // has reached the proxy: it is in flight when the component dies.
        handle.set(|f| f.latency = Duration::from_secs(3));
        let mut pending = Vec::new();
        for _ in 0..third {
            let name = cp.unique_name(&format!("node-csr-{label}"));
            let pem = node_client_pem(&cp.unique_name(label), "system:nodes");
            create_client_csr(client.clone(), &name, &pem).await;
            pending.push(name);
        }
        wait_approval_in_flight(&handle, &pending).await;
        // The others arrive within milliseconds; the proxy still holds them all.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let errors_before = handle.stats().upstream_errors;
        cp.stop(component);
        let killed = Instant::now();
        tokio::time::sleep(pause).await;
        let restarting = Instant::now();
        let errors_in_outage = handle.stats().upstream_errors - errors_before;
        cp.start_component(component).await.unwrap();
        cp.wait_ready().await.unwrap();
        let ready = Instant::now();
        handle.set(|f| f.latency = Duration::ZERO);
        // The kill must have hit work: approval PUTs of the pending CSRs that reached the
        // proxy before the kill and were answered (or abandoned) after it, or are still
        // waiting.
        let requests = handle.approval_requests();
        let open_at = |w: &WriteRecord, t: Instant| w.in_flight() || w.done >= t;
        let in_flight: Vec<_> = pending
            .iter()
            .filter_map(|n| requests.get(n))
            .flatten()
            .filter(|w| w.at <= killed && open_at(w, killed))
            .collect();
        figure(
            "restart",
            &format!("{label}_approvals_in_flight_at_kill"),
            in_flight.len(),
        );
        figure(
            "restart",
            &format!("{label}_upstream_errors_in_outage"),
            errors_in_outage,
        );
        assert!(
            !in_flight.is_empty(),
            "no approval request was in flight when {label} was killed: {requests:?}"
        );
        match component {
            // Whatever reached the proxy during the outage found no kube-apiserver.
            Component::ApiServer => assert!(
                errors_in_outage > 0,
                "kube-apiserver was down for {pause:?} and no request failed to reach it"
            ),
            // kube-apiserver stays up and holds the writes until etcd is back: one of
            // the approvals in flight at the kill was answered only after the restart.
            _ => assert!(
                in_flight.iter().any(|w| open_at(w, restarting)),
                "no approval in flight at the etcd kill waited for etcd: {in_flight:?}"
            ),
        }
        figure(
            "restart",
            &format!("{label}_down_s"),
            secs(restarting - killed),
        );
        figure(
            "restart",
            &format!("{label}_restart_to_ready_s"),
            secs(ready - restarting),
        );
        for name in &pending {
            wait_csr(
                cp,
                name,
                Duration::from_secs(90),
                || d.logs(),
                |c| approved_with(c, NODECLIENT_MSG),
            )
            .await;
        }
        // Measured from the restart, not from "ready": the daemon may well get through
        // before the test's own readiness probe does.
        let (first, last) = approvals_of(&handle, &pending);
        figure(
            "restart",
            &format!("{label}_restart_to_first_approval_s"),
            secs(first.saturating_duration_since(restarting)),
        );
        figure(
            "restart",
            &format!("{label}_restart_to_all_approved_s"),
            secs(last.saturating_duration_since(restarting)),
        );
        assert_running(&d);
        valid.extend(pending);
    }

    // A restarted kube-apiserver refuses bootstrap tokens (401) until its Secret
    // informer has synced; a real kubelet restarts and tries again, SimKubelet does not.
    tlsboot_harness::token::wait_authenticates(&client, &token, Duration::from_secs(30))
        .await
        .unwrap();
    let invalid = create_invalid(cp, &boot, 3).await;
    let wave = collect(spawn_joins(cp, &boot, "after", third), || d.logs()).await;
    valid.extend(wave.into_iter().map(|j| j.csr));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;
    assert_running(&d);
    assert!(matches!(d.get("/readyz"), Some((200, _))), "ready again");
    let s = handle.stats();
    figure("restart", "nodes", valid.len());
    figure("restart", "upstream_errors_seen", s.upstream_errors);
    figure_tally("restart", &tally, &[&d], &[]);

    // A single replica (no elector) must not wait for a lease task that does not exist.
    let termed = Instant::now();
    tokio::task::block_in_place(|| d.child.terminate(Duration::from_secs(15)));
    let took = termed.elapsed();
    let status = d.child.exited().expect("exited after SIGTERM");
    assert!(status.success(), "SIGTERM exits 0: {status}\n{}", d.logs());
    // How long is a figure, not an assertion (the machine's load decides it): a replica that
    // waited for the missing elector would show the 5 s wait here.
    figure("restart", "sigterm_exit_ms", took.as_millis());
}
