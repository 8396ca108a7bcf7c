use std::path::PathBuf;

use kube::config::{Config, KubeConfigOptions, Kubeconfig, KubeconfigError};

use super::kubeconfig::{KubeconfigProblem, check_file};

/// Where to find the cluster: explicit kubeconfig/context, else the standard
/// kubeconfig search ($KUBECONFIG, ~/.kube/config), else in-cluster.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

// The messages embed their cause and do not also expose it as `source()`: every printer in the
// crate walks the chain, and the cause would be printed twice.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("kubeconfig {}: {problem}", path.display())]
    BadKubeconfig {
        path: PathBuf,
        problem: KubeconfigProblem,
    },
    #[error("reading kubeconfig {}: {}", path.display(), kubeconfig_error_text(source))]
    ReadKubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    #[error(
        "loading kubeconfig{}{}: {}",
        path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default(),
        context.as_deref().map(|c| format!(" context {c:?}")).unwrap_or_default(),
        kubeconfig_error_text(source)
    )]
    LoadKubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
        source: KubeconfigError,
    },
    #[error(
        "no kubeconfig found and not running in a cluster: pass --kubeconfig FILE or set KUBECONFIG \
         (kubeconfig: {kubeconfig}; in-cluster: {in_cluster})"
    )]
    NoConfig {
        kubeconfig: String,
        in_cluster: String,
    },
    #[error(
        "building the Kubernetes client{}: {}",
        kubeconfig.as_ref().map(|p| format!(" from kubeconfig {}", p.display())).unwrap_or_default(),
        chain_text(error)
    )]
    Client {
        kubeconfig: Option<PathBuf>,
        error: kube::Error,
    },
}

/// kube-rs's error and its causes on one line (its `ReadConfig` quotes the path a second time,
/// which the caller has already named).
fn kubeconfig_error_text(e: &KubeconfigError) -> String {
    match e {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => chain_text(other),
    }
}

/// An error and its sources on one line, skipping a source whose text is already in the
/// message (ours often quote their cause; kube-rs's often do too).
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// Resolves a client `Config` the way kubectl users expect.
pub async fn config(conn: &Connection) -> Result<Config, ConnectionError> {
    let options = KubeConfigOptions {
        context: conn.context.clone(),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = conn.kubeconfig.clone().or_else(default_kubeconfig_file) {
        let path = &path;
        check_file(path, conn.context.as_deref()).map_err(|problem| {
            ConnectionError::BadKubeconfig {
                path: path.clone(),
                problem,
            }
        })?;
        let kubeconfig =
            Kubeconfig::read_from(path).map_err(|source| ConnectionError::ReadKubeconfig {
                path: path.clone(),
                source,
            })?;
        return Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ConnectionError::LoadKubeconfig {
                path: Some(path.clone()),
                context: conn.context.clone(),
                source,
            });
    }
    match Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        // An explicit --context only makes sense with a kubeconfig: don't silently
        // fall back to in-cluster credentials.
        Err(source) if conn.context.is_some() => Err(ConnectionError::LoadKubeconfig {
            path: None,
            context: conn.context.clone(),
            source,
        }),
        Err(kubeconfig_err) => {
            Config::incluster().map_err(|in_cluster| ConnectionError::NoConfig {
                kubeconfig: kubeconfig_err.to_string(),
                in_cluster: in_cluster.to_string(),
            })
        }
    }
}

/// The one kubeconfig file kubectl would read without `--kubeconfig`, when it exists: a single
/// `$KUBECONFIG` path, else `~/.kube/config`. Such a file is checked and its errors named exactly
/// like an explicit one's; a broken one is an error, never a silent fall-back to in-cluster
/// credentials (client-go falls back only when there is no kubeconfig at all). A `$KUBECONFIG`
/// list of several files is merged by kube-rs, whose own errors are kept: one file of a merge may
/// rightly hold only users or only clusters.
fn default_kubeconfig_file() -> Option<PathBuf> {
    let path = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => {
            let mut paths = std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty());
            let first = paths.next()?;
            if paths.next().is_some() {
                return None;
            }
            first
        }
        None => PathBuf::from(std::env::var_os("HOME")?)
            .join(".kube")
            .join("config"),
    };
    path.exists().then_some(path)
}

/// A ready `Client` for `conn`.
pub async fn client(conn: &Connection) -> Result<kube::Client, ConnectionError> {
    client_from(conn, config(conn).await?)
}

/// A `Client` for a `config` resolved from `conn`. TLS material is only checked here (a client
/// certificate that does not match its key, say): the error names the kubeconfig it came from.
pub fn client_from(conn: &Connection, config: Config) -> Result<kube::Client, ConnectionError> {
    kube::Client::try_from(config).map_err(|error| ConnectionError::Client {
        kubeconfig: conn.kubeconfig.clone().or_else(default_kubeconfig_file),
        error,
    })
}
