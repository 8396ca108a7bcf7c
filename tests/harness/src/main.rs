//! `tlsboot-harness up`: a real control plane for people.
//! `tlsboot-harness kubelet`: simulated kubelets against any cluster.
//! `tlsboot-harness demo`: control plane + the real `tlsboot controller` + nodes joining.

mod bench;
mod demo;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt as _;
use tlsboot_harness::{
    BootstrapTokenOptions, Component, ControlPlane, KubeletOptions, Options, SimKubelet, Stage,
};

#[derive(Parser)]
#[command(
    name = "tlsboot-harness",
    about = "A real Kubernetes control plane and simulated kubelets for tlsboot"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the control plane if needed, start it, and keep it up until Ctrl-C.
    Up(UpArgs),
    /// Run simulated kubelets that bootstrap with a bootstrap kubeconfig.
    Kubelet(KubeletArgs),
    /// The main job on the embedded default: control plane, `tlsboot controller`, nodes joining.
    Demo(demo::DemoArgs),
    /// Cold-start load benchmark: ceiling, tlsboot and KCM approvers side by side.
    Bench(bench::BenchArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Also run KCM's built-in kubelet-client approver (csrapproving).
    #[arg(long)]
    csrapproving: bool,
    /// Also run KCM's expired-bootstrap-token cleaner.
    #[arg(long)]
    tokencleaner: bool,
    /// Skip the seed RBAC bindings (bootstrappers may create CSRs, nodes renew).
    #[arg(long)]
    no_seed_rbac: bool,
    /// KCM `--kube-api-qps` / `--kube-api-burst` (KCM's defaults: 20 / 30).
    #[arg(long)]
    kcm_qps: Option<f32>,
    #[arg(long)]
    kcm_burst: Option<u32>,
    /// Also copy the admin kubeconfig to this path (mode 0600).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StopAfter {
    ClientCsr,
    ClientCert,
    Node,
    ServingCsr,
    ServingCert,
    RotationCsr,
    Rotated,
}

impl From<StopAfter> for Stage {
    fn from(s: StopAfter) -> Stage {
        match s {
            StopAfter::ClientCsr => Stage::ClientCsrCreated,
            StopAfter::ClientCert => Stage::ClientCertIssued,
            StopAfter::Node => Stage::NodeRegistered,
            StopAfter::ServingCsr => Stage::ServingCsrCreated,
            StopAfter::ServingCert => Stage::ServingCertIssued,
            StopAfter::RotationCsr => Stage::RotationCsrCreated,
            StopAfter::Rotated => Stage::ClientCertRotated,
        }
    }
}

#[derive(clap::Args)]
struct KubeletArgs {
    /// Kubeconfig holding the bootstrap token (what `--bootstrap-kubeconfig` of a kubelet holds).
    /// Any kubeconfig works with `--token`, which replaces its credentials.
    #[arg(long, env = "BOOTSTRAP_KUBECONFIG")]
    bootstrap_kubeconfig: PathBuf,
    /// Bootstrap token `<id>.<secret>` to use instead of the kubeconfig's credentials.
    #[arg(long, env = "BOOTSTRAP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Number of kubelets.
    #[arg(short = 'n', long, default_value_t = 1)]
    nodes: usize,
    /// Node names are `<prefix>-<i>`.
    #[arg(long, default_value = "sim-node")]
    name_prefix: String,
    /// How many kubelets run their steps at the same time.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Last step each kubelet performs.
    #[arg(long, value_enum, default_value = "rotated")]
    stop_after: StopAfter,
    /// Request the serving certificate but do not wait for its approval.
    #[arg(long)]
    no_wait_serving: bool,
    /// Seconds to wait for each certificate.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Readiness probes fail on purpose until the server is up.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "info,kube_client=off,tlsboot_harness::kubelet=warn",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Up(a) => up(a).await,
        Cmd::Kubelet(a) => kubelet(a).await,
        Cmd::Demo(a) => demo::demo(a).await,
        Cmd::Bench(a) => bench::bench(a).await,
    }
}

async fn up(a: UpArgs) -> anyhow::Result<()> {
    eprintln!("building the control plane if needed (controlplane/build.sh)…");
    let bins = tlsboot_harness::build_binaries()?;
    let opts = Options {
        binaries: Some(bins),
        csrapproving: a.csrapproving,
        tokencleaner: a.tokencleaner,
        seed_rbac: !a.no_seed_rbac,
        kcm_api_qps: a.kcm_qps,
        kcm_api_burst: a.kcm_burst,
        ..Options::default()
    };
    let controllers = opts.controllers();
    let cp = ControlPlane::start(opts).await?;
    let t = cp.startup_times();
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions {
            ttl: Some(Duration::from_secs(24 * 3600)),
            description: Some("tlsboot-harness up".into()),
            ..BootstrapTokenOptions::default()
        })
        .await?;
    let boot = cp.bootstrap_kubeconfig(&token).await?;
    let mut kubeconfig = cp.kubeconfig_path().to_path_buf();
    if let Some(out) = &a.kubeconfig_out {
        std::fs::copy(cp.kubeconfig_path(), out)
            .with_context(|| format!("copy the admin kubeconfig to {}", out.display()))?;
        kubeconfig = out.clone();
    }
    println!(
        "\nControl plane up in {:.1?} (etcd {:.1?}, kube-apiserver {:.1?}, kube-controller-manager {:.1?}) at {}\n\
         kube-controller-manager runs: {controllers}{}\n\n\
         \x20 export KUBECONFIG={}\n\
         \x20 kubectl get --raw /readyz\n\
         \x20 kubectl get csr\n\n\
         Bootstrap token {} (user system:bootstrap:{}, 24 h); its kubelet kubeconfig:\n\
         \x20 {}\n\
         Simulated kubelets with it (then approve: kubectl certificate approve <csr>):\n\
         \x20 cargo run -p tlsboot-harness -- kubelet --bootstrap-kubeconfig {} -n 3 --stop-after client-cert\n\n\
         Logs: {}\n\
         Ctrl-C stops and removes everything.",
        t.total,
        t.etcd,
        t.apiserver,
        t.controller_manager,
        cp.server_url(),
        if a.no_seed_rbac {
            ""
        } else {
            "; seed RBAC bindings applied"
        },
        kubeconfig.display(),
        token.token(),
        token.id,
        boot.path().display(),
        boot.path().display(),
        cp.dir().join("logs").display(),
    );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = sigterm.recv() => break Ok(()),
            _ = tick.tick() => {
                let dead: Vec<_> = [Component::Etcd, Component::ApiServer, Component::ControllerManager]
                    .into_iter()
                    .filter(|c| *c != Component::ControllerManager || cp.options().controller_manager)
                    .filter(|c| !cp.is_running(*c))
                    .collect();
                if let Some(c) = dead.first() {
                    let log = cp.log_path(*c);
                    eprintln!("{} exited; last lines of {}:\n{}", c.name(), log.display(), tlsboot_harness::log_tail(&log, 20));
                    break Err(anyhow::anyhow!("{} exited", c.name()));
                }
            }
        }
    };
    eprintln!("stopping…");
    if let Some(out) = &a.kubeconfig_out {
        let _ = std::fs::remove_file(out);
    }
    drop(cp);
    result
}

async fn kubelet(a: KubeletArgs) -> anyhow::Result<()> {
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let kc = kube::config::Kubeconfig::read_from(&a.bootstrap_kubeconfig)
        .with_context(|| format!("read {}", a.bootstrap_kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    if let Some(t) = &a.token {
        let token = tlsboot_harness::BootstrapToken::parse(t)?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.token().into()),
            ..kube::config::AuthInfo::default()
        };
    }
    // One bootstrap connection pool for all kubelets (they share the token).
    let client = kube::Client::try_from(config.clone())?;
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..a.nodes)
        .map(|i| {
            let mut opts = KubeletOptions::new(format!("{}-{i}", a.name_prefix));
            opts.stop_after = a.stop_after.into();
            opts.wait_for_serving = !a.no_wait_serving;
            opts.certificate_timeout = Duration::from_secs(a.timeout);
            let mut k = SimKubelet::with_client(config.clone(), client.clone(), opts);
            async move {
                let r = k.run().await;
                (k.node_name().to_owned(), r)
            }
        })
        .buffer_unordered(a.concurrency.max(1))
        .collect()
        .await;
    let mut failed = 0;
    for (node, r) in &results {
        match r {
            Ok(rep) => println!(
                "{node}: reached {:?}; client CSR {}, serving CSR {}, rotation CSR {}",
                rep.reached,
                rep.client_csr.as_deref().unwrap_or("-"),
                rep.serving_csr.as_deref().unwrap_or("-"),
                rep.rotation_csr.as_deref().unwrap_or("-"),
            ),
            Err(e) => {
                failed += 1;
                println!("{node}: FAILED: {e}");
            }
        }
    }
    println!(
        "{} kubelets, {} failed, in {:.1?}",
        results.len(),
        failed,
        started.elapsed()
    );
    if failed > 0 {
        bail!("{failed} kubelets failed");
    }
    Ok(())
}
