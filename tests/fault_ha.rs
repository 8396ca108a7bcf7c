//! Reliability on the production topology of a hard-way cluster: three etcd members and
//! two kube-apiservers (active/active) behind a TCP load balancer on loopback, and
//! tlsboot with two replicas (leader election on). The daemons reach the load balancer
//! through the fault proxy, which only records their writes here.
//!
//! 1. During a burst of joining nodes (`TLSBOOT_FAULT_NODES`, default 1,000, spread
//!    over 45 s): one kube-apiserver is killed, then the etcd member that leads the
//!    Raft group (the other two keep quorum), then both are restarted. Every valid CSR
//!    is approved exactly once, no invalid one gets an approval request, and the leader
//!    keeps its lease (or hands it over cleanly: fail-stop, then the standby).
//! 2. The partition: each replica reaches one kube-apiserver only. The leader's server
//!    hangs (SIGSTOP: connections are accepted, nothing answers) while the standby's
//!    server lives. The leader's fence must stop its writes before its lease can expire,
//!    the standby takes over, and when the hung server wakes up nothing is approved twice.
//!
//! The two scenarios run one after the other (each has its own control plane: five
//! servers and two daemons are plenty for two cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;
mod fault_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use controller_support::*;
use fault_support::*;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tlsboot_harness::faultproxy::{FaultHandle, FaultProxy, Faults, WriteRecord};
use tlsboot_harness::{Component, ControlPlane, Options, binaries_for_tests};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The daemon's renew deadline (its default) and how long a write fenced just before it
/// may still take to reach the proxy (see fault_partition.rs).
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
const IN_TRANSIT: Duration = Duration::from_millis(250);

/// A control plane of its own in the production topology, or `None` (skip) when the
/// binaries are missing outside CI. Leaked: the tasks of the joining kubelets borrow it
/// for `'static`; its processes die with the test process, and [`ControlPlane::stop_all`]
/// ends them at the end of each test.
async fn ha_control_plane() -> Option<&'static ControlPlane> {
    let bins = binaries_for_tests().expect("the control-plane binaries")?;
    let opts = Options {
        binaries: Some(bins),
        seed_rbac: true,
        etcd_members: 3,
        apiservers: 2,
        timeout: Duration::from_secs(120),
        ..Options::default()
    };
    let cp = ControlPlane::start(opts)
        .await
        .expect("the HA control plane must start");
    eprintln!(
        "HA control plane: 3 etcd members, 2 kube-apiservers behind {} (started in {:.1?})",
        cp.server_url(),
        cp.startup_times().total
    );
    Some(Box::leak(Box::new(cp)))
}

/// Accepted approvals (status 200), when kube-apiserver answered each, in order.
fn accepted_times(handle: &FaultHandle) -> Vec<Instant> {
    let mut t: Vec<Instant> = handle
        .approvals_accepted()
        .values()
        .flatten()
        .map(|w| w.done)
        .collect();
    t.sort();
    t
}

/// The longest time without an accepted approval around `[from, to]`: from the last
/// approval before `from` (or `from`) to the first after `to` (or `to`), over every
/// approval in between.
fn longest_gap(times: &[Instant], from: Instant, to: Instant) -> Duration {
    let before = times
        .iter()
        .rev()
        .find(|t| **t < from)
        .copied()
        .unwrap_or(from);
    let after = times.iter().find(|t| **t > to).copied().unwrap_or(to);
    let mut points = vec![before];
    points.extend(times.iter().copied().filter(|t| *t >= from && *t <= to));
    points.push(after);
    points
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// Invalid CSRs (wrong organization) made while servers come and go: a create that hits
/// a dying server is retried, as a kubelet would.
async fn invalid_csrs(cp: &ControlPlane, boot: &kube::Config, n: usize) -> Vec<String> {
    let client = kube::Client::try_from(boot.clone()).unwrap();
    let mut names = Vec::new();
    for _ in 0..n {
        let name = cp.unique_name("node-csr-invalid");
        let pem = node_client_pem(&cp.unique_name("bad"), "not-system-nodes");
        let mut tries = 0;
        loop {
            tries += 1;
            let obj = create_csr_object(&name, &pem, CLIENT_SIGNER, CLIENT_USAGES);
            let api: kube::Api<CertificateSigningRequest> = kube::Api::all(client.clone());
            match api.create(&kube::api::PostParams::default(), &obj).await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 => break,
                Err(e) => {
                    assert!(tries < 60, "create {name}: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        names.push(name);
    }
    names
}

/// The approval writes of `who` that reached the proxy, accepted or not.
fn approval_requests_of<'a>(
    requests: &'a HashMap<String, Vec<WriteRecord>>,
    who: &'a str,
) -> impl Iterator<Item = &'a WriteRecord> + 'a {
    requests
        .values()
        .flatten()
        .filter(move |w| w.identity == who)
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_survives_losing_an_apiserver_then_the_etcd_leader() {
    let _serial = SERIAL.lock().await;
    let Some(cp) = ha_control_plane().await else {
        return;
    };
    let proxy = FaultProxy::start(cp, Faults::default()).await.unwrap();
    let handle = proxy.handle();
    let (a, b) = two_daemons_via_proxy(cp, &proxy, "ha-a", "ha-b").await;
    let (leader, standby) = leader_and_standby(&a, &b, Duration::from_secs(30));
    let logs = || format!("{}\n---\n{}", a.logs(), b.logs());
    let lb = cp
        .balancer()
        .expect("two kube-apiservers sit behind a balancer");

    let (_token, boot) = bootstrap_token(cp).await;
    let n = nodes(1000);
    let over = Duration::from_secs(45);
    let started = Instant::now();
    let set = spawn_joins_over(cp, &boot, "ha", n, over);
    let mut invalid = invalid_csrs(cp, &boot, 3).await;

    // Phase 1: one kube-apiserver dies; the balancer sends new connections to the other.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    let failovers_before = lb.stats().failovers;
    cp.stop_member(Component::ApiServer, 0);
    let api_killed = Instant::now();
    invalid.extend(invalid_csrs(cp, &boot, 3).await);

    // Phase 2: the etcd member that leads the Raft group dies; two of three keep quorum.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(api_killed.elapsed())).await;
    let etcd_leader = cp.etcd_leader().await.expect("etcd has a leader");
    cp.stop_member(Component::Etcd, etcd_leader);
    let etcd_killed = Instant::now();
    invalid.extend(invalid_csrs(cp, &boot, 3).await);
    let new_etcd_leader = loop {
        match cp.etcd_leader().await {
            Some(l) => break l,
            None => {
                assert!(
                    etcd_killed.elapsed() < Duration::from_secs(60),
                    "the two remaining etcd members elect no leader"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // As seen by polling the members' /metrics (an upper bound on the election).
    let etcd_elected = etcd_killed.elapsed();

    // Phase 3: both come back.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(etcd_killed.elapsed())).await;
    let restarting = Instant::now();
    cp.start_member(Component::Etcd, etcd_leader).await.unwrap();
    cp.start_member(Component::ApiServer, 0).await.unwrap();
    let restarted = Instant::now();
    let failovers_in_outage = lb.stats().failovers - failovers_before;

    let joined = collect(set, logs).await;
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();
    invalid.extend(invalid_csrs(cp, &boot, 3).await);
    // Time for the daemon to decide the last invalid CSRs (and, wrongly, to try to
    // approve one).
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The faults fired: the balancer met the dead server, and etcd changed leaders.
    assert!(
        failovers_in_outage > 0,
        "no connection met the dead kube-apiserver: {:?}",
        lb.stats()
    );
    assert_ne!(new_etcd_leader, etcd_leader, "the dead member cannot lead");

    // The lease: kept by the leader, or handed over cleanly (fail-stop, then the standby).
    let approvals = handle.approvals_accepted();
    let by_leader = approval_times(&approvals, &leader.name);
    let by_standby = approval_times(&approvals, &standby.name);
    let handed_over = !by_standby.is_empty();
    let mut fail_stops = Vec::new();
    if handed_over {
        let status = leader
            .child
            .exited()
            .expect("the standby approved, so the leader must have stopped");
        assert!(!status.success(), "a lost lease exits non-zero: {status}");
        assert!(
            leader.logs().contains("leadership lost"),
            "{}",
            leader.logs()
        );
        if let (Some(old_last), Some(new_first)) = (by_leader.last(), by_standby.first()) {
            assert!(old_last < new_first, "two leaders wrote at once");
        }
        fail_stops.push(leader);
    } else {
        assert_running(leader);
        assert!(leader.is_leader(), "the leader kept its lease: {}", logs());
    }
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;

    let times = accepted_times(&handle);
    let scenario = "ha-burst";
    figure(scenario, "nodes", joined.len());
    figure(scenario, "etcd_members", cp.members(Component::Etcd));
    figure(scenario, "apiservers", cp.members(Component::ApiServer));
    figure(
        scenario,
        "lease",
        if handed_over { "handed-over" } else { "kept" },
    );
    figure(
        scenario,
        "gap_before_faults_s",
        secs(longest_gap(
            &times,
            started + Duration::from_secs(2),
            api_killed,
        )),
    );
    figure(
        scenario,
        "gap_apiserver_down_s",
        secs(longest_gap(&times, api_killed, etcd_killed)),
    );
    figure(
        scenario,
        "gap_etcd_leader_down_s",
        secs(longest_gap(&times, etcd_killed, restarting)),
    );
    figure(
        scenario,
        "gap_restart_s",
        secs(longest_gap(
            &times,
            restarting,
            restarted + Duration::from_secs(5),
        )),
    );
    figure(scenario, "etcd_new_leader_seen_after_s", secs(etcd_elected));
    figure(scenario, "lb_failovers", failovers_in_outage);
    // Approval PUTs that met a fault on their way (the dead server, etcd without a
    // leader): 5xx or no answer. Whether one does is up to timing; each is retried.
    figure(
        scenario,
        "approval_puts_failed",
        handle
            .approval_requests()
            .values()
            .flatten()
            .filter(|w| w.status == 0 || w.status >= 500)
            .count(),
    );
    figure(scenario, "approvals_leader", by_leader.len());
    figure(scenario, "approvals_standby", by_standby.len());
    figure(
        scenario,
        "p99_join_s",
        secs(percentile(joined.iter().map(|j| j.took).collect(), 0.99)),
    );
    figure_tally(scenario, &tally, &[&a, &b], &fail_stops);
    drop(proxy);
    cp.stop_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn partition_leader_reaches_only_a_hung_apiserver() {
    let _serial = SERIAL.lock().await;
    let Some(cp) = ha_control_plane().await else {
        return;
    };
    // Each replica reaches one kube-apiserver only, and the standby's is the live one
    // whichever replica leads: the hang is decided once the leader is known.
    let routes = vec![
        ("hap-a".to_string(), cp.apiserver_url(0)),
        ("hap-b".to_string(), cp.apiserver_url(1)),
    ];
    let proxy = FaultProxy::start(
        cp,
        Faults {
            routes: routes.clone(),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let handle = proxy.handle();
    let (a, b) = two_daemons_via_proxy(cp, &proxy, "hap-a", "hap-b").await;
    let (leader, standby) = leader_and_standby(&a, &b, Duration::from_secs(30));
    let logs = || format!("{}\n---\n{}", a.logs(), b.logs());
    let hung = usize::from(leader.name == "hap-b");
    let live = 1 - hung;

    // The kubelets reach the live server directly: the hang is the leader's alone.
    let (_token, mut boot) = bootstrap_token(cp).await;
    boot.cluster_url = cp.apiserver_url(live).parse().unwrap();
    let n = nodes(120);
    let set = spawn_joins_over(cp, &boot, "hap", n, Duration::from_secs(40));
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The hang catches an approval on its way: the proxy holds approval writes for 2 s
    // before forwarding, and the server freezes once one of the leader's is held. It
    // then reaches the frozen server and waits there until the server wakes up.
    handle.set(|f| f.approval_latency = Duration::from_secs(2));
    let caught = Instant::now();
    while !approval_requests_of(&handle.approval_requests(), &leader.name)
        .any(WriteRecord::in_flight)
    {
        assert!(
            caught.elapsed() < Duration::from_secs(30),
            "no approval of the leader reached the proxy:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cp.pause_member(Component::ApiServer, hung);
    let hung_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    handle.set(|f| f.approval_latency = Duration::ZERO);
    let mut invalid = invalid_csrs(cp, &boot, 3).await;

    // The standby must take over while the leader's server still hangs.
    let took_over = loop {
        if standby.is_leader() {
            break hung_at.elapsed();
        }
        assert!(
            hung_at.elapsed() < Duration::from_secs(90),
            "the standby never took over:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Some approvals by the new leader, then the hung server wakes up: whatever the old
    // leader had sent it before its fence is executed now, against newer objects.
    let joined = collect(set, logs).await;
    invalid.extend(invalid_csrs(cp, &boot, 3).await);
    cp.resume_member(Component::ApiServer, hung);
    let resumed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();

    let writes = handle.writes();
    let last_renew = writes
        .iter()
        .filter(|w| w.identity == leader.name && w.path.contains("/leases/") && w.status == 200)
        .map(|w| w.at)
        .filter(|t| *t < hung_at)
        .max()
        .expect("the leader renewed before the hang");
    let fence = last_renew + RENEW_DEADLINE;
    let requests = handle.approval_requests();
    let late: Vec<&WriteRecord> = approval_requests_of(&requests, &leader.name)
        .filter(|w| w.at > fence + IN_TRANSIT)
        .collect();
    assert!(
        late.is_empty(),
        "the old leader sent approvals after its renew deadline: {late:?}\n{}",
        leader.logs()
    );
    // Writes the old leader sent before the fence and the hang caught (answered, or
    // abandoned by their client, only after it): the hung server executes them on waking,
    // with a stale resourceVersion wherever the new leader already wrote.
    let held: Vec<&WriteRecord> = approval_requests_of(&requests, &leader.name)
        .filter(|w| w.done > hung_at || w.in_flight())
        .collect();
    assert!(
        !held.is_empty(),
        "no approval of the old leader was caught by the hang"
    );
    // None of them may have been accepted: each CSR was approved by the new leader.
    assert!(
        held.iter().all(|w| w.status != 200),
        "a write held by the hung server was accepted: {held:?}"
    );
    let approvals = handle.approvals_accepted();
    let old = approval_times(&approvals, &leader.name);
    let new = approval_times(&approvals, &standby.name);
    let new_first = *new.first().expect("the standby approved after taking over");
    assert!(
        old.iter().all(|t| *t < new_first),
        "an approval of the old leader reached the proxy after the new leader's first"
    );
    let status = leader
        .child
        .exited()
        .expect("the cut-off leader fail-stops");
    assert!(
        !status.success(),
        "lost leadership exits non-zero: {status}"
    );
    assert_running(standby);
    let tally = assert_exactly_once(cp, &handle, &valid, &invalid).await;

    let scenario = "ha-partition";
    figure(scenario, "nodes", joined.len());
    figure(
        scenario,
        "hang_to_old_leader_last_write_s",
        secs(
            old.last()
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(hung_at)),
        ),
    );
    figure(scenario, "hang_to_standby_leads_s", secs(took_over));
    figure(
        scenario,
        "hang_to_first_new_write_s",
        secs(new_first.saturating_duration_since(hung_at)),
    );
    figure(
        scenario,
        "old_leader_writes_held_by_hung_server",
        held.len(),
    );
    figure(
        scenario,
        "held_write_answers",
        format!("{:?}", held.iter().map(|w| w.status).collect::<Vec<_>>()),
    );
    figure(
        scenario,
        "hung_for_s",
        secs(resumed_at.saturating_duration_since(hung_at)),
    );
    figure(scenario, "approvals_old_leader", old.len());
    figure(scenario, "approvals_new_leader", new.len());
    figure_tally(scenario, &tally, &[&a, &b], &[leader]);
    drop(proxy);
    cp.stop_all();
}
