//! Shared by the reliability suite (`tests/fault_*.rs`): the real daemon behind the
//! fault proxy, simulated kubelets joining directly against kube-apiserver, and the
//! assertions every scenario makes (each valid CSR approved exactly once, no invalid
//! one approved, nobody crashed).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::controller_support::*;
use tlsboot_harness::faultproxy::{FaultHandle, FaultProxy, Faults, kubeconfig_token};
use tlsboot_harness::{BootstrapToken, ControlPlane, KubeletOptions, SimKubelet, Stage};

/// Nodes per scenario: small for CI, `TLSBOOT_FAULT_NODES=500` for the long variant.
pub fn nodes(default: usize) -> usize {
    std::env::var("TLSBOOT_FAULT_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One line per measured figure, grep-able from the test output (`--nocapture`).
pub fn figure(scenario: &str, key: &str, value: impl std::fmt::Display) {
    eprintln!("FIGURE {scenario} {key}={value}");
}

/// One decimal of seconds, as the figures give durations.
pub fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

/// The figures every scenario ends with: CSRs lost, approved twice, and daemon crashes.
pub fn figure_tally(scenario: &str, lost: usize, duplicates: usize) {
    figure(scenario, "lost", lost);
    figure(scenario, "duplicates", duplicates);
    figure(scenario, "crashes", 0);
}

/// The shared control plane (`None`: skip, as [`control_plane`]) with a fault proxy
/// injecting `faults` in front of its kube-apiserver. Keep the proxy bound: dropping it
/// stops it.
pub async fn behind_proxy(
    faults: Faults,
) -> Option<(&'static ControlPlane, FaultProxy, FaultHandle)> {
    let cp = control_plane().await?;
    let proxy = FaultProxy::start(cp, faults).await.unwrap();
    let handle = proxy.handle();
    Some((cp, proxy, handle))
}

/// [`behind_proxy`] plus one daemon `name` (flags `extra`) through the proxy, ready
/// within `ready`.
pub async fn one_daemon_behind_proxy(
    faults: Faults,
    name: &str,
    extra: &[&str],
    ready: Duration,
) -> Option<(&'static ControlPlane, FaultProxy, FaultHandle, Daemon)> {
    let (cp, proxy, handle) = behind_proxy(faults).await?;
    let d = daemon_via_proxy(cp, &proxy, name, extra).await;
    d.wait_ready(ready);
    Some((cp, proxy, handle, d))
}

/// Two replicas `a` and `b` through `proxy`, both started, then both ready.
pub async fn two_daemons_via_proxy(
    cp: &ControlPlane,
    proxy: &FaultProxy,
    a: &str,
    b: &str,
) -> (Daemon, Daemon) {
    let a = daemon_via_proxy(cp, proxy, a, &[]).await;
    let b = daemon_via_proxy(cp, proxy, b, &[]).await;
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));
    (a, b)
}

/// A fresh ServiceAccount token for the daemon (each call mints a distinct token,
/// so two replicas can be told apart by the proxy), and a kubeconfig through `proxy`.
pub async fn daemon_via_proxy(
    cp: &ControlPlane,
    proxy: &FaultProxy,
    name: &str,
    extra: &[&str],
) -> Daemon {
    let sa = daemon_identity(cp).await;
    let token = kubeconfig_token(sa.path()).unwrap();
    let path: PathBuf = cp.dir().join(format!("{name}-via-proxy.kubeconfig"));
    let kc = proxy.kubeconfig(&path, name, &token).await.unwrap();
    let d = Daemon::start(cp, kc.path(), name, extra);
    // The kubeconfig file must outlive the daemon.
    std::mem::forget(kc);
    d
}

pub async fn bootstrap_token(cp: &ControlPlane) -> (BootstrapToken, kube::Config) {
    let (token, boot) = bootstrap(cp).await;
    let config = boot.config();
    std::mem::forget(boot);
    (token, config)
}

/// A node that joined: its client CSR and how long the join took.
#[derive(Debug, Clone)]
pub struct Joined {
    pub node: String,
    pub csr: String,
    pub took: Duration,
}

/// Starts `n` simulated kubelets at once (straight to kube-apiserver, not through the
/// proxy) that stop once their client certificate is issued.
pub fn spawn_joins(
    cp: &'static ControlPlane,
    boot: &kube::Config,
    prefix: &str,
    n: usize,
) -> tokio::task::JoinSet<Result<Joined, String>> {
    spawn_joins_over(cp, boot, prefix, n, Duration::ZERO)
}

/// Like [`spawn_joins`], the starts spread evenly over `over`, so CSRs keep arriving
/// while faults come and go.
pub fn spawn_joins_over(
    cp: &'static ControlPlane,
    boot: &kube::Config,
    prefix: &str,
    n: usize,
    over: Duration,
) -> tokio::task::JoinSet<Result<Joined, String>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let delay = over.mul_f64(i as f64 / n.max(1) as f64);
        let mut opts = KubeletOptions::new(cp.unique_name(&format!("{prefix}-{i}")));
        opts.stop_after = Stage::ClientCertIssued;
        opts.certificate_timeout = Duration::from_secs(120);
        let boot = boot.clone();
        set.spawn(async move {
            tokio::time::sleep(delay).await;
            let node = opts.node_name.clone();
            let start = Instant::now();
            let mut k = SimKubelet::new(boot, opts).map_err(|e| format!("{node}: {e}"))?;
            let report = k.run().await.map_err(|e| format!("{node}: {e}"))?;
            Ok(Joined {
                node,
                csr: report.client_csr.unwrap_or_default(),
                took: start.elapsed(),
            })
        });
    }
    set
}

/// `n` kubelets (`prefix`) joining at once while `invalid` invalid CSRs are made:
/// (the nodes that joined, the invalid CSRs' names, how long the joins took in all).
pub async fn join_with_invalid(
    cp: &'static ControlPlane,
    boot: &kube::Config,
    prefix: &str,
    n: usize,
    invalid: usize,
    logs: impl Fn() -> String,
) -> (Vec<Joined>, Vec<String>, Duration) {
    let started = Instant::now();
    let set = spawn_joins(cp, boot, prefix, n);
    let invalid = create_invalid(cp, boot, invalid).await;
    let joined = collect(set, logs).await;
    (joined, invalid, started.elapsed())
}

pub async fn collect(
    mut set: tokio::task::JoinSet<Result<Joined, String>>,
    logs: impl Fn() -> String,
) -> Vec<Joined> {
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(j) => out.push(j),
            Err(e) => panic!("a kubelet failed to join: {e}\ndaemon logs:\n{}", logs()),
        }
    }
    out
}

pub fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// CSRs with invalid content (wrong organization) from the bootstrap identity:
/// the daemon must never approve them.
pub async fn create_invalid(cp: &ControlPlane, boot: &kube::Config, n: usize) -> Vec<String> {
    let client = kube::Client::try_from(boot.clone()).unwrap();
    let mut names = Vec::new();
    for _ in 0..n {
        let name = cp.unique_name("node-csr-invalid");
        let node = cp.unique_name("bad");
        let pem = node_client_pem(&node, "not-system-nodes");
        create_client_csr(client.clone(), &name, &pem).await;
        names.push(name);
    }
    names
}

/// The promises every scenario checks: each valid CSR carries exactly one condition,
/// Approved; kube-apiserver accepted exactly one approval write for it (counted at the
/// proxy, so a duplicate write that the API server merged would still show); no
/// invalid CSR has a condition or an accepted approval.
pub async fn assert_exactly_once(
    cp: &ControlPlane,
    accepted: &HashMap<String, Vec<tlsboot_harness::faultproxy::WriteRecord>>,
    valid: &[String],
    invalid: &[String],
) -> (usize, usize) {
    let mut lost = 0;
    let mut duplicates = 0;
    for name in valid {
        let csr = get_csr(cp, name).await;
        let conds = conditions(&csr);
        if !(conds.len() == 1 && conds[0].0 == "Approved") {
            lost += 1;
            eprintln!("CSR {name}: conditions {conds:?}");
        }
        let writes = accepted.get(name).map_or(0, Vec::len);
        if writes != 1 {
            duplicates += usize::from(writes > 1);
            eprintln!("CSR {name}: {writes} accepted approval writes");
        }
    }
    for name in invalid {
        let csr = get_csr(cp, name).await;
        assert!(
            conditions(&csr).is_empty(),
            "invalid CSR {name} got {:?}",
            conditions(&csr)
        );
        assert!(
            !accepted.contains_key(name),
            "invalid CSR {name} was approved"
        );
    }
    assert_eq!(lost, 0, "valid CSRs not approved exactly once");
    assert_eq!(duplicates, 0, "CSRs approved more than once");
    (lost, duplicates)
}

/// [`assert_exactly_once`] for the CSRs of `joined` and `invalid`, by the approvals
/// `handle` saw accepted; then `d` must still be running.
pub async fn assert_joins_exactly_once(
    cp: &ControlPlane,
    handle: &FaultHandle,
    joined: &[Joined],
    invalid: &[String],
    d: &Daemon,
) -> (usize, usize) {
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();
    let tally = assert_exactly_once(cp, &handle.approvals_accepted(), &valid, invalid).await;
    assert_running(d);
    tally
}

/// When the accepted approvals among `approvals` written by `who` reached the proxy, in order.
pub fn approval_times(
    approvals: &HashMap<String, Vec<tlsboot_harness::faultproxy::WriteRecord>>,
    who: &str,
) -> Vec<Instant> {
    let mut v: Vec<Instant> = approvals
        .values()
        .flatten()
        .filter(|w| w.identity == who)
        .map(|w| w.at)
        .collect();
    v.sort();
    v
}

pub fn assert_running(d: &Daemon) {
    if let Some(status) = d.child.exited() {
        panic!("daemon {} exited ({status}):\n{}", d.name, d.logs());
    }
}

/// Resident set size of a process, from /proc (kB).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Log lines of the daemon at WARN or ERROR, for the report.
pub fn problem_lines(d: &Daemon) -> Vec<String> {
    std::fs::read_to_string(d.child.log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains("\"level\":\"WARN\""))
        .map(str::to_owned)
        .collect()
}
