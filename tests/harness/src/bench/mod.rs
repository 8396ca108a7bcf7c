//! `tlsboot-harness bench`: a cold-start load benchmark (issue 7). One control plane; per phase
//! exactly one approver: a null approver (the ceiling), the real `tlsboot controller` release
//! binary (defaults, then KCM's client limits), and kube-controller-manager's own
//! `csrapproving` at its defaults. Per phase up to three stages, each a fresh burst of N CSRs:
//! `client` (kubelet bootstrap CSRs via a bootstrap token), `serving` (kubelet-serving CSRs filed
//! as each node, which tlsboot must queue for a person and never approve; tlsboot phases only)
//! and `renewal` (client CSRs filed as each node, approved through the `selfnodeclient` SAR).
//! Prints a table and one JSON line.
//!
//! The kubelets only create their CSRs; one admin watch observes approval and issuance for all of
//! them. N per-kubelet watches (what a real kubelet holds) would load the 2-core control plane
//! with work no approver causes, and the approver, not the kubelets, is what is measured. The
//! serving and renewal CSRs are filed by the admin client impersonating each node
//! (`Impersonate-User: system:node:<name>`, `Impersonate-Group: system:nodes`): the API server
//! records the same requester as for the node's own certificate, without N client certificates
//! and connections.

mod openloop;
mod plot;

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
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use serde_json::json;
use tlsboot_harness::kubelet::{KUBELET_SERVING, create_csr_as, rotation_csr, serving_csr};
use tlsboot_harness::{ChildProcess, Component, ControlPlane, KubeletOptions, Options, SimKubelet};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// tlsboot's Event reason for a serving CSR left to a person.
const AWAITING_REVIEW: &str = "AwaitingReview";
/// Label on every CSR the serving and renewal stages file: the run they belong to.
const RUN_LABEL: &str = "bench.tlsboot.dev/run";
/// Groups of a node's own requests (impersonation adds `system:authenticated` anyway).
const NODE_GROUPS: [&str; 2] = ["system:nodes", "system:authenticated"];

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

/// What each phase's CSRs are, in the order a node's life files them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum BenchStage {
    /// Bootstrap client CSRs (`node-csr-<digest>`) via a bootstrap token.
    Client,
    /// kubelet-serving CSRs as each node: queued for a person, never approved (tlsboot
    /// phases only: the null approver and KCM ignore them and report nothing).
    Serving,
    /// Client renewal CSRs as each node (`selfnodeclient`).
    Renewal,
}

impl BenchStage {
    fn name(self) -> &'static str {
        match self {
            BenchStage::Client => "client",
            BenchStage::Serving => "serving",
            BenchStage::Renewal => "renewal",
        }
    }

    /// Whether `phase` runs this stage.
    fn runs_in(self, phase: Phase) -> bool {
        self != BenchStage::Serving || matches!(phase, Phase::Tlsboot | Phase::TlsbootQps)
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
    /// Stages of every phase (always run in the order client, serving, renewal; serving only
    /// in tlsboot phases).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "client,serving,renewal"
    )]
    stages: Vec<BenchStage>,
    /// Workers of the null approver (tlsboot's `--concurrency` default).
    #[arg(long, default_value_t = 32)]
    ceiling_workers: usize,
    /// The tlsboot binary to run; default: `cargo build --release --bin tlsboot`.
    #[arg(long)]
    tlsboot_bin: Option<PathBuf>,
    /// Extra arguments for every `tlsboot controller` phase (e.g. `--concurrency=64`).
    #[arg(long, allow_hyphen_values = true)]
    tlsboot_arg: Vec<String>,
    /// Seconds a stage may take before it counts as failed (0 = 60 s + N/5 s).
    #[arg(long, default_value_t = 0)]
    phase_timeout: u64,
    /// Open loop instead of bursts: CSRs arrive evenly spaced at each of `--rates`, whatever
    /// the approver does; latency percentiles, knee and cost per rate (see bench/openloop.rs).
    #[arg(long)]
    open_loop: bool,
    /// Open loop: offered rates, CSRs per second, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "5,20,50,100,200")]
    rates: Vec<f64>,
    /// Open loop: seconds of arrivals per rate.
    #[arg(long, default_value_t = 30)]
    stage_secs: u64,
    /// Open loop: seconds after the last arrival for the approver to finish; what is not
    /// approved by then counts as never approved.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
    /// Open loop: the knee is the highest rate whose p99 create → Approved is under this.
    #[arg(long, default_value_t = 1000.0)]
    p99_limit_ms: f64,
    /// Open loop: where the plots (SVG, PNG) and the Markdown table go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
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
    /// tlsboot's AwaitingReview Event for it first seen (serving CSRs).
    queued: Option<Instant>,
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

/// Every object `api`'s watch applies (list and updates), for as long as it runs; watch errors
/// are logged and retried by the watcher's backoff.
fn applied<K>(api: Api<K>, what: &'static str) -> impl futures::Stream<Item = K> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .filter_map(move |r| {
            futures::future::ready(match r {
                Ok(obj) => Some(obj),
                Err(e) => {
                    tracing::warn!(error = %e, "bench {what} watch error");
                    None
                }
            })
        })
}

/// One admin watch over all CSRs; records when each was first seen Approved and issued.
async fn observe(api: Api<CertificateSigningRequest>, seen: SeenMap) {
    let mut csrs = std::pin::pin!(applied(api, "observer"));
    while let Some(csr) = csrs.next().await {
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

/// One admin watch over the Events tlsboot posts (namespace `default`); records when the
/// AwaitingReview Event of each CSR was first seen.
async fn observe_review_events(api: Api<Event>, seen: SeenMap) {
    let mut events = std::pin::pin!(applied(api, "Event"));
    while let Some(event) = events.next().await {
        let now = Instant::now();
        if event.reason.as_deref() != Some(AWAITING_REVIEW) {
            continue;
        }
        let Some(name) = event.regarding.and_then(|r| r.name) else {
            continue;
        };
        let mut m = lock(&seen);
        let s = m.entry(name).or_default();
        if s.queued.is_none() {
            s.queued = Some(now);
        }
    }
}

/// The daemon's `tlsboot_csr_decisions_total` for `signer` and `outcome`, from its /metrics.
async fn daemon_decisions(port: u16, signer: &str, outcome: &str) -> anyhow::Result<f64> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.") || !text.contains(" 200 ") {
        bail!(
            "daemon /metrics answered: {}",
            text.lines().next().unwrap_or("")
        );
    }
    let (want_signer, want_outcome) = (
        format!("signer=\"{signer}\""),
        format!("outcome=\"{outcome}\""),
    );
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("tlsboot_csr_decisions_total{"))
        .filter_map(|rest| rest.rsplit_once("} "))
        .filter(|(labels, _)| labels.contains(&want_signer) && labels.contains(&want_outcome))
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum())
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
    /// A separate process; `metrics` is tlsboot's /metrics port (None for KCM).
    Process {
        proc: ChildProcess,
        metrics: Option<u16>,
    },
}

impl Approver {
    fn pid(&self) -> Option<u32> {
        match self {
            Approver::InProcess(_) => None,
            Approver::Process { proc, .. } => Some(proc.pid()),
        }
    }

    fn metrics_port(&self) -> Option<u16> {
        match self {
            Approver::InProcess(_) => None,
            Approver::Process { metrics, .. } => *metrics,
        }
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        if let Approver::Process { proc, .. } = self
            && let Some(status) = proc.exited()
        {
            bail!("approver exited ({status}):\n{}", proc.log_tail(30));
        }
        Ok(())
    }

    fn stop(self) {
        match self {
            Approver::InProcess(h) => h.abort(),
            Approver::Process { proc, .. } => proc.terminate(Duration::from_secs(5)),
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
            let port = free_port()?;
            let mut cmd = Command::new(bin);
            cmd.arg("controller")
                .arg("--kubeconfig")
                .arg(env.cp.kubeconfig_path())
                .arg("--leader-elect=false")
                .arg(format!("--metrics-bind-address=127.0.0.1:{port}"));
            if phase == Phase::TlsbootQps {
                cmd.args(["--kube-api-qps", "20", "--kube-api-burst", "30"]);
            }
            cmd.args(&env.args.tlsboot_arg);
            let proc = ChildProcess::spawn("tlsboot", cmd, &logs.join(format!("{run}.log")))?;
            Ok(Approver::Process {
                proc,
                metrics: Some(port),
            })
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
            let proc = ChildProcess::spawn(
                "kube-controller-manager",
                cmd,
                &logs.join(format!("{run}.log")),
            )?;
            Ok(Approver::Process {
                proc,
                metrics: None,
            })
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

/// Creates one serving or renewal CSR per node `<prefix>-<i>`, each as that node
/// (impersonated) and labelled `RUN_LABEL=<label>`, `concurrency` in flight; returns (name,
/// created-at) per node.
async fn create_node_csrs(
    env: &Env<'_>,
    stage: BenchStage,
    prefix: &str,
    label: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let results: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(0..n)
        .map(|i| {
            let opts = KubeletOptions::new(format!("{prefix}-{i}"));
            let user = format!("system:node:{}", opts.node_name);
            async move {
                let (mut csr, _key) = match stage {
                    BenchStage::Serving => serving_csr(&opts)?,
                    _ => rotation_csr(&opts)?,
                };
                csr.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(RUN_LABEL.into(), label.into());
                let deadline = Instant::now() + Duration::from_secs(300);
                let created =
                    create_csr_as(&env.admin, &user, &NODE_GROUPS, &csr, deadline).await?;
                let at = Instant::now();
                let name = created
                    .metadata
                    .name
                    .context("created CSR without a name")?;
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

/// Waits until the daemon's queued-for-review counter for serving CSRs reaches `base + n`;
/// returns when it was seen there and the increase.
async fn wait_queued(
    port: u16,
    base: f64,
    n: usize,
    deadline: Instant,
    approver: &Approver,
) -> anyhow::Result<(Instant, f64)> {
    loop {
        let now = daemon_decisions(port, KUBELET_SERVING, "queued_for_review").await? - base;
        if now >= n as f64 {
            return Ok((Instant::now(), now));
        }
        approver.check_alive()?;
        if Instant::now() > deadline {
            bail!("only {now} of {n} serving CSRs queued for review in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    percentile_of(sorted, sorted.len(), p).unwrap_or(f64::NAN)
}

/// A percentile (nearest rank) over `n` samples of which only `finite` (sorted) are known; the
/// rest are later than any known one. `None` when the percentile falls among the unknown.
fn percentile_of(finite: &[f64], n: usize, p: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    finite.get(rank - 1).copied()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseResult {
    pub phase: &'static str,
    /// client, serving or renewal.
    pub stage: &'static str,
    pub repetition: usize,
    pub nodes: usize,
    /// First create → last create answered (how fast the kubelets could file CSRs).
    pub wall_created_s: f64,
    /// First create → last Approved seen (client, renewal).
    pub wall_approved_s: Option<f64>,
    /// First create → last certificate seen (client, renewal).
    pub wall_issued_s: Option<f64>,
    pub approvals_per_s: Option<f64>,
    /// Serving: first create → the daemon's `queued_for_review` counter seen at +N.
    pub wall_queued_s: Option<f64>,
    pub queued_per_s: Option<f64>,
    /// Serving: increase of `tlsboot_csr_decisions_total{signer=kubelet-serving,
    /// outcome=queued_for_review}` during the stage.
    pub queued_for_review: Option<f64>,
    /// Serving: the stage's CSRs whose AwaitingReview Event was seen.
    pub review_events_seen: Option<usize>,
    /// Per CSR, create answered → Approved seen (client, renewal) or → AwaitingReview Event
    /// seen (serving).
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// None for the in-process ceiling (it shares the harness process).
    pub cpu_s: Option<f64>,
    /// Approver CPU per CSR of the stage (per approval; per queued serving CSR).
    pub cpu_ms_per_approval: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub rss_end_mib: Option<f64>,
    /// Approver RSS before the stage (the first: after its start-up list and one warm-up CSR).
    pub rss_idle_mib: Option<f64>,
    /// CSRs stored when the stage is done (earlier phases' client and renewal CSRs stay).
    pub csrs_in_cluster: usize,
    /// CPU seconds during the stage of the control plane and of this process (kubelets,
    /// observer and, in the ceiling phase, the null approver).
    pub apiserver_cpu_s: Option<f64>,
    pub etcd_cpu_s: Option<f64>,
    /// The harness's KCM (signer only); absent in the KCM phase, whose KCM is the approver.
    pub harness_kcm_cpu_s: Option<f64>,
    pub harness_cpu_s: Option<f64>,
    pub api_requests_per_csr: f64,
    pub approver_requests_per_csr: f64,
    pub api: ApiDelta,
    /// CSRs of the stage seen Approved by the observer (serving: counted when the phase ends;
    /// must be 0).
    pub approved: usize,
    /// CSRs whose conditions are exactly one Approved (serving: must be 0).
    pub approved_once: usize,
    /// Serving: CSRs of the stage with no condition at all when the phase ends (left for a
    /// person).
    pub untouched: Option<usize>,
    /// Serving, renewal: CSRs of the stage whose `spec.username` is `system:node:<node>` and
    /// whose groups hold `system:nodes` (as the node's own request would).
    pub filed_as_node: Option<usize>,
}

/// What is sampled before and after a stage.
struct Sample {
    cpu: Option<f64>,
    others: Vec<Option<f64>>,
    req: ReqCounts,
}

async fn sample(env: &Env<'_>, pid: Option<u32>) -> anyhow::Result<Sample> {
    // Where the machine's two cores go during the stage, to say what limits each figure.
    let others = [
        env.cp.pid(Component::ApiServer),
        env.cp.pid(Component::Etcd),
        env.cp.pid(Component::ControllerManager),
        Some(std::process::id()),
    ];
    Ok(Sample {
        cpu: pid.and_then(proc_cpu_seconds),
        others: others
            .iter()
            .map(|p| p.and_then(proc_cpu_seconds))
            .collect(),
        req: scrape_requests(&env.admin).await?,
    })
}

fn stage_timeout(env: &Env<'_>, n: usize) -> Duration {
    match env.args.phase_timeout {
        0 => Duration::from_secs(60 + n as u64 / 5),
        s => Duration::from_secs(s),
    }
}

fn conditions_of_kind(csr: &CertificateSigningRequest, kind: &str) -> usize {
    conditions(csr).iter().filter(|c| c.type_ == kind).count()
}

/// One stage of one phase: N fresh CSRs, measured from the first create until the approver
/// is done with all of them. Returns the figures and the stage's CSR names.
#[allow(clippy::too_many_arguments)]
async fn run_stage(
    env: &Env<'_>,
    phase: Phase,
    stage: BenchStage,
    repetition: usize,
    n: usize,
    run: &str,
    approver: &Approver,
    seen: &SeenMap,
) -> anyhow::Result<(PhaseResult, Vec<String>)> {
    let csrs: Api<CertificateSigningRequest> = Api::all(env.admin.clone());
    let pid = approver.pid();
    let port = approver.metrics_port();
    if stage == BenchStage::Serving && port.is_none() {
        bail!("the serving stage needs the daemon's /metrics");
    }
    let queued0 = match port {
        Some(p) if stage == BenchStage::Serving => {
            daemon_decisions(p, KUBELET_SERVING, "queued_for_review").await?
        }
        _ => 0.0,
    };
    let rss_idle = pid.and_then(|p| proc_status_kib(p, "VmRSS"));
    let s0 = sample(env, pid).await?;
    let t0 = Instant::now();
    // The same nodes in every stage of a phase: `<run>-<i>`.
    let names = match stage {
        BenchStage::Client => create_csrs(env, run, n).await?,
        BenchStage::Serving | BenchStage::Renewal => {
            let label = format!("{run}-{}", stage.name());
            create_node_csrs(env, stage, run, &label, n).await?
        }
    };
    let created = t0.elapsed();
    let deadline = t0 + stage_timeout(env, n);
    let queued = match (stage, port) {
        (BenchStage::Serving, Some(p)) => {
            Some(wait_queued(p, queued0, n, deadline, approver).await?)
        }
        _ => {
            wait_done(seen, &names, deadline, approver).await?;
            None
        }
    };
    if queued.is_some() {
        // Each Event follows the counter by one POST (behind the client rate limiter, if
        // any): the stage's cost (CPU, requests) and per-CSR latencies include them, so wait
        // for them (at most 30 s) before sampling. `done` stays the counter's time.
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            let all = {
                let m = lock(seen);
                names
                    .iter()
                    .all(|(n, _)| m.get(n).is_some_and(|s| s.queued.is_some()))
            };
            if all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let s1 = sample(env, pid).await?;
    let hwm = pid.and_then(|p| proc_status_kib(p, "VmHWM"));
    let rss = pid.and_then(|p| proc_status_kib(p, "VmRSS"));

    let (mut lat, mut last_approved, mut last_issued) = (Vec::with_capacity(n), t0, t0);
    let (mut approved, mut events_seen) = (0, 0);
    {
        let m = lock(seen);
        for (name, created) in &names {
            let Some(s) = m.get(name) else { continue };
            if let Some(a) = s.approved {
                approved += 1;
                last_approved = last_approved.max(a);
                if stage != BenchStage::Serving {
                    lat.push(a.saturating_duration_since(*created).as_secs_f64() * 1e3);
                }
            }
            if let Some(i) = s.issued {
                last_issued = last_issued.max(i);
            }
            if let Some(q) = s.queued {
                events_seen += 1;
                if stage == BenchStage::Serving {
                    lat.push(q.saturating_duration_since(*created).as_secs_f64() * 1e3);
                }
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    // Every client / renewal CSR of the stage must carry exactly one condition, Approved.
    let want: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let list = csrs.list(&ListParams::default()).await?;
    let approved_once = list
        .items
        .iter()
        .filter(|c| c.metadata.name.as_deref().is_some_and(|n| want.contains(n)))
        .filter(|c| conditions(c).len() == 1 && conditions_of_kind(c, "Approved") == 1)
        .count();
    // Serving and renewal CSRs must carry the node's own identity (impersonation worked).
    let node_user = format!("system:node:{run}-");
    let filed_as_node = (stage != BenchStage::Client).then(|| {
        list.items
            .iter()
            .filter(|c| c.metadata.name.as_deref().is_some_and(|n| want.contains(n)))
            .filter(|c| {
                c.spec
                    .username
                    .as_deref()
                    .is_some_and(|u| u.starts_with(&node_user))
                    && c.spec
                        .groups
                        .as_ref()
                        .is_some_and(|g| g.iter().any(|g| g == "system:nodes"))
            })
            .count()
    });
    let api = api_delta(&s0.req, &s1.req);
    let cpu = s0.cpu.zip(s1.cpu).map(|(a, b)| b - a);
    let others: Vec<Option<f64>> = s1
        .others
        .iter()
        .zip(&s0.others)
        .map(|(b, a)| b.zip(*a).map(|(b, a)| b - a))
        .collect();
    let nf = n as f64;
    let approving = stage != BenchStage::Serving;
    let wall_a = last_approved.duration_since(t0).as_secs_f64();
    let wall_q = queued.map(|(at, _)| at.duration_since(t0).as_secs_f64());
    let result = PhaseResult {
        phase: phase.name(),
        stage: stage.name(),
        repetition,
        nodes: n,
        wall_created_s: created.as_secs_f64(),
        wall_approved_s: approving.then_some(wall_a),
        wall_issued_s: approving.then(|| last_issued.duration_since(t0).as_secs_f64()),
        approvals_per_s: approving.then(|| nf / wall_a.max(1e-9)),
        wall_queued_s: wall_q,
        queued_per_s: wall_q.map(|w| nf / w.max(1e-9)),
        queued_for_review: queued.map(|(_, q)| q),
        review_events_seen: (!approving).then_some(events_seen),
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
        apiserver_cpu_s: others.first().copied().flatten(),
        etcd_cpu_s: others.get(1).copied().flatten(),
        harness_kcm_cpu_s: others.get(2).copied().flatten(),
        harness_cpu_s: others.get(3).copied().flatten(),
        api_requests_per_csr: api.total / nf,
        approver_requests_per_csr: (api.approval_put + api.sar_create + api.csr_read + api.events)
            / nf,
        api,
        approved,
        approved_once,
        untouched: None,
        filed_as_node,
    };
    Ok((result, names.into_iter().map(|(n, _)| n).collect()))
}

async fn run_phase(
    env: &Env<'_>,
    phase: Phase,
    repetition: usize,
    n: usize,
) -> anyhow::Result<Vec<PhaseResult>> {
    let run = format!("bench-{}-{repetition}", phase.name());
    let csrs: Api<CertificateSigningRequest> = Api::all(env.admin.clone());
    let seen: SeenMap = Arc::default();
    let observer = tokio::spawn(observe(csrs.clone(), seen.clone()));
    let mut stages: Vec<BenchStage> = env
        .args
        .stages
        .iter()
        .copied()
        .filter(|s| s.runs_in(phase))
        .collect();
    stages.sort();
    stages.dedup();
    let events = stages.contains(&BenchStage::Serving).then(|| {
        let api: Api<Event> = Api::namespaced(env.admin.clone(), "default");
        tokio::spawn(observe_review_events(api, seen.clone()))
    });
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
        let mut out = Vec::new();
        let mut serving: Option<(usize, Vec<String>)> = None;
        for &stage in &stages {
            eprintln!("  stage {}: {n} CSRs", stage.name());
            let (r, names) = run_stage(env, phase, stage, repetition, n, &run, &approver, &seen)
                .await
                .with_context(|| format!("stage {}", stage.name()))?;
            match stage {
                BenchStage::Serving => eprintln!(
                    "    {:.1} queued/s, {} approved (must be 0)",
                    r.queued_per_s.unwrap_or(f64::NAN),
                    r.approved
                ),
                _ => eprintln!(
                    "    {:.1} approvals/s, p99 {:.0} ms, approved once {}/{}",
                    r.approvals_per_s.unwrap_or(f64::NAN),
                    r.latency_ms_p99,
                    r.approved_once,
                    n
                ),
            }
            if stage == BenchStage::Serving {
                serving = Some((out.len(), names));
            }
            out.push(r);
        }
        // The serving CSRs stayed pending through the later stages: count what the approver
        // did to them by now (nothing, if it is right).
        if let Some((i, names)) = serving {
            let want: HashSet<&str> = names.iter().map(String::as_str).collect();
            let list = csrs
                .list(&ListParams::default().labels(&format!("{RUN_LABEL}={run}-serving")))
                .await?;
            let mine = || {
                list.items
                    .iter()
                    .filter(|c| c.metadata.name.as_deref().is_some_and(|n| want.contains(n)))
            };
            let untouched = mine().filter(|c| conditions(c).is_empty()).count();
            let once = mine()
                .filter(|c| conditions(c).len() == 1 && conditions_of_kind(c, "Approved") == 1)
                .count();
            let approved = {
                let m = lock(&seen);
                names
                    .iter()
                    .filter(|n| m.get(*n).is_some_and(|s| s.approved.is_some()))
                    .count()
            };
            if let Some(r) = out.get_mut(i) {
                r.untouched = Some(untouched);
                r.approved_once = once;
                r.approved = approved;
            }
        }
        Ok::<_, anyhow::Error>(out)
    }
    .await;
    approver.stop();
    observer.abort();
    if let Some(e) = events {
        e.abort();
    }
    // Pending serving CSRs would be every later approver's start-up backlog (an Event each):
    // remove them.
    if stages.contains(&BenchStage::Serving) {
        let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run}-serving"));
        if let Err(e) = csrs.delete_collection(&DeleteParams::default(), &lp).await {
            tracing::warn!(error = %e, "could not delete the serving CSRs of {run}");
        }
    }
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
    let mid = v.len() / 2;
    // An even count has two middles: their mean, so two repetitions do not report the best one.
    if v.len().is_multiple_of(2) {
        Some((v[mid - 1] + v[mid]) / 2.0)
    } else {
        Some(v[mid])
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

fn print_table(results: &[PhaseResult]) {
    println!(
        "\n{:<14} {:<8} {:>3} {:>6} {:>7} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7}",
        "phase",
        "stage",
        "rep",
        "N",
        "made s",
        "done s",
        "issued s",
        "rate/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "cpu s",
        "cpu ms/1",
        "peakMiB",
        "req/CSR",
        "appr rq",
        "apprvd",
        "once",
        "idleMiB",
        "apisrvC",
        "harnesC"
    );
    for r in results {
        // Serving rows: "done" = all queued for review, "rate" = queued/s.
        let (done, rate) = match r.stage {
            "serving" => (r.wall_queued_s, r.queued_per_s),
            _ => (r.wall_approved_s, r.approvals_per_s),
        };
        println!(
            "{:<14} {:<8} {:>3} {:>6} {:>7.2} {:>8} {:>8} {:>9} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>7} {:>8} {:>8} {:>8.2} {:>7.2} {:>6} {:>6} {:>7} {:>7} {:>7}",
            r.phase,
            r.stage,
            r.repetition,
            r.nodes,
            r.wall_created_s,
            opt(done, 2),
            opt(r.wall_issued_s, 2),
            opt(rate, 1),
            r.latency_ms_p50,
            r.latency_ms_p95,
            r.latency_ms_p99,
            r.latency_ms_max,
            opt(r.cpu_s, 2),
            opt(r.cpu_ms_per_approval, 3),
            opt(r.peak_rss_mib, 1),
            r.api_requests_per_csr,
            r.approver_requests_per_csr,
            r.approved,
            r.approved_once,
            opt(r.rss_idle_mib, 1),
            opt(r.apiserver_cpu_s, 1),
            opt(r.harness_cpu_s, 1)
        );
    }
}

pub async fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.nodes == 0 || a.kcm_nodes == 0 || a.repetitions == 0 {
        bail!("--nodes, --kcm-nodes and --repetitions must be at least 1");
    }
    if a.stages.is_empty() {
        bail!("--stages must name at least one stage");
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
    // Built binaries as they are; build.sh only when they are missing (its version check can
    // fail spuriously under load and then rebuilds the cache).
    let bins = match tlsboot_harness::find_binaries() {
        Ok(b) => b,
        Err(_) => tlsboot_harness::build_binaries()?,
    };
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
    if a.open_loop {
        return openloop::run(&env).await;
    }
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
            results.extend(r);
        }
    }
    print_table(&results);
    let rate = |p: &str, stage: &str| {
        median(
            results
                .iter()
                .filter(|r| r.phase == p && r.stage == stage)
                .filter_map(|r| r.approvals_per_s)
                .collect(),
        )
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let mut ratios = serde_json::Map::new();
    for stage in [BenchStage::Client, BenchStage::Renewal] {
        let s = stage.name();
        let (ceiling, tlsboot, tlsboot_qps, kcm) = (
            rate("ceiling", s),
            rate("tlsboot", s),
            rate("tlsboot-qps20", s),
            rate("kcm", s),
        );
        if [ceiling, tlsboot, tlsboot_qps, kcm]
            .iter()
            .all(Option::is_none)
        {
            continue;
        }
        ratios.insert(
            s.into(),
            json!({
                "tlsboot_over_ceiling": ratio(tlsboot, ceiling),
                "tlsboot_over_kcm": ratio(tlsboot, kcm),
                "tlsboot_qps20_over_kcm": ratio(tlsboot_qps, kcm),
            }),
        );
        println!(
            "\n{s} ratios (median approvals/s): tlsboot/ceiling {}  tlsboot/KCM {}  tlsboot-qps20/KCM {}",
            opt(ratio(tlsboot, ceiling), 2),
            opt(ratio(tlsboot, kcm), 1),
            opt(ratio(tlsboot_qps, kcm), 2)
        );
    }
    let serving: Vec<&PhaseResult> = results.iter().filter(|r| r.stage == "serving").collect();
    if !serving.is_empty() {
        let approved: usize = serving.iter().map(|r| r.approved).sum();
        println!(
            "serving: {approved} of {} serving CSRs approved (must be 0)",
            serving.iter().map(|r| r.nodes).sum::<usize>()
        );
    }
    let line = json!({
        "bench": "tlsboot-cold-start",
        "nodes": a.nodes,
        "kcm_nodes": a.kcm_nodes,
        "concurrency": a.concurrency,
        "repetitions": a.repetitions,
        "stages": a.stages.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "results": results,
        "ratios": ratios,
    });
    println!("BENCH_JSON {line}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::median;

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middles() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![300.0, 100.0]), Some(200.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
