//! Command-line surface. Each concern owns its own clap `Args` struct; this file only
//! composes them so `main.rs` stays a dispatcher.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode CSRs from files (YAML/JSON objects or PEM) and show every check's verdict. No cluster needed.
    Inspect(crate::review::inspect_file::InspectFileArgs),
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
