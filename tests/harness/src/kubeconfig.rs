//! Kubeconfig files for the test cluster's identities, and clients from them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::error::{Result, io};
use crate::pki::CertAndKey;

/// How an identity authenticates to kube-apiserver.
#[derive(Clone)]
pub enum Credential {
    /// An x509 client certificate (CN = user, O = groups).
    ClientCert(CertAndKey),
    /// A bearer token (bootstrap token `id.secret`, ServiceAccount token, ...).
    Token(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ClientCert(_) => f.write_str("ClientCert(..)"),
            Credential::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// A kubeconfig written to disk (self-contained: CA and credentials are
/// embedded, mode 0600) and the matching client configuration.
///
/// `kube::Client`s are bound to the tokio runtime they were made on (their
/// request buffer is a task), and each `#[tokio::test]` has its own runtime,
/// so this keeps the `kube::Config` and hands out fresh clients.
#[derive(Clone, Debug)]
pub struct UserKubeconfig {
    /// The user this kubeconfig authenticates as (informational).
    pub user: String,
    path: PathBuf,
    config: kube::Config,
}

impl UserKubeconfig {
    /// The kubeconfig file, e.g. for `KUBECONFIG=` or `--kubeconfig` of a child process.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// A new client on the current tokio runtime.
    pub fn client(&self) -> Result<kube::Client> {
        Ok(kube::Client::try_from(self.config.clone())?)
    }

    /// Writes the kubeconfig and loads it back the way a child process would.
    pub async fn write(
        path: &Path,
        server: &str,
        ca_pem: &str,
        user: &str,
        credential: &Credential,
    ) -> Result<UserKubeconfig> {
        let kc = make_kubeconfig(server, ca_pem, user, credential);
        write_kubeconfig(path, &kc)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(UserKubeconfig {
            user: user.to_owned(),
            path: path.to_path_buf(),
            config,
        })
    }
}

/// A one-cluster, one-user kubeconfig with everything embedded.
pub fn make_kubeconfig(
    server: &str,
    ca_pem: &str,
    user: &str,
    credential: &Credential,
) -> Kubeconfig {
    let mut auth = AuthInfo::default();
    match credential {
        Credential::ClientCert(ck) => {
            auth.client_certificate_data = Some(B64.encode(&ck.cert_pem));
            auth.client_key_data = Some(B64.encode(&ck.key_pem).into());
        }
        Credential::Token(t) => auth.token = Some(t.clone().into()),
    }
    Kubeconfig {
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        clusters: vec![NamedCluster {
            name: "tlsboot-test".into(),
            cluster: Some(Cluster {
                server: Some(server.to_owned()),
                certificate_authority_data: Some(B64.encode(ca_pem)),
                ..Cluster::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.to_owned(),
            auth_info: Some(auth),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "tlsboot-test".into(),
            context: Some(Context {
                cluster: "tlsboot-test".into(),
                user: Some(user.to_owned()),
                ..Context::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("tlsboot-test".into()),
        ..Kubeconfig::default()
    }
}

/// Writes `kc` as YAML with mode 0600 (it holds keys and tokens).
pub fn write_kubeconfig(path: &Path, kc: &Kubeconfig) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let yaml = serde_yaml_ng::to_string(kc)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("write {}", path.display())))?;
    f.write_all(yaml.as_bytes())
        .map_err(io(format!("write {}", path.display())))?;
    Ok(())
}
