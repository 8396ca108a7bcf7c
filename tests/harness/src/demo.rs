//! `tlsboot-harness demo`: the README's first command. A real control plane (KCM signs,
//! its own approver is off), the real `tlsboot controller` under its shipped RBAC,
//! simulated kubelets and a real kubelet (v1.37.2, fake CRI) joining — every step printed
//! as it happens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;
use tlsboot_harness::{
    ChildProcess, Component, ControlPlane, KubeletOptions, Options, RealKubelet,
    RealKubeletOptions, SimKubelet,
};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated nodes that join.
    #[arg(short = 'n', long, default_value_t = 3)]
    nodes: usize,
    /// Port for the daemon's /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 9090)]
    metrics_port: u16,
    /// Real kubelets (v1.37.2 with a fake CRI; needs root) that join after the simulated
    /// ones. 0 = simulated only.
    #[arg(long, default_value_t = 1)]
    real_kubelets: usize,
    /// Exit after the nodes joined instead of staying up until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

const STEPS: u32 = 7;

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn step(n: u32, what: &str) {
    println!("\n[{n}/{STEPS}] {what}");
}

/// Runs a `tlsboot` command, echoing it and its output like a terminal session would.
fn tlsboot(bin: &Path, kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    println!("  $ tlsboot {}", args.join(" "));
    let out = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in stdout.lines() {
        println!("    {line}");
    }
    if !out.status.success() {
        bail!(
            "tlsboot {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

fn condition(csr: &CertificateSigningRequest) -> String {
    let conds = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conds
        .first()
        .map(|c| {
            format!(
                "{} ({}: {})",
                c.type_,
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "Pending".into())
}

pub async fn demo(a: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    step(
        1,
        "control plane binaries (built from Go modules on first use; ~15-25 min once, then cached)",
    );
    let bins = tlsboot_harness::build_binaries()?;
    println!("  ready: {}", bins.dir.display());
    // build.sh also built the kubelet; it runs only as root (private mount namespace).
    let kubelet_bins = if a.real_kubelets == 0 {
        None
    } else {
        match tlsboot_harness::find_kubelet_binaries() {
            Ok(k) => {
                println!("  real kubelet: {}", k.kubelet.display());
                Some(k)
            }
            Err(e) => {
                println!(
                    "  no real kubelet in this run: {e}\n  (--real-kubelets 0 says so up front)"
                );
                None
            }
        }
    };

    step(2, "building tlsboot (cargo build --bin tlsboot)");
    let root = workspace_root();
    let build_started = Instant::now();
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "-p", "tlsboot", "--bin", "tlsboot"])
        .current_dir(&root);
    // `cargo run` gave this process the harness's CARGO_PKG_*/CARGO_MANIFEST_* variables.
    // Build scripts such as ring's declare `rerun-if-env-changed` on them, and cargo compares
    // its own environment: left in, they would rebuild ring and everything above it (rustls,
    // kube, ...) here and again in the next build from a shell.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_BIN_EXE_")
            || matches!(
                k.as_ref(),
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            build.env_remove(&key);
        }
    }
    let status = build.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of tlsboot failed");
    }
    println!("  built in {:.1?}", build_started.elapsed());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug/tlsboot");
    if !bin.exists() {
        bail!("built tlsboot not found at {}", bin.display());
    }

    step(
        3,
        "starting etcd, kube-apiserver and kube-controller-manager (csrsigning only: KCM's approver is off)",
    );
    let cp = ControlPlane::start(Options {
        binaries: Some(bins),
        seed_rbac: false,
        ..Options::default()
    })
    .await?;
    let t = cp.startup_times();
    println!("  up in {:.1?} at {}", t.total, cp.server_url());
    let admin = cp.kubeconfig_path().to_path_buf();
    tlsboot(&bin, &admin, &["rbac", "apply"])?;

    step(
        4,
        "starting the approver: tlsboot controller, under the ServiceAccount and RBAC of manifests/",
    );
    let out = cp
        .kubectl()
        .args(["apply", "-f"])
        .arg(root.join("manifests/namespace.yaml"))
        .arg("-f")
        .arg(root.join("manifests/rbac.yaml"))
        .output()?;
    if !out.status.success() {
        bail!(
            "kubectl apply manifests: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sa = cp
        .service_account_kubeconfig("tlsboot-system", "tlsboot-controller")
        .await?;
    let mut cmd = Command::new(&bin);
    cmd.arg("controller")
        .arg("--kubeconfig")
        .arg(sa.path())
        .args([
            "--metrics-bind-address",
            &format!("127.0.0.1:{}", a.metrics_port),
        ]);
    let daemon_log = cp.dir().join("logs/tlsboot-controller.log");
    let daemon = ChildProcess::spawn("tlsboot", cmd, &daemon_log)?;
    println!(
        "  pid {}, identity system:serviceaccount:tlsboot-system:tlsboot-controller, log {}",
        daemon.pid(),
        daemon_log.display()
    );

    step(
        5,
        "an admin makes a bootstrap token and the kubelet's bootstrap kubeconfig",
    );
    let boot_path = cp.dir().join("bootstrap-kubelet.conf");
    let boot_arg = boot_path.display().to_string();
    let token = tlsboot(
        &bin,
        &admin,
        &[
            "token",
            "create",
            "--description",
            "demo nodes",
            "--print-kubeconfig",
            &boot_arg,
        ],
    )?;
    // `token create` prints `<id>.<secret>`; the token's user is system:bootstrap:<id>.
    let token_user = format!(
        "system:bootstrap:{}",
        token.trim().split('.').next().unwrap_or_default()
    );
    let kc = kube::config::Kubeconfig::read_from(&boot_path)?;
    let boot =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;

    step(
        6,
        &format!(
            "{} simulated kubelets join (client CSR → approved → Node → serving CSR → client rotation)",
            a.nodes
        ),
    );
    let admin_client = cp.admin_client()?;
    let csrs: Api<CertificateSigningRequest> = Api::all(admin_client.clone());
    let shared = kube::Client::try_from(boot.clone())?;
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(0..a.nodes)
        .map(|i| {
            let mut opts = KubeletOptions::new(format!("demo-node-{}", i + 1));
            opts.certificate_timeout = Duration::from_secs(120);
            // Documentation range (TEST-NET-1): looks like a real node address, never
            // routed, and not a loopback IP, which review would rightly flag.
            opts.internal_ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                192,
                0,
                2,
                u8::try_from(10 + i % 200).unwrap_or(10),
            ));
            let mut k = SimKubelet::with_client(boot.clone(), shared.clone(), opts);
            let csrs = csrs.clone();
            async move {
                let node = k.node_name().to_owned();
                let t0 = Instant::now();
                let name = k.request_client_certificate().await?;
                println!("  {node}: client CSR {name} created by the bootstrap token");
                k.wait_client_certificate().await?;
                let c = csrs.get(&name).await?;
                println!("  {node}: {} after {:.0?} → certificate issued by KCM", condition(&c), t0.elapsed());
                k.register_node().await?;
                println!("  {node}: Node registered as system:node:{node}");
                let serving = k.request_serving_certificate().await?;
                println!("  {node}: serving CSR {serving} created → waits for a person (tlsboot approve {serving})");
                let rotation = k.request_client_rotation().await?;
                k.wait_client_rotation().await?;
                let c = csrs.get(&rotation).await?;
                println!("  {node}: client rotation {rotation}: {}", condition(&c));
                Ok::<_, anyhow::Error>(serving)
            }
        })
        .buffer_unordered(a.nodes.clamp(1, 50))
        .collect()
        .await;
    let mut serving = Vec::new();
    for r in results {
        match r {
            Ok(s) => serving.push(s),
            Err(e) => {
                eprintln!(
                    "  a node failed: {e:#}\n  daemon log tail:\n{}",
                    daemon.log_tail(20)
                );
                bail!("demo failed");
            }
        }
    }
    let mut real = Vec::new();
    let mut real_serving = Vec::new();
    if let Some(kb) = &kubelet_bins {
        step(
            7,
            &format!(
                "{} real kubelet(s) v1.37.2 join (fake CRI: no pods run; own mount namespace, loopback ports)",
                a.real_kubelets
            ),
        );
        for i in 1..=a.real_kubelets {
            let (k, serving) = real_kubelet_joins(&cp, kb, &boot_path, &token_user, &csrs, i)
                .await
                .inspect_err(|_| {
                    eprintln!("  daemon log tail:\n{}", daemon.log_tail(20));
                })?;
            real_serving.push(serving);
            real.push(k);
        }
    }

    println!("\n  $ kubectl get csr");
    let out = cp.kubectl().args(["get", "csr"]).output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("    {line}");
    }

    let dir = bin.parent().map(Path::to_path_buf).unwrap_or_default();
    let joined = a.nodes + real.len();
    println!(
        "\nAll {joined} nodes joined ({} simulated, {} real) in {:.1?} (total, including builds).",
        a.nodes,
        real.len(),
        started.elapsed()
    );
    for k in &real {
        println!(
            "Real kubelet {}: log {}, HTTPS on 127.0.0.1:{}",
            k.node_name(),
            k.log_path().display(),
            k.port()
        );
    }
    println!("Daemon log: {}", daemon_log.display());
    if a.exit {
        for mut k in real {
            k.stop();
        }
        daemon.terminate(Duration::from_secs(10));
        return Ok(());
    }
    // A real kubelet's serving CSR first: approving it makes a real kubelet serve the
    // issued certificate.
    let example = real_serving
        .first()
        .or(serving.first())
        .map(String::as_str)
        .unwrap_or("<csr>");
    println!(
        "The cluster stays up; in another shell:\n\n\
         \x20 export KUBECONFIG={} PATH={}:$PATH\n\
         \x20 kubectl get csr,nodes\n\
         \x20 tlsboot list                      # the serving CSRs waiting for review\n\
         \x20 tlsboot inspect {example}\n\
         \x20 tlsboot approve {example}\n\
         \x20 tlsboot doctor\n\
         \x20 curl -s localhost:{}/metrics | grep tlsboot_csr\n\n\
         Ctrl-C stops and removes everything.",
        admin.display(),
        dir.display(),
        a.metrics_port,
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = sigterm.recv() => break Ok(()),
            _ = tick.tick() => {
                if let Some(status) = daemon.exited() {
                    eprintln!("tlsboot controller exited ({status}):\n{}", daemon.log_tail(20));
                    break Err(anyhow::anyhow!("tlsboot controller exited"));
                }
                if !cp.is_running(Component::ApiServer) {
                    break Err(anyhow::anyhow!("kube-apiserver exited; see {}", cp.log_path(Component::ApiServer).display()));
                }
            }
        }
    };
    eprintln!("stopping…");
    for mut k in real {
        k.stop();
    }
    daemon.terminate(Duration::from_secs(10));
    drop(cp);
    result
}

/// Polls `f` every 250 ms until it yields a value; fails after `timeout` naming `what`.
async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first CSR with `signer` asked for by `user` whose name is not in `seen`.
async fn new_csr(
    csrs: &Api<CertificateSigningRequest>,
    signer: &str,
    user: &str,
    seen: &[String],
) -> anyhow::Result<Option<CertificateSigningRequest>> {
    Ok(csrs
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|c| {
            c.spec.signer_name == signer
                && c.spec.username.as_deref() == Some(user)
                && !seen.iter().any(|s| Some(s) == c.metadata.name.as_ref())
        }))
}

/// Real kubelet `i` joins with the demo's bootstrap kubeconfig; each step printed. Returns
/// the kubelet (still running) and its serving CSR's name.
async fn real_kubelet_joins(
    cp: &ControlPlane,
    kb: &tlsboot_harness::KubeletBinaries,
    boot: &Path,
    token_user: &str,
    csrs: &Api<CertificateSigningRequest>,
    i: usize,
) -> anyhow::Result<(RealKubelet, String)> {
    const WAIT: Duration = Duration::from_secs(180);
    let opts = RealKubeletOptions::new(format!("real-node-{i}"));
    let node = opts.node_name.clone();
    let seen: Vec<String> = csrs
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let k = RealKubelet::start(kb, &cp.dir().join(format!("kubelet-{node}")), boot, &opts).await?;
    println!(
        "  {node}: kubelet started (node IP {}, HTTPS 127.0.0.1:{}), log {}",
        k.node_ip(),
        k.port(),
        k.log_path().display()
    );
    let t0 = Instant::now();
    let client = poll(&format!("{node}'s client CSR"), WAIT, || async {
        if let Some(status) = k.exited() {
            bail!("the kubelet exited ({status}):\n{}", k.log_tail(20));
        }
        new_csr(
            csrs,
            tlsboot_harness::kubelet::KUBE_APISERVER_CLIENT_KUBELET,
            token_user,
            &seen,
        )
        .await
    })
    .await?;
    let client_name = client.metadata.name.clone().unwrap_or_default();
    println!(
        "  {node}: client CSR {client_name} created by the bootstrap token (its own certificate manager)"
    );
    let client = poll(&format!("{client_name} to be issued"), WAIT, || async {
        let c = csrs.get(&client_name).await?;
        Ok(c.status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some()
            .then_some(c))
    })
    .await?;
    println!(
        "  {node}: {} after {:.0?} → certificate issued by KCM",
        condition(&client),
        t0.elapsed()
    );
    k.wait_until("kubelet-client-current.pem", WAIT, |k| {
        k.client_cert_path().exists()
    })
    .await?;
    println!(
        "  {node}: the kubelet wrote {}",
        k.client_cert_path().display()
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cp.admin_client()?);
    poll(&format!("Node {node} to be Ready"), WAIT, || async {
        let ready = nodes.get_opt(&node).await?.is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        Ok(ready.then_some(()))
    })
    .await?;
    println!("  {node}: Node registered and Ready as system:node:{node}");
    let node_user = format!("system:node:{node}");
    let serving = poll(&format!("{node}'s serving CSR"), WAIT, || async {
        new_csr(
            csrs,
            tlsboot_harness::kubelet::KUBELET_SERVING,
            &node_user,
            &seen,
        )
        .await
    })
    .await?;
    let serving = serving.metadata.name.unwrap_or_default();
    println!(
        "  {node}: serving CSR {serving} created → waits for a person (tlsboot approve {serving}; the kubelet then serves it)"
    );
    Ok((k, serving))
}
