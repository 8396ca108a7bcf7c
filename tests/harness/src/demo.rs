//! `tlsboot-harness demo`: the README's first command. A real control plane (KCM signs,
//! its own approver is off), the real `tlsboot controller` under its shipped RBAC, and
//! simulated kubelets joining — every step printed as it happens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;
use tlsboot_harness::{ChildProcess, Component, ControlPlane, KubeletOptions, Options, SimKubelet};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated nodes that join.
    #[arg(short = 'n', long, default_value_t = 3)]
    nodes: usize,
    /// Port for the daemon's /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 9090)]
    metrics_port: u16,
    /// Exit after the nodes joined instead of staying up until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn step(n: u32, what: &str) {
    println!("\n[{n}/6] {what}");
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

    step(2, "building tlsboot (cargo build --bin tlsboot)");
    let root = workspace_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "-p", "tlsboot", "--bin", "tlsboot"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of tlsboot failed");
    }
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
    tlsboot(
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
    println!("\n  $ kubectl get csr");
    let out = cp.kubectl().args(["get", "csr"]).output()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("    {line}");
    }

    let dir = bin.parent().map(Path::to_path_buf).unwrap_or_default();
    println!(
        "\nAll {} nodes joined in {:.1?} (total, including builds). The cluster stays up; in another shell:\n\n\
         \x20 export KUBECONFIG={} PATH={}:$PATH\n\
         \x20 kubectl get csr\n\
         \x20 tlsboot list                      # the serving CSRs waiting for review\n\
         \x20 tlsboot inspect {}\n\
         \x20 tlsboot approve {}\n\
         \x20 tlsboot doctor\n\
         \x20 curl -s localhost:{}/metrics | grep tlsboot_csr\n\n\
         Daemon log: {}\nCtrl-C stops and removes everything.",
        a.nodes,
        started.elapsed(),
        admin.display(),
        dir.display(),
        serving.first().map(String::as_str).unwrap_or("<csr>"),
        serving.first().map(String::as_str).unwrap_or("<csr>"),
        a.metrics_port,
        daemon_log.display(),
    );
    if a.exit {
        daemon.terminate(Duration::from_secs(10));
        return Ok(());
    }
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
    daemon.terminate(Duration::from_secs(10));
    drop(cp);
    result
}
