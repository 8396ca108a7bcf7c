//! The **real** kubelet (`k8s.io/kubernetes/cmd/kubelet` v1.37.2, built by
//! `controlplane/build-kubelet.sh`) beside [`crate::SimKubelet`]: upstream's own
//! certificate code, so the tests cannot share our misreadings of it.
//!
//! It runs without a container engine: `fakecri` (a few lines around
//! `k8s.io/cri-client/pkg/fake`) answers the CRI on a unix socket with an in-memory
//! runtime. The kubelet bootstraps, registers its Node, reports Ready and serves TLS;
//! **no pod ever runs** (the fake runtime starts nothing).
//!
//! The kubelet changes its host: it writes six sysctls (`vm.overcommit_memory`,
//! `vm.panic_on_oom`, `kernel.panic`, `kernel.panic_on_oops`, `kernel.keys.root_maxkeys`,
//! `kernel.keys.root_maxbytes`) and creates `/var/lib/kubelet/device-plugins`,
//! `/var/log/containers` and `/var/log/pods`. So it runs in a private mount namespace
//! (`unshare --mount --propagation private`, hence root) where `/var/lib` and `/var/log`
//! are bind mounts of directories of its own and each of those sysctl files is a bind
//! mount of a copy: the writes land in the copies and the host keeps its values. The
//! namespace dies with the kubelet, and [`RealKubelet::stop`] removes its directory.
//! It shares the host's network namespace: it listens on 127.0.0.1 only, on ports
//! chosen free, and `--node-ip` is the host's own non-loopback address (the kubelet
//! refuses a loopback node IP). Several can share a control plane (each has its own
//! namespace, directory and ports), but all report the host's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::binaries::{BIN_DIR_ENV, is_executable, skipping_forbidden};
use crate::error::{Error, Result, io};
use crate::process::{ChildProcess, log_tail};

/// Overrides the node IP the real kubelet reports (default: the host's address on its
/// default route).
pub const NODE_IP_ENV: &str = "TLSBOOT_KUBELET_NODE_IP";

/// The sysctls the kubelet's container manager sets (`setupKernelTunables` in
/// pkg/kubelet/cm/container_manager_linux.go).
pub const KUBELET_SYSCTLS: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// Runs inside the new mount namespace, then becomes the kubelet. `$1` = the kubelet's
/// directory; the rest is the kubelet's command line.
const NAMESPACE_SCRIPT: &str = r#"set -eu
d="$1"; shift
mkdir -p "$d/host/var-lib" "$d/host/var-log" "$d/host/sysctl"
mount --bind "$d/host/var-lib" /var/lib
mount --bind "$d/host/var-log" /var/log
for s in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  # A kernel without one of them: the kubelet cannot write it either.
  [ -e "/proc/sys/$s" ] || continue
  f="$d/host/sysctl/$(echo "$s" | tr / .)"
  cat "/proc/sys/$s" > "$f"
  mount --bind "$f" "/proc/sys/$s"
done
exec "$@"
"#;

/// The kubelet and fakecri executables.
#[derive(Debug, Clone)]
pub struct KubeletBinaries {
    pub kubelet: PathBuf,
    pub fakecri: PathBuf,
}

/// `controlplane/build-kubelet.sh` of this checkout.
pub fn kubelet_build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../controlplane/build-kubelet.sh")
}

fn bin_dir(script_flag: Option<&str>) -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(BIN_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    let script = kubelet_build_script();
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    if let Some(f) = script_flag {
        cmd.arg(f);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(io(format!("run {}", script.display())))?;
    if !out.status.success() {
        return Err(Error::KubeletMissing {
            detail: format!("{} failed: {}", script.display(), out.status),
        });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Finds the built kubelet and fakecri without building, and checks that this process
/// can give the kubelet its own mount namespace (root, `unshare`, `mount` on PATH).
pub fn find_kubelet_binaries() -> Result<KubeletBinaries> {
    let dir = bin_dir(Some("--print"))?;
    let bins = KubeletBinaries {
        kubelet: dir.join("kubelet"),
        fakecri: dir.join("fakecri"),
    };
    let mut missing: Vec<String> = [&bins.kubelet, &bins.fakecri]
        .into_iter()
        .filter(|p| !is_executable(p))
        .map(|p| format!("not found: {}", p.display()))
        .collect();
    for tool in ["unshare", "mount"] {
        if crate::binaries::on_path(tool).is_none() {
            missing.push(format!("{tool} is not on PATH"));
        }
    }
    // The effective uid (second field of `Uid:`), read from /proc: no libc call needed.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if !root {
        missing.push("not running as root (needed for the private mount namespace)".into());
    }
    if missing.is_empty() {
        Ok(bins)
    } else {
        Err(Error::KubeletMissing {
            detail: missing.join(", "),
        })
    }
}

/// Runs `controlplane/build-kubelet.sh` (a no-op when cached), then finds the binaries.
pub fn build_kubelet_binaries() -> Result<KubeletBinaries> {
    bin_dir(None)?;
    find_kubelet_binaries()
}

/// For tests: like [`crate::binaries_for_tests`]: `Ok(None)` after a loud message when
/// the kubelet cannot run here and skipping is allowed, the error when it is not.
pub fn kubelet_binaries_for_tests() -> Result<Option<KubeletBinaries>> {
    match find_kubelet_binaries() {
        Ok(b) => Ok(Some(b)),
        Err(e @ Error::KubeletMissing { .. }) if !skipping_forbidden() => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n==================== SKIPPED: needs the real kubelet ====================\n\
                 {e}\n\
                 (with CI=true or {}=1 these tests fail instead)\n\
                 =========================================================================\n",
                crate::binaries::REQUIRE_ENV
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The host's own non-loopback address: `$TLSBOOT_KUBELET_NODE_IP`, else the source
/// address of the default route (a UDP "connect" sends nothing).
pub fn host_address() -> Result<IpAddr> {
    if let Some(v) = std::env::var_os(NODE_IP_ENV) {
        let s = v.to_string_lossy();
        return s
            .parse()
            .map_err(|_| Error::Invalid(format!("{NODE_IP_ENV}={s} is not an IP address")));
    }
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(io("bind a UDP socket"))?;
    // TEST-NET-3: never answered, only used to pick the route.
    sock.connect((Ipv4Addr::new(203, 0, 113, 1), 9))
        .map_err(io("find the host's address (no default route?)"))?;
    let ip = sock
        .local_addr()
        .map_err(io("read the UDP socket's address"))?
        .ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(Error::Invalid(format!(
            "the host's address on its default route is {ip}; set {NODE_IP_ENV} to a \
             non-loopback local address"
        )));
    }
    Ok(ip)
}

/// How to run one real kubelet.
#[derive(Debug, Clone)]
pub struct RealKubeletOptions {
    /// `--hostname-override`: the Node's name.
    pub node_name: String,
    /// KubeletConfiguration `rotateCertificates`: `true` = the client certificate
    /// manager (CSR `generateName: csr-`), `false` = `bootstrap.LoadClientCert`
    /// (CSR named `node-csr-<digest>`), and no rotation.
    pub rotate_certificates: bool,
    /// KubeletConfiguration `serverTLSBootstrap`: request the serving certificate with a CSR.
    pub server_tls_bootstrap: bool,
    /// `--node-ip`; `None` = [`host_address`].
    pub node_ip: Option<IpAddr>,
    /// klog `-v`.
    pub verbosity: u8,
}

impl RealKubeletOptions {
    pub fn new(node_name: impl Into<String>) -> RealKubeletOptions {
        RealKubeletOptions {
            node_name: node_name.into(),
            rotate_certificates: true,
            server_tls_bootstrap: true,
            node_ip: None,
            verbosity: 2,
        }
    }
}

/// A running real kubelet and its fake CRI. Dropping it kills both and removes its
/// directory (kept when the dropping thread panics, for the logs).
#[derive(Debug)]
pub struct RealKubelet {
    node_name: String,
    node_ip: IpAddr,
    dir: PathBuf,
    port: u16,
    healthz_port: u16,
    kubelet: Option<ChildProcess>,
    cri: Option<ChildProcess>,
}

fn free_port_pair() -> Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free loopback port"))?;
    let b = TcpListener::bind("127.0.0.1:0").map_err(io("bind a free loopback port"))?;
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port());
    Ok((
        port(&a).map_err(io("read a bound port"))?,
        port(&b).map_err(io("read a bound port"))?,
    ))
}

fn write(path: &Path, data: &str) -> Result<()> {
    std::fs::write(path, data).map_err(io(format!("write {}", path.display())))
}

impl RealKubelet {
    /// Starts fakecri, then the kubelet, in `dir` (created; must not exist), with
    /// `bootstrap_kubeconfig` as `--bootstrap-kubeconfig`. Returns once both run; the
    /// kubelet bootstraps on its own from there.
    pub async fn start(
        bins: &KubeletBinaries,
        dir: &Path,
        bootstrap_kubeconfig: &Path,
        opts: &RealKubeletOptions,
    ) -> Result<RealKubelet> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        // Absolute paths: the kubelet resolves relative ones against its own cwd.
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolve {}", dir.display())))?;
        let node_ip = match opts.node_ip {
            Some(ip) => ip,
            None => host_address()?,
        };
        let (port, healthz_port) = free_port_pair()?;
        let socket = dir.join("cri.sock");
        let endpoint = format!("unix://{}", socket.display());

        let mut cri_cmd = Command::new(&bins.fakecri);
        cri_cmd.arg(&endpoint);
        let cri = ChildProcess::spawn("fakecri", cri_cmd, &dir.join("fakecri.log"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            if let Some(status) = cri.exited() {
                return Err(cri.exit_error(status));
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("fakecri to create {}", socket.display()),
                    timeout: Duration::from_secs(30),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let config = dir.join("kubelet-config.yaml");
        write(
            &config,
            &format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\n\
                 kind: KubeletConfiguration\n\
                 address: 127.0.0.1\n\
                 port: {port}\n\
                 healthzBindAddress: 127.0.0.1\n\
                 healthzPort: {healthz_port}\n\
                 readOnlyPort: 0\n\
                 authentication: {{anonymous: {{enabled: false}}, webhook: {{enabled: false}}}}\n\
                 authorization: {{mode: AlwaysAllow}}\n\
                 cgroupsPerQOS: false\n\
                 enforceNodeAllocatable: []\n\
                 failSwapOn: false\n\
                 failCgroupV1: false\n\
                 cgroupDriver: cgroupfs\n\
                 rotateCertificates: {}\n\
                 serverTLSBootstrap: {}\n\
                 containerRuntimeEndpoint: {endpoint}\n",
                opts.rotate_certificates, opts.server_tls_bootstrap
            ),
        )?;
        let script = dir.join("namespace.sh");
        write(&script, NAMESPACE_SCRIPT)?;
        let d = |p: &str| dir.join(p).display().to_string();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh"])
            .arg(&script)
            .arg(&dir)
            .arg(&bins.kubelet)
            .arg(format!("--config={}", config.display()))
            .arg(format!(
                "--bootstrap-kubeconfig={}",
                bootstrap_kubeconfig.display()
            ))
            .arg(format!("--kubeconfig={}", d("kubeconfig")))
            .arg(format!("--cert-dir={}", d("pki")))
            .arg(format!("--root-dir={}", d("root")))
            .arg(format!("--hostname-override={}", opts.node_name))
            .arg(format!("--node-ip={node_ip}"))
            .arg(format!("--v={}", opts.verbosity));
        let kubelet = ChildProcess::spawn("kubelet", cmd, &dir.join("kubelet.log"))?;
        tracing::debug!(node = %opts.node_name, pid = kubelet.pid(), port, dir = %dir.display(), "real kubelet started");
        Ok(RealKubelet {
            node_name: opts.node_name.clone(),
            node_ip,
            dir,
            port,
            healthz_port,
            kubelet: Some(kubelet),
            cri: Some(cri),
        })
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    pub fn node_ip(&self) -> IpAddr {
        self.node_ip
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kubelet's HTTPS port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn healthz_port(&self) -> u16 {
        self.healthz_port
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kubelet.log")
    }

    pub fn cri_log_path(&self) -> PathBuf {
        self.dir.join("fakecri.log")
    }

    /// `--kubeconfig`: written by the kubelet once its client certificate is issued.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn client_cert_path(&self) -> PathBuf {
        self.cert_dir().join("kubelet-client-current.pem")
    }

    pub fn server_cert_path(&self) -> PathBuf {
        self.cert_dir().join("kubelet-server-current.pem")
    }

    /// The last `lines` lines of the kubelet's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// Whether the kubelet's log holds `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
    }

    /// The kubelet's exit status once it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.kubelet.as_ref().and_then(ChildProcess::exited)
    }

    /// Waits until `ready()` holds; fails with the log's tail on timeout.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&RealKubelet) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready(self) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!(
                        "{what} (kubelet {}; log {}, last lines:\n{})",
                        self.node_name,
                        self.log_path().display(),
                        self.log_tail(25)
                    ),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for a line of the kubelet's log holding `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_until(&format!("the kubelet to log {needle:?}"), timeout, |k| {
            k.log_contains(needle)
        })
        .await
    }

    /// The PEM blocks of `path` (the kubelet's `*-current.pem` holds the certificate
    /// and its key), or `None` while it does not exist.
    pub fn read_pem(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// Connects to the kubelet's HTTPS port, verifies its certificate against `ca_pem`
    /// for the name `server_name` (a SAN the serving CSR asked for), and returns the DER
    /// of the certificate it presented.
    pub async fn presented_certificate(&self, ca_pem: &str, server_name: &str) -> Result<Vec<u8>> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let c = c.map_err(|e| Error::Invalid(format!("CA PEM: {e}")))?;
            roots
                .add(c)
                .map_err(|e| Error::Invalid(format!("CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Invalid(format!("TLS config: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| Error::Invalid(format!("server name {server_name}: {e}")))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(io(format!("connect to the kubelet at {addr}")))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(io(format!(
                "TLS handshake with the kubelet at {addr} as {server_name}"
            )))?;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| Error::Invalid("the kubelet presented no certificate".into()))
    }

    /// SIGTERM to the kubelet (SIGKILL after 10 s), then to fakecri; removes the
    /// directory unless this thread is panicking. Idempotent.
    pub fn stop(&mut self) {
        if let Some(k) = self.kubelet.take() {
            k.terminate(Duration::from_secs(10));
        }
        if let Some(c) = self.cri.take() {
            c.terminate(Duration::from_secs(5));
        }
        if std::thread::panicking() {
            eprintln!(
                "tlsboot-harness: kept the real kubelet's directory {} (log kubelet.log)",
                self.dir.display()
            );
        } else if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for RealKubelet {
    fn drop(&mut self) {
        self.stop();
    }
}
