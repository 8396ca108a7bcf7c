//! Shared by the reliability suite (`tests/fault_*.rs`): the real daemon behind the
//! fault proxy, simulated kubelets joining directly against kube-apiserver, and the
//! assertions every scenario makes (each valid CSR approved by exactly one accepted
//! write, no approval request at all for an invalid one, no daemon crashed).
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

/// The figures every scenario ends with, each counted, then asserted zero: valid CSRs
/// lost, approved by more than one accepted write, or approved without one; invalid CSRs
/// the daemon tried to approve; daemon crashes ([`crashes`]) among `daemons`, of which
/// `fail_stops` were expected to exit on their own (a fail-stop, asserted by the test).
pub fn figure_tally(scenario: &str, tally: &Tally, daemons: &[&Daemon], fail_stops: &[&Daemon]) {
    let crashed: Vec<String> = daemons
        .iter()
        .flat_map(|d| crashes(d, fail_stops.iter().any(|f| f.name == d.name)))
        .collect();
    figure(scenario, "valid_csrs", tally.valid);
    figure(scenario, "lost", tally.lost);
    figure(scenario, "duplicates", tally.duplicates);
    figure(
        scenario,
        "approved_without_accepted_write",
        tally.unaccounted,
    );
    figure(scenario, "invalid_csrs", tally.invalid);
    figure(
        scenario,
        "invalid_approval_requests",
        tally.invalid_requests,
    );
    figure(scenario, "crashes", crashed.len());
    assert!(tally.problems.is_empty(), "{tally:#?}");
    assert!(
        crashed.is_empty(),
        "daemon crashes:\n{}",
        crashed.join("\n")
    );
}

/// The crashes of `d` seen so far, one line each: every panic in its log (a panicking
/// task can leave the process running), and an exit nobody asked for. With
/// `fail_stop_expected`, an exit with an exit code (not by a signal) is not a crash.
pub fn crashes(d: &Daemon, fail_stop_expected: bool) -> Vec<String> {
    let log = std::fs::read_to_string(d.child.log_path()).unwrap_or_default();
    let mut out: Vec<String> = log
        .lines()
        .filter(|l| l.contains("panicked at"))
        .map(|l| format!("{}: {l}", d.name))
        .collect();
    if let Some(status) = d.child.exited_unasked()
        && !(fail_stop_expected && status.code().is_some())
    {
        out.push(format!("{}: exited on its own ({status})", d.name));
    }
    out
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

/// What [`exactly_once`] found.
#[derive(Debug, Default)]
pub struct Tally {
    pub valid: usize,
    /// Valid CSRs that do not carry exactly one condition, Approved.
    pub lost: usize,
    /// Valid CSRs with more than one approval write accepted by kube-apiserver.
    pub duplicates: usize,
    /// Valid CSRs approved without any approval write accepted through the proxy: someone
    /// else approved them, or the count is blind to a write.
    pub unaccounted: usize,
    pub invalid: usize,
    /// Approval requests for invalid CSRs, whatever their answer (accepted, refused, an
    /// injected fault, or none).
    pub invalid_requests: usize,
    /// One line per CSR that broke a promise.
    pub problems: Vec<String>,
}

/// The promises every scenario checks, counted: each valid CSR carries exactly one
/// condition, Approved, and kube-apiserver accepted exactly one approval write for it
/// (counted at the proxy, so a duplicate write that the API server merged would still
/// show); no invalid CSR has a condition, and none got an approval request at all —
/// a request the proxy answered with an injected 409 or 500 counts too.
pub async fn exactly_once(
    cp: &ControlPlane,
    handle: &FaultHandle,
    valid: &[String],
    invalid: &[String],
) -> Tally {
    let requests = handle.approval_requests();
    let answers = |name: &str| -> Vec<String> {
        requests
            .get(name)
            .map(|v| {
                v.iter()
                    .map(|w| {
                        let by = if w.injected { "proxy" } else { "upstream" };
                        format!("{} {} ({by})", w.identity, w.status)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut t = Tally {
        valid: valid.len(),
        invalid: invalid.len(),
        ..Tally::default()
    };
    for name in valid {
        let conds = conditions(&get_csr(cp, name).await);
        if !(conds.len() == 1 && conds[0].0 == "Approved") {
            t.lost += 1;
            t.problems
                .push(format!("valid CSR {name}: conditions {conds:?}"));
        }
        let accepted = requests
            .get(name)
            .map_or(0, |v| v.iter().filter(|w| w.status == 200).count());
        match accepted {
            1 => {}
            0 => t.unaccounted += 1,
            _ => t.duplicates += 1,
        }
        if accepted != 1 {
            t.problems.push(format!(
                "valid CSR {name}: {accepted} accepted approval writes; requests {:?}",
                answers(name)
            ));
        }
    }
    for name in invalid {
        let conds = conditions(&get_csr(cp, name).await);
        if !conds.is_empty() {
            t.problems
                .push(format!("invalid CSR {name}: conditions {conds:?}"));
        }
        let tried = answers(name);
        if !tried.is_empty() {
            t.invalid_requests += tried.len();
            t.problems
                .push(format!("invalid CSR {name}: approval requests {tried:?}"));
        }
    }
    t
}

/// [`exactly_once`], every promise asserted.
pub async fn assert_exactly_once(
    cp: &ControlPlane,
    handle: &FaultHandle,
    valid: &[String],
    invalid: &[String],
) -> Tally {
    let t = exactly_once(cp, handle, valid, invalid).await;
    assert!(t.problems.is_empty(), "not exactly once: {t:#?}");
    t
}

/// [`assert_exactly_once`] for the CSRs of `joined` and `invalid`; then `d` must still be
/// running.
pub async fn assert_joins_exactly_once(
    cp: &ControlPlane,
    handle: &FaultHandle,
    joined: &[Joined],
    invalid: &[String],
    d: &Daemon,
) -> Tally {
    let valid: Vec<String> = joined.iter().map(|j| j.csr.clone()).collect();
    let tally = assert_exactly_once(cp, handle, &valid, invalid).await;
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
