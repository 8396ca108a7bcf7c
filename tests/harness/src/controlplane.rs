//! A real etcd + kube-apiserver + kube-controller-manager on loopback.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::binaries::{Binaries, binaries_for_tests, find_binaries};
use crate::error::{Error, Result, io};
use crate::kubeconfig::{Credential, UserKubeconfig};
use crate::pki::Ca;
use crate::process::{ChildProcess as Proc, forget_dir, remove_at_exit, sweep_stale};
use crate::token::{BootstrapToken, BootstrapTokenOptions};

/// The admin user's name; its client certificate is in `system:masters`.
pub const ADMIN_USER: &str = "tlsboot-admin";

/// The seed's three ClusterRoleBindings (names from the upstream kubelet
/// TLS-bootstrapping docs): (binding, ClusterRole, Group).
pub const SEED_BINDINGS: [(&str, &str, &str); 3] = [
    (
        "create-csrs-for-bootstrapping",
        "system:node-bootstrapper",
        "system:bootstrappers",
    ),
    (
        "auto-approve-csrs-for-group",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:bootstrappers",
    ),
    (
        "auto-approve-renewals-for-nodes",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:nodes",
    ),
];

/// One of the control-plane processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Etcd,
    ApiServer,
    ControllerManager,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
        }
    }
}

/// How to start a control plane. `Options::default()`: KCM with `csrsigning`
/// only, no seed RBAC, 60 s start-up timeouts.
#[derive(Debug, Clone)]
pub struct Options {
    /// Binaries to run; `None` = [`find_binaries`].
    pub binaries: Option<Binaries>,
    /// Start kube-controller-manager at all (`csrsigning` is always on).
    pub controller_manager: bool,
    /// Add KCM's built-in kubelet-client approver (the performance anchor).
    pub csrapproving: bool,
    /// Add KCM's expired-bootstrap-token cleaner.
    pub tokencleaner: bool,
    /// Add KCM's CSR garbage collector.
    pub csrcleaner: bool,
    /// KCM `--kube-api-qps` / `--kube-api-burst` (KCM's defaults: 20 / 30).
    pub kcm_api_qps: Option<f32>,
    pub kcm_api_burst: Option<u32>,
    /// Apply [`SEED_BINDINGS`] once the API server is ready.
    pub seed_rbac: bool,
    /// Extra flags, appended last (so they win over ours).
    pub apiserver_args: Vec<String>,
    pub kcm_args: Vec<String>,
    pub etcd_args: Vec<String>,
    /// Per-process readiness timeout.
    pub timeout: Duration,
    /// etcd members (1, or 3 for the production topology: quorum survives one loss).
    pub etcd_members: usize,
    /// kube-apiservers, active/active. With more than one, [`ControlPlane::server_url`]
    /// is a TCP load balancer in front of them (see [`crate::balancer`]).
    pub apiservers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            binaries: None,
            controller_manager: true,
            csrapproving: false,
            tokencleaner: false,
            csrcleaner: false,
            kcm_api_qps: None,
            kcm_api_burst: None,
            seed_rbac: false,
            apiserver_args: Vec::new(),
            kcm_args: Vec::new(),
            etcd_args: Vec::new(),
            timeout: Duration::from_secs(60),
            etcd_members: 1,
            apiservers: 1,
        }
    }
}

impl Options {
    /// The `--controllers` value for KCM.
    pub fn controllers(&self) -> String {
        let mut c = vec!["csrsigning"];
        if self.csrapproving {
            c.push("csrapproving");
        }
        if self.tokencleaner {
            c.push("tokencleaner");
        }
        if self.csrcleaner {
            c.push("csrcleaner");
        }
        c.join(",")
    }
}

/// How long each start-up phase took.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartupTimes {
    pub pki: Duration,
    pub etcd: Duration,
    /// Spawn to `/readyz` = 200 and `kube-system` present.
    pub apiserver: Duration,
    pub controller_manager: Duration,
    pub total: Duration,
}

/// Running processes: one slot per etcd member and per kube-apiserver.
#[derive(Default)]
struct Procs {
    etcd: Vec<Option<Proc>>,
    apiserver: Vec<Option<Proc>>,
    kcm: Option<Proc>,
}

impl Procs {
    fn slot(&mut self, c: Component, i: usize) -> Option<&mut Option<Proc>> {
        match c {
            Component::Etcd => self.etcd.get_mut(i),
            Component::ApiServer => self.apiserver.get_mut(i),
            Component::ControllerManager => (i == 0).then_some(&mut self.kcm),
        }
    }

    fn get(&self, c: Component, i: usize) -> Option<&Proc> {
        match c {
            Component::Etcd => self.etcd.get(i)?.as_ref(),
            Component::ApiServer => self.apiserver.get(i)?.as_ref(),
            Component::ControllerManager => (i == 0).then_some(self.kcm.as_ref())?,
        }
    }
}

/// A running control plane. Dropping it kills the processes and removes its
/// directories (kept, and printed, when the dropping thread is panicking).
pub struct ControlPlane {
    dir: PathBuf,
    /// One data directory per etcd member.
    etcd_dirs: Vec<PathBuf>,
    bins: Binaries,
    opts: Options,
    ca: Ca,
    /// (client, peer) port of each etcd member.
    etcd_ports: Vec<(u16, u16)>,
    api_ports: Vec<u16>,
    /// In front of the kube-apiservers when there is more than one.
    balancer: Option<crate::balancer::TcpBalancer>,
    server_url: String,
    admin: UserKubeconfig,
    procs: Mutex<Procs>,
    seq: AtomicU64,
    startup: StartupTimes,
    keep_dir: bool,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);
static SHARED: tokio::sync::OnceCell<std::result::Result<Option<ControlPlane>, String>> =
    tokio::sync::OnceCell::const_new();

fn free_ports(n: usize) -> Result<Vec<u16>> {
    // Hold all listeners until every port is chosen so they differ.
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free loopback port"))?;
        ports.push(l.local_addr().map_err(io("read a bound port"))?.port());
        held.push(l);
    }
    Ok(ports)
}

fn write_file(path: &Path, data: &str, mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(format!("write {}", path.display())))?;
    f.write_all(data.as_bytes())
        .map_err(io(format!("write {}", path.display())))
}

fn base_dir() -> PathBuf {
    std::env::var_os("TLSBOOT_HARNESS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tlsboot-harness"))
}

/// Plain HTTP/1.0 GET of `path` against etcd's client port: the whole answer on `200`,
/// else its status line.
async fn http_get(port: u16, path: &str) -> std::result::Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    if text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200") {
        return Ok(text);
    }
    Err(text.lines().next().unwrap_or("empty answer").to_string())
}

/// etcd's `/health` says `"health":"true"`.
async fn etcd_healthy(port: u16) -> std::result::Result<(), String> {
    let text = http_get(port, "/health").await?;
    if text.contains("\"health\":\"true\"") {
        return Ok(());
    }
    Err(text.lines().last().unwrap_or("empty answer").to_string())
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and (unless disabled) kube-controller-manager
    /// and returns once the API server is ready and `kube-system` exists.
    pub async fn start(opts: Options) -> Result<ControlPlane> {
        // Free ports are chosen, released, then bound by the child: another
        // process on the machine can take one in between. Retry with new ones.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(opts.clone(), attempt == 3).await {
                Err(e) if attempt < 3 && is_port_clash(&e) => {
                    tracing::warn!(error = %e, "port taken during start-up; retrying with new ports");
                }
                r => return r,
            }
        }
    }

    async fn start_once(opts: Options, last_attempt: bool) -> Result<ControlPlane> {
        let t0 = Instant::now();
        let bins = match &opts.binaries {
            Some(b) => b.clone(),
            None => find_binaries()?,
        };
        let pid = std::process::id();
        let n = RUN_SEQ.fetch_add(1, Ordering::SeqCst);
        let base = base_dir();
        let dir = base.join(format!("cp-{pid}-{n}"));
        let shm = Path::new("/dev/shm");
        let etcd_parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            base.clone()
        };
        sweep_stale(&etcd_parent, "tlsboot-etcd-");
        let members = opts.etcd_members.max(1);
        let apiservers = opts.apiservers.max(1);
        // Member 0 keeps the single-member name, so one-member runs look as before.
        let etcd_dirs: Vec<PathBuf> = (0..members)
            .map(|m| match m {
                0 => etcd_parent.join(format!("tlsboot-etcd-{pid}-{n}")),
                _ => etcd_parent.join(format!("tlsboot-etcd-{pid}-{n}-m{m}")),
            })
            .collect();
        // Same pid and sequence number = a dead run's leftovers: start clean.
        let _ = std::fs::remove_dir_all(&dir);
        for d in &etcd_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        for d in [dir.join("pki"), dir.join("logs")].iter().chain(&etcd_dirs) {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
        }
        // Until the owner decides otherwise, anything we leave is swept at exit.
        remove_at_exit(&dir, true);
        for d in &etcd_dirs {
            remove_at_exit(d, false);
        }

        let ports = free_ports(2 * members + apiservers)?;
        let etcd_ports: Vec<(u16, u16)> = ports[..2 * members]
            .chunks(2)
            .map(|p| (p[0], p[1]))
            .collect();
        let api_ports = ports[2 * members..].to_vec();
        let balancer = match apiservers {
            1 => None,
            _ => Some(crate::balancer::TcpBalancer::start(&api_ports)?),
        };
        let server_port = balancer.as_ref().map_or(api_ports[0], |b| b.port());
        let server_url = format!("https://127.0.0.1:{server_port}");

        // PKI: one CA for client auth and CSR signing; the serving cert is
        // from it too, so one trust anchor serves every client.
        let ca = Ca::generate("tlsboot-test-ca")?;
        let serving = ca.serving_cert("kube-apiserver", &["127.0.0.1", "localhost"])?;
        let sa_key = crate::pki::new_key()?;
        let pki = dir.join("pki");
        write_file(&pki.join("ca.crt"), ca.cert_pem(), 0o644)?;
        write_file(&pki.join("ca.key"), ca.key_pem(), 0o600)?;
        write_file(&pki.join("apiserver.crt"), &serving.cert_pem, 0o644)?;
        write_file(&pki.join("apiserver.key"), &serving.key_pem, 0o600)?;
        write_file(&pki.join("sa.key"), &sa_key.serialize_pem(), 0o600)?;
        write_file(&pki.join("sa.pub"), &sa_key.public_key_pem(), 0o644)?;
        let admin_cert = ca.client_cert(ADMIN_USER, &["system:masters"])?;
        let admin = UserKubeconfig::write(
            &dir.join("admin.kubeconfig"),
            &server_url,
            ca.cert_pem(),
            ADMIN_USER,
            &Credential::ClientCert(admin_cert),
        )
        .await?;
        let pki_time = t0.elapsed();

        let mut cp = ControlPlane {
            dir,
            etcd_dirs,
            bins,
            opts,
            ca,
            etcd_ports,
            api_ports,
            balancer,
            server_url,
            admin,
            procs: Mutex::new(Procs {
                etcd: (0..members).map(|_| None).collect(),
                apiserver: (0..apiservers).map(|_| None).collect(),
                kcm: None,
            }),
            seq: AtomicU64::new(0),
            startup: StartupTimes {
                pki: pki_time,
                ..StartupTimes::default()
            },
            keep_dir: false,
        };
        if let Err(e) = cp.boot().await {
            // Keep the logs the error message points to (unless we retry).
            cp.keep_dir = last_attempt || !is_port_clash(&e);
            return Err(e);
        }
        cp.startup.total = t0.elapsed();
        tracing::debug!(url = %cp.server_url, dir = %cp.dir.display(), times = ?cp.startup, "control plane ready");
        Ok(cp)
    }

    async fn boot(&mut self) -> Result<()> {
        let t = Instant::now();
        self.start_component(Component::Etcd).await?;
        self.startup.etcd = t.elapsed();
        let t = Instant::now();
        self.start_component(Component::ApiServer).await?;
        self.startup.apiserver = t.elapsed();
        if self.opts.seed_rbac {
            self.apply_seed_rbac().await?;
        }
        if self.opts.controller_manager {
            let t = Instant::now();
            self.start_component(Component::ControllerManager).await?;
            self.startup.controller_manager = t.elapsed();
        }
        Ok(())
    }

    /// The control plane shared by all tests of this test binary (KCM with
    /// `csrsigning` only, seed RBAC applied). Started on first use; killed at
    /// process exit, even after failures or signals.
    ///
    /// `Ok(None)`: binaries, kubectl or curl are missing and skipping is allowed
    /// (a loud message was printed; skip the test). In CI (`CI=true`) or with
    /// `TLSBOOT_REQUIRE_CONTROLPLANE=1` that is an error instead, so the test fails.
    pub async fn shared() -> Result<Option<&'static ControlPlane>> {
        let cell = SHARED
            .get_or_init(|| async {
                let bins = match binaries_for_tests() {
                    Ok(Some(b)) => b,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                };
                let opts = Options {
                    binaries: Some(bins),
                    seed_rbac: true,
                    ..Options::default()
                };
                match ControlPlane::start(opts).await {
                    Ok(cp) => {
                        eprintln!(
                            "tlsboot-harness: shared control plane at {} started in {:.1?} (dir {})",
                            cp.server_url,
                            cp.startup.total,
                            cp.dir.display()
                        );
                        Ok(Some(cp))
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
        match cell {
            Ok(cp) => Ok(cp.as_ref()),
            // The first failure is reported to every test that asks.
            Err(msg) => Err(Error::Invalid(format!(
                "the shared control plane failed to start: {msg}"
            ))),
        }
    }

    fn log_of(&self, c: Component) -> PathBuf {
        self.member_log(c, 0)
    }

    /// Member 0 logs to `<component>.log` (as a one-member run does), member i to
    /// `<component>-<i>.log`.
    fn member_log(&self, c: Component, i: usize) -> PathBuf {
        let name = match i {
            0 => format!("{}.log", c.name()),
            _ => format!("{}-{i}.log", c.name()),
        };
        self.dir.join("logs").join(name)
    }

    /// How many instances of `c` this control plane runs.
    pub fn members(&self, c: Component) -> usize {
        match c {
            Component::Etcd => self.etcd_ports.len(),
            Component::ApiServer => self.api_ports.len(),
            Component::ControllerManager => 1,
        }
    }

    fn etcd_client_urls(&self) -> String {
        self.etcd_ports
            .iter()
            .map(|(client, _)| format!("http://127.0.0.1:{client}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn command(&self, c: Component, i: usize) -> Command {
        let pki = self.dir.join("pki");
        let p = |f: &str| pki.join(f).display().to_string();
        match c {
            Component::Etcd => {
                let (client_port, peer_port) = self.etcd_ports[i];
                let client = format!("http://127.0.0.1:{client_port}");
                let peer = format!("http://127.0.0.1:{peer_port}");
                let name = |m: usize| match self.etcd_ports.len() {
                    1 => "default".to_string(),
                    _ => format!("m{m}"),
                };
                let cluster = self
                    .etcd_ports
                    .iter()
                    .enumerate()
                    .map(|(m, (_, peer))| format!("{}=http://127.0.0.1:{peer}", name(m)))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut cmd = Command::new(&self.bins.etcd);
                cmd.args([
                    format!("--name={}", name(i)),
                    format!("--data-dir={}", self.etcd_dirs[i].display()),
                    format!("--listen-client-urls={client}"),
                    format!("--advertise-client-urls={client}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-advertise-peer-urls={peer}"),
                    format!("--initial-cluster={cluster}"),
                    "--initial-cluster-token=tlsboot-harness".into(),
                    "--unsafe-no-fsync=true".into(),
                    "--quota-backend-bytes=2147483648".into(),
                    "--log-level=warn".into(),
                ])
                .args(&self.opts.etcd_args);
                cmd
            }
            Component::ApiServer => {
                let mut cmd = Command::new(&self.bins.kube_apiserver);
                cmd.args([
                    format!("--etcd-servers={}", self.etcd_client_urls()),
                    "--bind-address=127.0.0.1".into(),
                    "--advertise-address=127.0.0.1".into(),
                    format!("--secure-port={}", self.api_ports[i]),
                    "--endpoint-reconciler-type=none".into(),
                    format!(
                        "--cert-dir={}",
                        self.dir.join(format!("apiserver-{i}")).display()
                    ),
                    format!("--tls-cert-file={}", p("apiserver.crt")),
                    format!("--tls-private-key-file={}", p("apiserver.key")),
                    format!("--client-ca-file={}", p("ca.crt")),
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                    format!("--service-account-key-file={}", p("sa.pub")),
                    format!("--service-account-signing-key-file={}", p("sa.key")),
                    "--service-cluster-ip-range=10.0.0.0/24".into(),
                    "--authorization-mode=Node,RBAC".into(),
                    "--enable-bootstrap-token-auth=true".into(),
                    "--enable-admission-plugins=NodeRestriction".into(),
                    "--allow-privileged=true".into(),
                    "--v=1".into(),
                ])
                .args(&self.opts.apiserver_args);
                cmd
            }
            Component::ControllerManager => {
                let mut cmd = Command::new(&self.bins.kube_controller_manager);
                cmd.args([
                    format!("--kubeconfig={}", self.admin.path().display()),
                    format!("--controllers={}", self.opts.controllers()),
                    format!("--cluster-signing-cert-file={}", p("ca.crt")),
                    format!("--cluster-signing-key-file={}", p("ca.key")),
                    "--leader-elect=false".into(),
                    "--use-service-account-credentials=false".into(),
                    "--secure-port=0".into(),
                    "--v=2".into(),
                ]);
                if let Some(q) = self.opts.kcm_api_qps {
                    cmd.arg(format!("--kube-api-qps={q}"));
                }
                if let Some(b) = self.opts.kcm_api_burst {
                    cmd.arg(format!("--kube-api-burst={b}"));
                }
                cmd.args(&self.opts.kcm_args);
                cmd
            }
        }
    }

    fn lock_procs(&self) -> std::sync::MutexGuard<'_, Procs> {
        self.procs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_member(&self, c: Component, i: usize) -> Result<()> {
        if i < self.members(c) {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{} {i} does not exist: this control plane runs {}",
            c.name(),
            self.members(c)
        )))
    }

    /// Starts every instance of one component (again) on the same ports and data, and
    /// waits until each is ready. Stops running instances first. For fault injection:
    /// `stop(Component::Etcd)`, then `start_component(Component::Etcd)`.
    pub async fn start_component(&self, c: Component) -> Result<()> {
        let all: Vec<usize> = (0..self.members(c)).collect();
        for &i in &all {
            self.spawn_member(c, i)?;
        }
        // etcd members only turn healthy once a quorum runs: spawn all, then wait.
        for i in all {
            self.wait_member(c, i).await?;
        }
        Ok(())
    }

    /// Starts (again) instance `i` of `c` and waits until it is ready; for one etcd
    /// member that needs the others' quorum.
    ///
    /// A kube-apiserver behind the balancer is out of its rotation until it is ready
    /// (a health-checking load balancer): before that it answers, but refuses bootstrap
    /// tokens its informer has not seen yet.
    pub async fn start_member(&self, c: Component, i: usize) -> Result<()> {
        let lb = self.balancer.as_ref().filter(|_| c == Component::ApiServer);
        if let Some(lb) = lb {
            lb.set_in_rotation(i, false);
        }
        self.spawn_member(c, i)?;
        let ready = self.wait_member(c, i).await;
        if let Some(lb) = lb {
            lb.set_in_rotation(i, true);
        }
        ready
    }

    fn spawn_member(&self, c: Component, i: usize) -> Result<()> {
        self.check_member(c, i)?;
        self.stop_member(c, i);
        let proc = Proc::spawn(c.name(), self.command(c, i), &self.member_log(c, i))?;
        if let Some(slot) = self.lock_procs().slot(c, i) {
            *slot = Some(proc);
        }
        Ok(())
    }

    async fn wait_member(&self, c: Component, i: usize) -> Result<()> {
        match c {
            Component::Etcd => {
                let port = self.etcd_ports[i].0;
                self.wait_until(c, i, "GET /health", || etcd_healthy(port))
                    .await
            }
            Component::ApiServer => {
                let client = self.member_admin_client(i)?;
                self.wait_until(c, i, "GET /readyz", || {
                    let client = client.clone();
                    async move { api_ready(&client).await }
                })
                .await
            }
            // With --secure-port=0 KCM has no health endpoint; it is "ready"
            // when it is still alive after its first API round-trips. Tests
            // that need signing wait for a certificate with a timeout anyway.
            Component::ControllerManager => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let guard = self.lock_procs();
                if let Some(p) = guard.get(c, i)
                    && let Some(status) = p.exited()
                {
                    return Err(p.exit_error(status));
                }
                Ok(())
            }
        }
    }

    /// An admin client for kube-apiserver `i` itself, bypassing the load balancer.
    pub fn member_admin_client(&self, i: usize) -> Result<kube::Client> {
        let mut config = self.admin.config();
        config.cluster_url = self
            .apiserver_url(i)
            .parse()
            .map_err(|e| Error::Invalid(format!("kube-apiserver {i} URL: {e}")))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// `https://127.0.0.1:<port>` of kube-apiserver `i` itself (not the load balancer).
    pub fn apiserver_url(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}", self.api_ports[i])
    }

    /// The load balancer in front of the kube-apiservers, when there is more than one.
    pub fn balancer(&self) -> Option<&crate::balancer::TcpBalancer> {
        self.balancer.as_ref()
    }

    /// Which etcd member leads the Raft group now (from each member's `/metrics`),
    /// or `None` while there is no leader.
    pub async fn etcd_leader(&self) -> Option<usize> {
        for (i, (port, _)) in self.etcd_ports.iter().enumerate() {
            if let Ok(text) = http_get(*port, "/metrics").await
                && text.lines().any(|l| l.trim() == "etcd_server_is_leader 1")
            {
                return Some(i);
            }
        }
        None
    }

    async fn wait_until<F, Fut>(
        &self,
        c: Component,
        i: usize,
        what: &str,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), String>>,
    {
        let deadline = Instant::now() + self.opts.timeout;
        loop {
            {
                let guard = self.lock_procs();
                let Some(p) = guard.get(c, i) else {
                    return Err(Error::Invalid(format!("{} is not running", c.name())));
                };
                if let Some(status) = p.exited() {
                    return Err(p.exit_error(status));
                }
            }
            let last = match probe().await {
                Ok(()) => return Ok(()),
                Err(e) => format!("{what}: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    process: c.name(),
                    timeout: self.opts.timeout,
                    last,
                    log: self.member_log(c, i),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills every instance of one component (SIGKILL to its process group) and reaps
    /// it; ports and data stay for [`ControlPlane::start_component`].
    pub fn stop(&self, c: Component) {
        for i in 0..self.members(c) {
            self.stop_member(c, i);
        }
    }

    /// Kills instance `i` of `c` (SIGKILL) and reaps it; its ports and data stay.
    pub fn stop_member(&self, c: Component, i: usize) {
        let proc = self.lock_procs().slot(c, i).and_then(Option::take);
        if let Some(p) = proc {
            p.kill();
        }
    }

    /// Freezes instance `i` of `c` (SIGSTOP): its sockets stay open and accept
    /// connections, nothing answers — a hung server, not a dead one.
    pub fn pause_member(&self, c: Component, i: usize) {
        if let Some(p) = self.lock_procs().get(c, i) {
            p.pause();
        }
    }

    /// Lets a paused instance run again (SIGCONT).
    pub fn resume_member(&self, c: Component, i: usize) {
        if let Some(p) = self.lock_procs().get(c, i) {
            p.resume();
        }
    }

    /// Like [`ControlPlane::stop`] but SIGTERM first (graceful shutdown),
    /// SIGKILL after `grace`. Blocks the calling thread up to `grace` per instance.
    pub fn terminate(&self, c: Component, grace: Duration) {
        for i in 0..self.members(c) {
            let proc = self.lock_procs().slot(c, i).and_then(Option::take);
            if let Some(p) = proc {
                p.terminate(grace);
            }
        }
    }

    /// Whether the component's (first) process is running.
    pub fn is_running(&self, c: Component) -> bool {
        self.is_member_running(c, 0)
    }

    /// Whether instance `i` of `c` is running.
    pub fn is_member_running(&self, c: Component, i: usize) -> bool {
        let guard = self.lock_procs();
        guard.get(c, i).is_some_and(|p| p.exited().is_none())
    }

    /// The component's (first) process id (its process group id too), while it runs.
    pub fn pid(&self, c: Component) -> Option<u32> {
        let guard = self.lock_procs();
        guard.get(c, 0).map(|p| p.pid())
    }

    /// Waits for `/readyz` = 200 and `kube-system` through [`ControlPlane::server_url`],
    /// e.g. after a restart.
    pub async fn wait_ready(&self) -> Result<()> {
        let client = self.admin_client()?;
        let live = (0..self.members(Component::ApiServer))
            .find(|i| self.is_member_running(Component::ApiServer, *i))
            .unwrap_or(0);
        self.wait_until(Component::ApiServer, live, "GET /readyz", || {
            let client = client.clone();
            async move { api_ready(&client).await }
        })
        .await
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The cluster CA (trust anchor for the API server, issuer of all client
    /// certificates including those KCM signs).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The CA certificate file (`pki/ca.crt`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        self.admin.path()
    }

    pub fn admin(&self) -> &UserKubeconfig {
        &self.admin
    }

    /// A new admin client on the current tokio runtime.
    pub fn admin_client(&self) -> Result<kube::Client> {
        self.admin.client()
    }

    /// The run directory: `pki/`, `logs/`, `*.kubeconfig`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// etcd's data directory (tmpfs), kept across etcd restarts.
    pub fn etcd_data_dir(&self) -> &Path {
        &self.etcd_dirs[0]
    }

    /// A component's log file (appended to across restarts).
    pub fn log_path(&self, c: Component) -> PathBuf {
        self.log_of(c)
    }

    pub fn startup_times(&self) -> StartupTimes {
        self.startup
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// `kubectl` (from PATH) preset with `--kubeconfig=<admin>`.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", self.admin.path().display()));
        cmd
    }

    /// A name unique within this control plane: `<prefix>-<n>-<random>`,
    /// lower-case DNS-1123, so tests sharing a control plane never collide.
    pub fn unique_name(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut r = [0u8; 3];
        let _ = getrandom::fill(&mut r);
        format!("{prefix}-{n}-{:02x}{:02x}{:02x}", r[0], r[1], r[2])
    }

    fn kubeconfig_file(&self, stem: &str) -> PathBuf {
        let safe: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.kubeconfig"))
    }

    /// A kubeconfig (file + client) for an arbitrary client-certificate
    /// identity signed by the cluster CA: user `user` in `groups`.
    pub async fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<UserKubeconfig> {
        let ck = self.ca.client_cert(user, groups)?;
        UserKubeconfig::write(
            &self.kubeconfig_file(&format!("user-{user}")),
            &self.server_url,
            self.ca_pem(),
            user,
            &Credential::ClientCert(ck),
        )
        .await
    }

    /// A kubeconfig for ServiceAccount `namespace/name` with a token from the
    /// TokenRequest API (1 day). Creates the namespace and account if needed.
    /// The account has no permissions until the caller binds some.
    pub async fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<UserKubeconfig> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        let client = self.admin_client()?;
        let ssa = PatchParams::apply("tlsboot-harness").force();
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .patch(namespace, &ssa, &Patch::Apply(&ns))
            .await?;
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        let sas = Api::<ServiceAccount>::namespaced(client, namespace);
        sas.patch(name, &ssa, &Patch::Apply(&sa)).await?;
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(86_400),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let tr: TokenRequest = sas
            .create_subresource("token", name, &PostParams::default(), &req)
            .await?;
        let token = tr
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Invalid("TokenRequest returned no status".into()))?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        UserKubeconfig::write(
            &self.kubeconfig_file(&format!("sa-{namespace}-{name}")),
            &self.server_url,
            self.ca_pem(),
            &user,
            &Credential::Token(token),
        )
        .await
    }

    /// Creates a bootstrap-token Secret in `kube-system` exactly as kubeadm
    /// does and waits until kube-apiserver's authenticator accepts it.
    pub async fn create_bootstrap_token(
        &self,
        opts: &BootstrapTokenOptions,
    ) -> Result<BootstrapToken> {
        let token = BootstrapToken::generate()?;
        crate::token::create_secret(&self.admin_client()?, &token, opts).await?;
        if opts.usages.iter().any(|u| u == "authentication") {
            let kc = self.bootstrap_kubeconfig(&token).await?;
            crate::token::wait_authenticates(&kc.client()?, &token, self.opts.timeout).await?;
        }
        Ok(token)
    }

    /// A kubelet bootstrap kubeconfig for `token` (what `--bootstrap-kubeconfig` holds).
    pub async fn bootstrap_kubeconfig(&self, token: &BootstrapToken) -> Result<UserKubeconfig> {
        UserKubeconfig::write(
            &self.kubeconfig_file(&format!("bootstrap-{}", token.id)),
            &self.server_url,
            self.ca_pem(),
            "kubelet-bootstrap",
            &Credential::Token(token.token()),
        )
        .await
    }

    /// Applies [`SEED_BINDINGS`] (idempotent, server-side apply).
    pub async fn apply_seed_rbac(&self) -> Result<()> {
        apply_seed_rbac(&self.admin_client()?).await
    }

    /// Kills KCM, kube-apiserver and etcd (in that order). Also done on drop.
    pub fn stop_all(&self) {
        for c in [
            Component::ControllerManager,
            Component::ApiServer,
            Component::Etcd,
        ] {
            self.stop(c);
        }
    }
}

fn is_port_clash(e: &Error) -> bool {
    matches!(e, Error::ProcessExited { tail, .. } if tail.contains("address already in use"))
}

async fn api_ready(client: &kube::Client) -> std::result::Result<(), String> {
    let get = |path: &str| {
        http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())
    };
    client
        .request_text(get("/readyz")?)
        .await
        .map_err(|e| e.to_string())?;
    // /readyz does not cover the system-namespaces controller (it only starts
    // a goroutine), and bootstrap-token Secrets need kube-system.
    client
        .request_text(get("/api/v1/namespaces/kube-system")?)
        .await
        .map_err(|e| format!("kube-system: {e}"))?;
    Ok(())
}

/// A ClusterRoleBinding `name` of ClusterRole `role` to Group `group`: the only shape of
/// binding TLS bootstrapping needs.
pub fn group_binding(name: &str, role: &str, group: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: group.into(),
            namespace: None,
        }]),
    }
}

/// Applies [`SEED_BINDINGS`] with `client` (idempotent, server-side apply).
pub async fn apply_seed_rbac(client: &kube::Client) -> Result<()> {
    let api = Api::<ClusterRoleBinding>::all(client.clone());
    let ssa = PatchParams::apply("tlsboot-harness").force();
    for (name, role, group) in SEED_BINDINGS {
        let crb = group_binding(name, role, group);
        api.patch(name, &ssa, &Patch::Apply(&crb)).await?;
    }
    Ok(())
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_all();
        for d in &self.etcd_dirs {
            let _ = std::fs::remove_dir_all(d);
            forget_dir(d);
        }
        if std::thread::panicking() || self.keep_dir {
            eprintln!(
                "tlsboot-harness: control-plane logs kept in {}",
                self.dir.join("logs").display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
            forget_dir(&self.dir);
        }
    }
}
