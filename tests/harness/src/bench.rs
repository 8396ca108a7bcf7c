//! `tlsboot-harness bench`: a cold-start load benchmark (issue 7). One control plane; per phase a
//! fresh burst of N kubelet client CSRs and exactly one approver: a null approver (the ceiling),
//! the real `tlsboot controller` release binary (defaults, then KCM's client limits), and
//! kube-controller-manager's own `csrapproving` at its defaults. Prints a table and one JSON line.
//!
//! The kubelets only create their CSRs; one admin watch observes approval and issuance for all of
//! them. N per-kubelet watches (what a real kubelet holds) would load the 2-core control plane
//! with work no approver causes, and the approver, not the kubelets, is what is measured.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde_json::json;
use tlsboot_harness::{ChildProcess, Component, ControlPlane, KubeletOptions, Options, SimKubelet};

const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// In-process null approver: watch + PUT /approval, no checks, no SAR.
    Ceiling,
    /// `tlsboot controller` at its defaults.
    Tlsboot,
    /// `tlsboot controller --kube-api-qps 20 --kube-api-burst 30` (KCM's client limits).
    TlsbootQps,
    /// kube-controller-manager `csrapproving` at its defaults.
    Kcm,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Ceiling => "ceiling",
            Phase::Tlsboot => "tlsboot",
            Phase::TlsbootQps => "tlsboot-qps20",
            Phase::Kcm => "kcm",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Kubelets per phase (ceiling and tlsboot phases).
    #[arg(short = 'n', long, default_value_t = 5000)]
    nodes: usize,
    /// Kubelets in the KCM and tlsboot-qps phases (~10-20 CSRs/s at 20 QPS: rates are
    /// compared, not totals).
    #[arg(long, default_value_t = 300)]
    kcm_nodes: usize,
    /// Kubelets creating their CSR at the same time.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// How many times each phase runs (fresh CSRs each time); ratios use the medians.
    #[arg(long, default_value_t = 1)]
    repetitions: usize,
    /// Phases to run, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceiling,tlsboot,tlsboot-qps,kcm"
    )]
    phases: Vec<Phase>,
    /// Workers of the null approver (tlsboot's `--concurrency` default).
    #[arg(long, default_value_t = 32)]
    ceiling_workers: usize,
    /// The tlsboot binary to run; default: `cargo build --release --bin tlsboot`.
    #[arg(long)]
    tlsboot_bin: Option<PathBuf>,
    /// Extra arguments for every `tlsboot controller` phase (e.g. `--concurrency=64`).
    #[arg(long, allow_hyphen_values = true)]
    tlsboot_arg: Vec<String>,
    /// Seconds a phase may take before it counts as failed (0 = 60 s + N/5 s).
    #[arg(long, default_value_t = 0)]
    phase_timeout: u64,
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn build_tlsboot_release() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "tlsboot", "--bin", "tlsboot"])
        .current_dir(&root)
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release of tlsboot failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/tlsboot");
    if !bin.exists() {
        bail!("built tlsboot not found at {}", bin.display());
    }
    Ok(bin)
}

/// CPU seconds (user + system) of a process from /proc/<pid>/stat.
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields restart after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI we run on; sysconf would need unsafe code.
    Some((utime + stime) / 100.0)
}

/// A `/proc/<pid>/status` field in KiB (VmHWM = peak RSS, VmRSS = current).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `apiserver_request_total` samples keyed by (verb, resource, subresource, code).
type ReqCounts = HashMap<(String, String, String, String), f64>;

async fn scrape_requests(client: &kube::Client) -> anyhow::Result<ReqCounts> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let mut out = ReqCounts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let get = |k: &str| {
            labels
                .split("\",")
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix("=\""))
                .map(|s| s.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let key = (
            get("verb"),
            get("resource"),
            get("subresource"),
            get("code"),
        );
        *out.entry(key).or_default() += v;
    }
    Ok(out)
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ApiDelta {
    pub total: f64,
    pub csr_create: f64,
    pub approval_put: f64,
    pub approval_conflicts: f64,
    pub sar_create: f64,
    pub status_put: f64,
    pub csr_read: f64,
    pub events: f64,
    pub throttled_429: f64,
}

fn api_delta(before: &ReqCounts, after: &ReqCounts) -> ApiDelta {
    let mut d = ApiDelta::default();
    for (k, v) in after {
        let dv = v - before.get(k).copied().unwrap_or(0.0);
        if dv <= 0.0 {
            continue;
        }
        let (verb, resource, sub, code) = (k.0.as_str(), k.1.as_str(), k.2.as_str(), k.3.as_str());
        // The scrape itself is a non-resource GET and does not count.
        if resource.is_empty() {
            continue;
        }
        d.total += dv;
        if code == "429" {
            d.throttled_429 += dv;
        }
        match (resource, sub, verb) {
            ("certificatesigningrequests", "", "POST") => d.csr_create += dv,
            ("certificatesigningrequests", "approval", _) => {
                d.approval_put += dv;
                if code == "409" {
                    d.approval_conflicts += dv;
                }
            }
            ("certificatesigningrequests", "status", _) => d.status_put += dv,
            ("certificatesigningrequests", "", "GET" | "LIST" | "WATCH") => d.csr_read += dv,
            ("subjectaccessreviews", _, _) => d.sar_create += dv,
            ("events", _, _) => d.events += dv,
            _ => {}
        }
    }
    d
}

#[derive(Default)]
struct Seen {
    approved: Option<Instant>,
    issued: Option<Instant>,
}

type SeenMap = Arc<Mutex<HashMap<String, Seen>>>;

fn lock(m: &SeenMap) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// One admin watch over all CSRs; records when each was first seen Approved and issued.
async fn observe(api: Api<CertificateSigningRequest>, seen: SeenMap) {
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let ev = match stream.try_next().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "bench observer watch error");
                continue;
            }
        };
        let (watcher::Event::Apply(csr) | watcher::Event::InitApply(csr)) = ev else {
            continue;
        };
        let now = Instant::now();
        let Some(name) = csr.metadata.name.clone() else {
            continue;
        };
        let approved = conditions(&csr).iter().any(|c| c.type_ == "Approved");
        let issued = is_issued(&csr);
        if !approved && !issued {
            continue;
        }
        let mut m = lock(&seen);
        let s = m.entry(name).or_default();
        if approved && s.approved.is_none() {
            s.approved = Some(now);
        }
        if issued && s.issued.is_none() {
            s.issued = Some(now);
        }
    }
}

/// The ceiling: approve every pending kubelet client CSR as fast as the API server takes it.
async fn null_approver(client: kube::Client, workers: usize) {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let sem = Arc::new(tokio::sync::Semaphore::new(workers.max(1)));
    let mut sent: HashSet<String> = HashSet::new();
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let ev = match stream.try_next().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "null approver watch error");
                continue;
            }
        };
        let (watcher::Event::Apply(csr) | watcher::Event::InitApply(csr)) = ev else {
            continue;
        };
        if csr.spec.signer_name != CLIENT_SIGNER || !conditions(&csr).is_empty() {
            continue;
        }
        let Some(name) = csr.metadata.name.clone() else {
            continue;
        };
        if !sent.insert(name.clone()) {
            continue;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else {
            return;
        };
        let api = api.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut current = csr;
            for _ in 0..10 {
                let mut body = current.clone();
                body.status
                    .get_or_insert_with(Default::default)
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .push(CertificateSigningRequestCondition {
                        type_: "Approved".into(),
                        status: "True".into(),
                        reason: Some("BenchNullApprover".into()),
                        message: Some("approved without checks (benchmark ceiling)".into()),
                        ..Default::default()
                    });
                match api
                    .replace_subresource("approval", &name, &PostParams::default(), &body)
                    .await
                {
                    Ok(_) => return,
                    Err(kube::Error::Api(s)) if s.code == 409 => match api.get(&name).await {
                        Ok(fresh) if conditions(&fresh).is_empty() => current = fresh,
                        _ => return,
                    },
                    Err(e) => {
                        tracing::warn!(csr = %name, error = %e, "null approver PUT failed");
                        return;
                    }
                }
            }
        });
    }
}

/// The approver of one phase; dropping it stops it.
enum Approver {
    InProcess(tokio::task::JoinHandle<()>),
    Process(ChildProcess),
}

impl Approver {
    fn pid(&self) -> Option<u32> {
        match self {
            Approver::InProcess(_) => None,
            Approver::Process(p) => Some(p.pid()),
        }
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        if let Approver::Process(p) = self
            && let Some(status) = p.exited()
        {
            bail!("approver exited ({status}):\n{}", p.log_tail(30));
        }
        Ok(())
    }

    fn stop(self) {
        match self {
            Approver::InProcess(h) => h.abort(),
            Approver::Process(p) => p.terminate(Duration::from_secs(5)),
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

struct Env<'a> {
    cp: &'a ControlPlane,
    admin: kube::Client,
    boot_config: kube::Config,
    boot_client: kube::Client,
    tlsboot_bin: Option<PathBuf>,
    args: &'a BenchArgs,
}

fn start_approver(env: &Env<'_>, phase: Phase, run: &str) -> anyhow::Result<Approver> {
    let logs = env.cp.dir().join("logs");
    match phase {
        Phase::Ceiling => {
            let client = env.cp.admin_client()?;
            let workers = env.args.ceiling_workers;
            Ok(Approver::InProcess(tokio::spawn(null_approver(
                client, workers,
            ))))
        }
        Phase::Tlsboot | Phase::TlsbootQps => {
            let bin = env
                .tlsboot_bin
                .as_ref()
                .context("no tlsboot binary for a tlsboot phase")?;
            let mut cmd = Command::new(bin);
            cmd.arg("controller")
                .arg("--kubeconfig")
                .arg(env.cp.kubeconfig_path())
                .arg("--leader-elect=false")
                .arg(format!("--metrics-bind-address=127.0.0.1:{}", free_port()?));
            if phase == Phase::TlsbootQps {
                cmd.args(["--kube-api-qps", "20", "--kube-api-burst", "30"]);
            }
            cmd.args(&env.args.tlsboot_arg);
            let p = ChildProcess::spawn("tlsboot", cmd, &logs.join(format!("{run}.log")))?;
            Ok(Approver::Process(p))
        }
        Phase::Kcm => {
            // The harness's KCM (csrsigning only, raised client limits so signing is never the
            // limit) makes way for one with csrapproving too, at KCM's default client limits.
            env.cp.stop(Component::ControllerManager);
            let bins = env
                .cp
                .options()
                .binaries
                .clone()
                .context("control plane started without explicit binaries")?;
            let pki = env.cp.dir().join("pki");
            let mut cmd = Command::new(&bins.kube_controller_manager);
            cmd.arg(format!(
                "--kubeconfig={}",
                env.cp.kubeconfig_path().display()
            ))
            .arg("--controllers=csrsigning,csrapproving")
            .arg(format!(
                "--cluster-signing-cert-file={}",
                pki.join("ca.crt").display()
            ))
            .arg(format!(
                "--cluster-signing-key-file={}",
                pki.join("ca.key").display()
            ))
            .args([
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--secure-port=0",
                "--v=1",
            ]);
            let p = ChildProcess::spawn(
                "kube-controller-manager",
                cmd,
                &logs.join(format!("{run}.log")),
            )?;
            Ok(Approver::Process(p))
        }
    }
}

/// Creates `n` client CSRs with `concurrency` in flight; returns (name, created-at) per kubelet.
async fn create_csrs(
    env: &Env<'_>,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let results: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(0..n)
        .map(|i| {
            let mut opts = KubeletOptions::new(format!("{prefix}-{i}"));
            opts.certificate_timeout = Duration::from_secs(300);
            let mut k =
                SimKubelet::with_client(env.boot_config.clone(), env.boot_client.clone(), opts);
            async move {
                let name = k.request_client_certificate().await?;
                let at = k.report().client_csr_created.unwrap_or_else(Instant::now);
                Ok((name, at))
            }
        })
        .buffer_unordered(env.args.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Waits until every name is approved and issued (or the deadline passes).
async fn wait_done(
    seen: &SeenMap,
    names: &[(String, Instant)],
    deadline: Instant,
    approver: &Approver,
) -> anyhow::Result<()> {
    loop {
        let missing = {
            let m = lock(seen);
            names
                .iter()
                .filter(|(n, _)| {
                    m.get(n)
                        .is_none_or(|s| s.approved.is_none() || s.issued.is_none())
                })
                .count()
        };
        if missing == 0 {
            return Ok(());
        }
        approver.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "{missing} of {} CSRs not approved and issued in time",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseResult {
    pub phase: &'static str,
    pub repetition: usize,
    pub nodes: usize,
    /// First create → last create answered (how fast the kubelets could file CSRs).
    pub wall_created_s: f64,
    /// First create → last Approved seen.
    pub wall_approved_s: f64,
    /// First create → last certificate seen.
    pub wall_issued_s: f64,
    pub approvals_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// None for the in-process ceiling (it shares the harness process).
    pub cpu_s: Option<f64>,
    pub cpu_ms_per_approval: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub rss_end_mib: Option<f64>,
    /// Approver RSS after its start-up list and one warm-up CSR, before the burst.
    pub rss_idle_mib: Option<f64>,
    /// CSRs stored when the burst is done (earlier phases' CSRs stay).
    pub csrs_in_cluster: usize,
    /// CPU seconds during the burst of the control plane and of this process (kubelets,
    /// observer and, in the ceiling phase, the null approver).
    pub apiserver_cpu_s: Option<f64>,
    pub etcd_cpu_s: Option<f64>,
    /// The harness's KCM (signer only); absent in the KCM phase, whose KCM is the approver.
    pub harness_kcm_cpu_s: Option<f64>,
    pub harness_cpu_s: Option<f64>,
    pub api_requests_per_csr: f64,
    pub approver_requests_per_csr: f64,
    pub api: ApiDelta,
    /// CSRs whose conditions are exactly one Approved.
    pub approved_once: usize,
}

async fn run_phase(
    env: &Env<'_>,
    phase: Phase,
    repetition: usize,
    n: usize,
) -> anyhow::Result<PhaseResult> {
    let run = format!("bench-{}-{repetition}", phase.name());
    let csrs: Api<CertificateSigningRequest> = Api::all(env.admin.clone());
    let seen: SeenMap = Arc::default();
    let observer = tokio::spawn(observe(csrs.clone(), seen.clone()));
    let approver = start_approver(env, phase, &run)?;
    let result = async {
        // One CSR through the whole path first: the approver is up (informer synced) and
        // the clock below measures approving, not start-up.
        let warm = create_csrs(env, &format!("{run}-warmup"), 1).await?;
        wait_done(
            &seen,
            &warm,
            Instant::now() + Duration::from_secs(120),
            &approver,
        )
        .await
        .context("warm-up CSR")?;
        let pid = approver.pid();
        let rss_idle = pid.and_then(|p| proc_status_kib(p, "VmRSS"));
        let cpu0 = pid.and_then(proc_cpu_seconds);
        // Where the machine's two cores go during the burst, to say what limits each figure.
        let others = [
            env.cp.pid(Component::ApiServer),
            env.cp.pid(Component::Etcd),
            env.cp.pid(Component::ControllerManager),
            Some(std::process::id()),
        ];
        let others0: Vec<Option<f64>> = others
            .iter()
            .map(|p| p.and_then(proc_cpu_seconds))
            .collect();
        let req0 = scrape_requests(&env.admin).await?;
        let t0 = Instant::now();
        let names = create_csrs(env, &run, n).await?;
        let created = t0.elapsed();
        let timeout = match env.args.phase_timeout {
            0 => Duration::from_secs(60 + n as u64 / 5),
            s => Duration::from_secs(s),
        };
        wait_done(&seen, &names, t0 + timeout, &approver).await?;
        let cpu1 = pid.and_then(proc_cpu_seconds);
        let others_cpu: Vec<Option<f64>> = others
            .iter()
            .zip(&others0)
            .map(|(p, c0)| p.and_then(proc_cpu_seconds).zip(*c0).map(|(b, a)| b - a))
            .collect();
        let hwm = pid.and_then(|p| proc_status_kib(p, "VmHWM"));
        let rss = pid.and_then(|p| proc_status_kib(p, "VmRSS"));
        let req1 = scrape_requests(&env.admin).await?;

        let (mut lat, mut last_approved, mut last_issued) = (Vec::with_capacity(n), t0, t0);
        {
            let m = lock(&seen);
            for (name, created) in &names {
                if let Some(s) = m.get(name) {
                    if let Some(a) = s.approved {
                        lat.push(a.saturating_duration_since(*created).as_secs_f64() * 1e3);
                        last_approved = last_approved.max(a);
                    }
                    if let Some(i) = s.issued {
                        last_issued = last_issued.max(i);
                    }
                }
            }
        }
        lat.sort_by(f64::total_cmp);
        // Every CSR of the burst must carry exactly one condition, Approved.
        let want: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let list = csrs.list(&ListParams::default()).await?;
        let approved_once = list
            .items
            .iter()
            .filter(|c| c.metadata.name.as_deref().is_some_and(|n| want.contains(n)))
            .filter(|c| {
                let cs = conditions(c);
                cs.len() == 1 && cs[0].type_ == "Approved"
            })
            .count();
        let wall_a = last_approved.duration_since(t0).as_secs_f64();
        let api = api_delta(&req0, &req1);
        let cpu = cpu0.zip(cpu1).map(|(a, b)| b - a);
        let nf = n as f64;
        Ok::<_, anyhow::Error>(PhaseResult {
            phase: phase.name(),
            repetition,
            nodes: n,
            wall_created_s: created.as_secs_f64(),
            wall_approved_s: wall_a,
            wall_issued_s: last_issued.duration_since(t0).as_secs_f64(),
            approvals_per_s: nf / wall_a.max(1e-9),
            latency_ms_p50: percentile(&lat, 50.0),
            latency_ms_p95: percentile(&lat, 95.0),
            latency_ms_p99: percentile(&lat, 99.0),
            latency_ms_max: lat.last().copied().unwrap_or(f64::NAN),
            cpu_s: cpu,
            cpu_ms_per_approval: cpu.map(|c| c * 1e3 / nf),
            peak_rss_mib: hwm.map(|k| k as f64 / 1024.0),
            rss_end_mib: rss.map(|k| k as f64 / 1024.0),
            rss_idle_mib: rss_idle.map(|k| k as f64 / 1024.0),
            csrs_in_cluster: list.items.len(),
            apiserver_cpu_s: others_cpu[0],
            etcd_cpu_s: others_cpu[1],
            harness_kcm_cpu_s: others_cpu[2],
            harness_cpu_s: others_cpu[3],
            api_requests_per_csr: api.total / nf,
            approver_requests_per_csr: (api.approval_put
                + api.sar_create
                + api.csr_read
                + api.events)
                / nf,
            api,
            approved_once,
        })
    }
    .await;
    approver.stop();
    observer.abort();
    if phase == Phase::Kcm {
        env.cp.start_component(Component::ControllerManager).await?;
    }
    result
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

fn print_table(results: &[PhaseResult]) {
    println!(
        "\n{:<14} {:>3} {:>6} {:>7} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>7} {:>6} {:>7} {:>7} {:>7}",
        "phase",
        "rep",
        "N",
        "made s",
        "appr s",
        "issued s",
        "appr/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "cpu s",
        "cpu ms/1",
        "peakMiB",
        "req/CSR",
        "appr rq",
        "once",
        "idleMiB",
        "apisrvC",
        "harnesC"
    );
    for r in results {
        println!(
            "{:<14} {:>3} {:>6} {:>7.2} {:>8.2} {:>8.2} {:>9.1} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>7} {:>8} {:>8} {:>8.2} {:>7.2} {:>6} {:>7} {:>7} {:>7}",
            r.phase,
            r.repetition,
            r.nodes,
            r.wall_created_s,
            r.wall_approved_s,
            r.wall_issued_s,
            r.approvals_per_s,
            r.latency_ms_p50,
            r.latency_ms_p95,
            r.latency_ms_p99,
            r.latency_ms_max,
            opt(r.cpu_s, 2),
            opt(r.cpu_ms_per_approval, 3),
            opt(r.peak_rss_mib, 1),
            r.api_requests_per_csr,
            r.approver_requests_per_csr,
            r.approved_once,
            opt(r.rss_idle_mib, 1),
            opt(r.apiserver_cpu_s, 1),
            opt(r.harness_cpu_s, 1)
        );
    }
}

pub async fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.nodes == 0 || a.repetitions == 0 {
        bail!("--nodes and --repetitions must be at least 1");
    }
    let needs_tlsboot = a
        .phases
        .iter()
        .any(|p| matches!(p, Phase::Tlsboot | Phase::TlsbootQps));
    let tlsboot_bin = match (&a.tlsboot_bin, needs_tlsboot) {
        (Some(b), _) => Some(b.clone()),
        (None, true) => Some(build_tlsboot_release()?),
        (None, false) => None,
    };
    let bins = tlsboot_harness::build_binaries()?;
    let cp = ControlPlane::start(Options {
        binaries: Some(bins),
        seed_rbac: true,
        // Signing must never be what is measured: its own client limits are raised (the KCM
        // phase restarts KCM at its defaults).
        kcm_api_qps: Some(2000.0),
        kcm_api_burst: Some(4000),
        // A 2-core kube-apiserver's defaults (400/200) would reject the burst with 429s
        // before the approver is the limit.
        apiserver_args: vec![
            "--max-requests-inflight=3000".into(),
            "--max-mutating-requests-inflight=1500".into(),
        ],
        ..Options::default()
    })
    .await?;
    eprintln!(
        "control plane up in {:.1?} at {} (logs {})",
        cp.startup_times().total,
        cp.server_url(),
        cp.dir().join("logs").display()
    );
    let token = cp
        .create_bootstrap_token(&tlsboot_harness::BootstrapTokenOptions::default())
        .await?;
    let boot = cp.bootstrap_kubeconfig(&token).await?;
    let boot_config = boot.config();
    let env = Env {
        cp: &cp,
        admin: cp.admin_client()?,
        boot_client: kube::Client::try_from(boot_config.clone())?,
        boot_config,
        tlsboot_bin,
        args: &a,
    };
    let mut results = Vec::new();
    for rep in 1..=a.repetitions {
        for &phase in &a.phases {
            // Phases held to 20 QPS approve ~10-20 CSRs/s whatever N is: they use the small N.
            let n = if matches!(phase, Phase::Kcm | Phase::TlsbootQps) {
                a.kcm_nodes
            } else {
                a.nodes
            };
            eprintln!("phase {} (repetition {rep}): {n} kubelets", phase.name());
            let r = run_phase(&env, phase, rep, n)
                .await
                .with_context(|| format!("phase {} repetition {rep}", phase.name()))?;
            eprintln!(
                "  {:.1} approvals/s, p99 {:.0} ms, approved once {}/{}",
                r.approvals_per_s, r.latency_ms_p99, r.approved_once, n
            );
            results.push(r);
        }
    }
    print_table(&results);
    let rate = |p: &str| {
        median(
            results
                .iter()
                .filter(|r| r.phase == p)
                .map(|r| r.approvals_per_s)
                .collect(),
        )
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let (ceiling, tlsboot, tlsboot_qps, kcm) = (
        rate("ceiling"),
        rate("tlsboot"),
        rate("tlsboot-qps20"),
        rate("kcm"),
    );
    let ratios = json!({
        "tlsboot_over_ceiling": ratio(tlsboot, ceiling),
        "tlsboot_over_kcm": ratio(tlsboot, kcm),
        "tlsboot_qps20_over_kcm": ratio(tlsboot_qps, kcm),
    });
    println!(
        "\nratios (median approvals/s): tlsboot/ceiling {}  tlsboot/KCM {}  tlsboot-qps20/KCM {}",
        opt(ratio(tlsboot, ceiling), 2),
        opt(ratio(tlsboot, kcm), 1),
        opt(ratio(tlsboot_qps, kcm), 2)
    );
    let line = json!({
        "bench": "tlsboot-cold-start",
        "nodes": a.nodes,
        "kcm_nodes": a.kcm_nodes,
        "concurrency": a.concurrency,
        "repetitions": a.repetitions,
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "results": results,
        "ratios": ratios,
    });
    println!("BENCH_JSON {line}");
    Ok(())
}
