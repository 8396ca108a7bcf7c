//! The kubelet's bootstrap kubeconfig (`--bootstrap-kubeconfig`): server, embedded CA,
//! and the bootstrap token as bearer token, in the shape the kubelet TLS bootstrapping
//! docs show. Written 0600: it holds a credential.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Serialize;

use super::bootstrap::TokenString;
use super::error::TokenError;

pub const CLUSTER_NAME: &str = "bootstrap";
pub const CONTEXT_NAME: &str = "bootstrap";
pub const USER_NAME: &str = "kubelet-bootstrap";
pub const CLUSTER_INFO_NAMESPACE: &str = "kube-public";
pub const CLUSTER_INFO_NAME: &str = "cluster-info";
pub const CLUSTER_INFO_KEY: &str = "kubeconfig";

/// Standard base64, through k8s-openapi's `ByteString` serializer (the encoding the
/// API itself uses) rather than another dependency.
pub fn base64_encode(bytes: &[u8]) -> String {
    match serde_json::to_value(ByteString(bytes.to_vec())) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    serde_json::from_value::<ByteString>(serde_json::Value::String(cleaned))
        .ok()
        .map(|b| b.0)
}

/// DER certificates as a PEM bundle.
pub fn der_to_pem(certs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = String::new();
    for der in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64_encode(der);
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// Checks that `pem` holds at least one parseable X.509 certificate and nothing else
/// than certificates, so a wrong file is caught here and not by a kubelet at 3 a.m.
pub fn validate_ca_pem(pem: &[u8]) -> Result<usize, String> {
    crate::cluster::kubeconfig::check_pem(pem, crate::cluster::kubeconfig::PemKind::Certificates)
        .map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: [Named<ClusterEntry<'a>, &'static str>; 1],
    contexts: [Named<ContextEntry, &'static str>; 1],
    #[serde(rename = "current-context")]
    current_context: &'static str,
    users: [Named<UserEntry, &'static str>; 1],
}

#[derive(Serialize)]
struct Named<T, N> {
    name: N,
    #[serde(flatten)]
    inner: T,
}

#[derive(Serialize)]
struct ClusterEntry<'a> {
    cluster: ClusterBody<'a>,
}

#[derive(Serialize)]
struct ClusterBody<'a> {
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
    server: &'a str,
}

#[derive(Serialize)]
struct ContextEntry {
    context: ContextBody,
}

#[derive(Serialize)]
struct ContextBody {
    cluster: &'static str,
    user: &'static str,
}

#[derive(Serialize)]
struct UserEntry {
    user: UserBody,
}

#[derive(Serialize)]
struct UserBody {
    token: String,
}

/// The kubeconfig text.
pub fn render(server: &str, ca_pem: &[u8], token: &TokenString) -> Result<String, TokenError> {
    let file = File {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: CLUSTER_NAME,
            inner: ClusterEntry {
                cluster: ClusterBody {
                    certificate_authority_data: base64_encode(ca_pem),
                    server,
                },
            },
        }],
        contexts: [Named {
            name: CONTEXT_NAME,
            inner: ContextEntry {
                context: ContextBody {
                    cluster: CLUSTER_NAME,
                    user: USER_NAME,
                },
            },
        }],
        current_context: CONTEXT_NAME,
        users: [Named {
            name: USER_NAME,
            inner: UserEntry {
                user: UserBody {
                    token: token.expose(),
                },
            },
        }],
    };
    serde_yaml_ng::to_string(&file).map_err(|e| TokenError::Encode(e.to_string()))
}

/// Where the CA in the bootstrap kubeconfig came from (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    File(PathBuf),
    Kubeconfig,
    ClusterInfo,
}

impl std::fmt::Display for CaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaSource::File(p) => write!(f, "--ca-file {}", p.display()),
            CaSource::Kubeconfig => write!(f, "the current kubeconfig context"),
            CaSource::ClusterInfo => {
                write!(f, "ConfigMap {CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME}")
            }
        }
    }
}

/// `https://host:port` from a kube `Config` URL's text, without the bare `/` path that
/// `Uri` adds when printed.
pub fn server_from_uri(uri: &str) -> String {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    match uri[after_scheme..].find('/') {
        Some(i) if after_scheme + i + 1 == uri.len() => uri[..uri.len() - 1].to_string(),
        _ => uri.to_string(),
    }
}

pub fn check_server(server: &str) -> Result<(), TokenError> {
    // A bootstrap token over plain HTTP is a credential on the wire.
    let Some(rest) = server.strip_prefix("https://") else {
        return Err(TokenError::Kubeconfig(format!(
            "the server URL must start with https:// (got {server:?}); pass --server https://HOST:PORT"
        )));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(TokenError::Kubeconfig(format!(
            "the server URL {server:?} has no host"
        )));
    }
    Ok(())
}

/// The CA PEM from `kube-public/cluster-info` (what `kubeadm join` discovery uses).
pub async fn ca_from_cluster_info(client: &kube::Client) -> Result<Vec<u8>, TokenError> {
    let action = format!(
        "reading ConfigMap {CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_NAME} for the cluster CA"
    );
    let cm: ConfigMap = Api::namespaced(client.clone(), CLUSTER_INFO_NAMESPACE)
        .get(CLUSTER_INFO_NAME)
        .await
        .map_err(|e| TokenError::kube(action.clone(), e))?;
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(CLUSTER_INFO_KEY))
        .ok_or_else(|| {
            TokenError::Kubeconfig(format!("{action}: it has no {CLUSTER_INFO_KEY:?} key"))
        })?;
    ca_from_cluster_info_kubeconfig(text)
        .map_err(|e| TokenError::Kubeconfig(format!("{action}: {e}")))
}

/// The CA out of cluster-info's embedded kubeconfig (pure half of the above).
pub fn ca_from_cluster_info_kubeconfig(text: &str) -> Result<Vec<u8>, String> {
    let kc = kube::config::Kubeconfig::from_yaml(text).map_err(|e| e.to_string())?;
    let data = kc
        .clusters
        .iter()
        .find_map(|c| c.cluster.as_ref()?.certificate_authority_data.clone())
        .ok_or("its kubeconfig has no certificate-authority-data")?;
    base64_decode(&data).ok_or_else(|| "certificate-authority-data is not base64".to_string())
}

/// Writes `text` to `path` with mode 0600, replacing it atomically (temporary file in
/// the same directory, then rename), so a reader never sees a half-written file and an
/// existing file's looser mode does not survive.
pub fn write_private(path: &Path, text: &str) -> Result<(), TokenError> {
    let err = |error| TokenError::WriteFile {
        what: "bootstrap kubeconfig",
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = open_private(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn test_ca() -> (String, Vec<u8>) {
        let Ok(key) = rcgen::KeyPair::generate() else {
            panic!("keygen")
        };
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let Ok(cert) = params.self_signed(&key) else {
            panic!("self-sign")
        };
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVs\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("***"), None);
    }

    #[test]
    fn der_to_pem_is_parseable_pem() {
        let (pem, der) = test_ca();
        let ours = der_to_pem(&[der]);
        assert_eq!(String::from_utf8_lossy(&ours), pem.replace("\r\n", "\n"));
        assert_eq!(validate_ca_pem(&ours), Ok(1));
    }

    #[test]
    fn validate_ca_rejects_non_certificates() {
        assert!(validate_ca_pem(b"").is_err());
        assert!(validate_ca_pem(b"hello").is_err());
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(validate_ca_pem(key.as_bytes()).is_err());
    }

    #[test]
    fn rendered_kubeconfig_is_what_the_docs_show_and_kube_reads_it() {
        let (pem, _) = test_ca();
        let token = match TokenString::parse("07401b.f395accd246ae52d") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let text = match render("https://10.0.0.1:6443", pem.as_bytes(), &token) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let ca_b64 = base64_encode(pem.as_bytes());
        let want = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bootstrap\n  cluster:\n    certificate-authority-data: {ca_b64}\n    server: https://10.0.0.1:6443\ncontexts:\n- name: bootstrap\n  context:\n    cluster: bootstrap\n    user: kubelet-bootstrap\ncurrent-context: bootstrap\nusers:\n- name: kubelet-bootstrap\n  user:\n    token: 07401b.f395accd246ae52d\n"
        );
        assert_eq!(text, want);
        // And kube (like client-go) reads it back with the same meaning.
        let Ok(kc) = kube::config::Kubeconfig::from_yaml(&text) else {
            panic!("kube cannot read it")
        };
        assert_eq!(kc.current_context.as_deref(), Some("bootstrap"));
        assert_eq!(
            kc.auth_infos.first().map(|a| a.name.as_str()),
            Some("kubelet-bootstrap")
        );
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap_or_default();
        assert_eq!(
            doc["users"][0]["user"]["token"].as_str(),
            Some("07401b.f395accd246ae52d")
        );
        let cluster = kc.clusters.first().and_then(|c| c.cluster.clone());
        assert_eq!(
            cluster.as_ref().and_then(|c| c.server.clone()).as_deref(),
            Some("https://10.0.0.1:6443")
        );
        assert_eq!(
            cluster
                .and_then(|c| c.certificate_authority_data)
                .and_then(|d| base64_decode(&d)),
            Some(pem.into_bytes())
        );
    }

    #[test]
    fn cluster_info_ca_is_extracted() {
        let (pem, _) = test_ca();
        let kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    certificate-authority-data: {}\n    server: https://1.2.3.4:6443\ncontexts: []\nusers: []\n",
            base64_encode(pem.as_bytes())
        );
        assert_eq!(ca_from_cluster_info_kubeconfig(&kc), Ok(pem.into_bytes()));
        let no_ca = "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: https://1.2.3.4\n";
        assert!(ca_from_cluster_info_kubeconfig(no_ca).is_err());
    }

    #[test]
    fn server_urls() {
        assert_eq!(
            server_from_uri("https://127.0.0.1:6443/"),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_from_uri("https://127.0.0.1:6443"),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_from_uri("https://lb.example/k8s"),
            "https://lb.example/k8s"
        );
        assert_eq!(
            server_from_uri("https://lb.example/k8s/"),
            "https://lb.example/k8s/"
        );
        assert!(check_server("https://x:6443").is_ok());
        assert!(check_server("http://x:6443").is_err());
        assert!(check_server("https://").is_err());
        assert!(check_server("x:6443").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn written_file_is_private_and_replaces_looser_ones() {
        use std::os::unix::fs::PermissionsExt;
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        let path = dir.path().join("bootstrap-kubelet.conf");
        assert!(std::fs::write(&path, "old").is_ok());
        assert!(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).is_ok());
        assert!(write_private(&path, "new").is_ok());
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("new"));
        // No temporary file left behind.
        let entries = std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(entries, 1);
        // A missing directory is an error naming the file, not a panic.
        let bad = dir.path().join("missing/dir/conf");
        let err = write_private(&bad, "x").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("writing bootstrap kubeconfig ")),
            "{err:?}"
        );
    }
}
