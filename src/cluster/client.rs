use std::path::PathBuf;

use kube::config::{Config, KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Where to find the cluster: explicit kubeconfig/context, else the standard
/// kubeconfig search ($KUBECONFIG, ~/.kube/config), else in-cluster.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("reading kubeconfig {}: {source}", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("loading kubeconfig{}: {source}", context.as_deref().map(|c| format!(" context {c:?}")).unwrap_or_default())]
    LoadKubeconfig {
        context: Option<String>,
        #[source]
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
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// Resolves a client `Config` the way kubectl users expect.
pub async fn config(conn: &Connection) -> Result<Config, ConnectionError> {
    let options = KubeConfigOptions {
        context: conn.context.clone(),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = &conn.kubeconfig {
        let kubeconfig =
            Kubeconfig::read_from(path).map_err(|source| ConnectionError::ReadKubeconfig {
                path: path.clone(),
                source,
            })?;
        return Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ConnectionError::LoadKubeconfig {
                context: conn.context.clone(),
                source,
            });
    }
    match Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        // An explicit --context only makes sense with a kubeconfig: don't silently
        // fall back to in-cluster credentials.
        Err(source) if conn.context.is_some() => Err(ConnectionError::LoadKubeconfig {
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

/// A ready `Client` for `conn`.
pub async fn client(conn: &Connection) -> Result<kube::Client, ConnectionError> {
    let config = config(conn).await?;
    kube::Client::try_from(config).map_err(ConnectionError::Client)
}
