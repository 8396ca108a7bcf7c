//! Command-line surface. Each concern owns its own clap `Args` struct; this file only
//! composes them so `main.rs` stays a dispatcher.

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::path::PathBuf;

pub mod completions;

#[derive(Debug, Parser)]
#[command(
    name = "tlsboot",
    version,
    about = "Kubelet TLS bootstrapping made safe: CSR approver daemon, review CLI and bootstrap tokens",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "TLSBOOT_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// More log output: -v for debug, -vv for trace. RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, env = "TLSBOOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl GlobalArgs {
    /// The connection part of the global flags, for `crate::cluster::client`.
    pub fn connection(&self) -> crate::cluster::Connection {
        crate::cluster::Connection {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

pub use crate::telemetry::LogFormat;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The review queue: pending kubelet CSRs with requester, node, SANs and the checks' verdict.
    List(crate::review::list::ListArgs),
    /// Show CSRs in detail with every check's verdict: files (YAML/JSON objects or PEM; offline)
    /// or CSR names (read from the cluster, SANs compared with the Node).
    Inspect(crate::review::inspect::InspectArgs),
    /// Approve CSRs like `kubectl certificate approve`, refusing those whose checks fail.
    Approve(crate::review::approve::ApproveArgs),
    /// Deny CSRs like `kubectl certificate deny`.
    Deny(crate::review::approve::DenyArgs),
    /// Walk the pending kubelet-serving CSRs at a terminal: approve, deny, skip or quit each.
    Review(crate::review::interactive::ReviewArgs),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions(completions::CompletionsArgs),
    /// Run the approver daemon: auto-approve kubelet client CSRs after SubjectAccessReview,
    /// queue serving CSRs for people.
    Controller(Box<crate::controller::ControllerArgs>),
    /// Bootstrap tokens, kubeadm-compatible: create (with the kubelet's bootstrap kubeconfig), list, delete, generate.
    Token(crate::token::TokenArgs),
    /// The three ClusterRoleBindings TLS bootstrapping needs: print or apply them.
    Rbac(crate::token::RbacArgs),
    /// Check the cluster's TLS bootstrap readiness: RBAC, approver, tokens, CSRs. Exit 1 on any failure.
    Doctor(crate::token::DoctorArgs),
}

/// The name people typed to run us: `kubectl-tlsboot` when installed as a kubectl plugin (kubectl
/// runs `kubectl-<name>` from PATH), else `tlsboot`.
pub fn program_name() -> &'static str {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let base = std::path::Path::new(&argv0)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base.starts_with("kubectl-tlsboot") {
        "kubectl-tlsboot"
    } else {
        "tlsboot"
    }
}

/// [`Cli::parse`], with usage text saying `kubectl tlsboot …` when run as the kubectl plugin.
///
/// `controller` flags that are only wrong together (e.g. a renew deadline not below the
/// lease duration) are refused here too, as a usage error like any other (exit 2).
pub fn parse() -> Cli {
    let mut cmd = Cli::command();
    if program_name() == "kubectl-tlsboot" {
        cmd = cmd.bin_name("kubectl tlsboot");
    }
    let matches = cmd.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::Controller(args) = &cli.command
        && let Err(e) = args.validate()
    {
        let kind = clap::error::ErrorKind::ArgumentConflict;
        let err = match cmd.find_subcommand_mut("controller") {
            Some(sub) => sub.error(kind, e),
            None => cmd.error(kind, e),
        };
        err.exit();
    }
    cli
}

/// The daemon's `--clean-expired-tokens` job: `token`'s cleaner, handed to `controller` here
/// so neither command depends on the other.
pub fn token_cleaner() -> crate::controller::TermJob {
    std::sync::Arc::new(|client, stop| {
        Box::pin(async move {
            crate::token::run_token_cleaner(client, stop)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// The one place a command's error is printed: `error: …` (kubectl's `Error from server
/// (NotFound): …` for a missing CSR), exit code 1. A closed stdout (`| head`) ends quietly
/// with 0, as for kubectl.
pub fn exit(result: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    let err = match result {
        Ok(code) => return code,
        Err(err) => err,
    };
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    let text = match err.downcast_ref::<crate::review::error::ReviewError>() {
        Some(review) => crate::review::error::message(review),
        None if broken_pipe => None,
        // The whole chain ("reading a.yaml: No such file…"): what people act on.
        None => Some(format!(
            "error: {}",
            crate::cluster::chain_text(err.as_ref())
        )),
    };
    match text {
        Some(text) => {
            eprintln!("{text}");
            std::process::ExitCode::FAILURE
        }
        None => std::process::ExitCode::SUCCESS,
    }
}
