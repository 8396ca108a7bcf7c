//! Helpers for the daemon's end-to-end tests: the real `tlsboot controller` process
//! under its ServiceAccount identity (RBAC from manifests/), against the real control
//! plane, plus CSRs crafted with rcgen.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod shared;
// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use shared::control_plane;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
};
use tlsboot_harness::{
    BootstrapToken, BootstrapTokenOptions, ChildProcess, ControlPlane, UserKubeconfig,
};

pub const NODECLIENT_MSG: &str =
    "Auto approving kubelet client certificate after SubjectAccessReview.";
pub const SELFNODECLIENT_MSG: &str =
    "Auto approving self kubelet client certificate after SubjectAccessReview.";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The usages a kubelet asks for in its client CSR.
pub const CLIENT_USAGES: &[&str] = &["digital signature", "client auth"];

/// Applies the daemon's RBAC exactly as shipped and returns a kubeconfig for its
/// ServiceAccount: the daemon then proves the ClusterRole is sufficient.
pub async fn daemon_identity(cp: &ControlPlane) -> UserKubeconfig {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = cp
        .kubectl()
        .args(["apply", "-f"])
        .arg(Path::new(root).join("manifests/namespace.yaml"))
        .arg("-f")
        .arg(Path::new(root).join("manifests/rbac.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply manifests: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp.service_account_kubeconfig("tlsboot-system", "tlsboot-controller")
        .await
        .unwrap()
}

/// A fresh bootstrap token (default options) and a kubeconfig authenticating with it.
pub async fn bootstrap(cp: &ControlPlane) -> (BootstrapToken, UserKubeconfig) {
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let boot = cp.bootstrap_kubeconfig(&token).await.unwrap();
    (token, boot)
}

/// A ClusterRoleBinding `name` of ClusterRole `role` to Group `group`.
#[allow(unused_imports)]
pub use tlsboot_harness::group_binding as bind;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Daemon {
    pub child: ChildProcess,
    pub port: u16,
    pub name: String,
}

impl Daemon {
    /// `tlsboot controller` with test-friendly backoff; `extra` flags appended.
    pub fn start(cp: &ControlPlane, kubeconfig: &Path, name: &str, extra: &[&str]) -> Daemon {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsboot"));
        cmd.arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-bind-address", &format!("127.0.0.1:{port}")])
            .args(["--identity", name])
            .args(["--backoff-max", "4s", "--resync-period", "30s"])
            .args(extra)
            .env_remove("RUST_LOG")
            .env("TLSBOOT_LOG_FORMAT", "json");
        let log = cp.dir().join(format!("logs/{name}.log"));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let child = ChildProcess::spawn("tlsboot", cmd, &log).unwrap();
        Daemon {
            child,
            port,
            name: name.to_owned(),
        }
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_owned()))
    }

    /// The value of a metric line starting with `prefix` (name plus labels), summed.
    pub fn metric(&self, prefix: &str) -> f64 {
        let Some((200, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn is_leader(&self) -> bool {
        self.metric("tlsboot_leader ") == 1.0
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return;
            }
            if let Some(status) = self.child.exited() {
                panic!(
                    "daemon {} exited ({status}):\n{}",
                    self.name,
                    self.child.log_tail(40)
                );
            }
            assert!(
                start.elapsed() < timeout,
                "daemon {} not ready in {timeout:?}:\n{}",
                self.name,
                self.child.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        self.child.log_tail(60)
    }
}

/// The one leader among `daemons` (by its `tlsboot_leader` gauge); two at once fails.
pub fn wait_leader<'a>(daemons: &[&'a Daemon], timeout: Duration) -> &'a Daemon {
    let start = Instant::now();
    loop {
        let leaders: Vec<&Daemon> = daemons.iter().copied().filter(|d| d.is_leader()).collect();
        assert!(leaders.len() <= 1, "two leaders at once");
        if let Some(l) = leaders.first() {
            return l;
        }
        assert!(start.elapsed() < timeout, "no leader within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Of two replicas, (the one leader, the other); see [`wait_leader`].
pub fn leader_and_standby<'a>(
    a: &'a Daemon,
    b: &'a Daemon,
    timeout: Duration,
) -> (&'a Daemon, &'a Daemon) {
    let leader = wait_leader(&[a, b], timeout);
    let standby = if leader.name == a.name { b } else { a };
    (leader, standby)
}

/// A PKCS#10 request made with rcgen (ECDSA P-256 like the kubelet).
pub fn csr_pem(
    cn: &str,
    orgs: &[&str],
    sans: &[&str],
    client_auth: bool,
    server_auth: bool,
) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    // rcgen keeps one value per type: a second O needs a fixture; the first is enough here.
    if let Some(o) = orgs.first() {
        dn.push(DnType::OrganizationName, *o);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let mut eku = Vec::new();
    if client_auth {
        eku.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if server_auth {
        eku.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.extended_key_usages = eku;
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// A kubelet client request for `node` (CN `system:node:<node>`) with organization `org`.
pub fn node_client_pem(node: &str, org: &str) -> String {
    csr_pem(&format!("system:node:{node}"), &[org], &[], true, false)
}

/// Creates a kubelet client CSR (signer and usages as the kubelet sends them) as `client`.
pub async fn create_client_csr(
    client: kube::Client,
    name: &str,
    pem: &str,
) -> CertificateSigningRequest {
    create_csr(client, name, pem, CLIENT_SIGNER, CLIENT_USAGES).await
}

pub async fn create_csr(
    client: kube::Client,
    name: &str,
    pem: &str,
    signer: &str,
    usages: &[&str],
) -> CertificateSigningRequest {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let csr = create_csr_object(name, pem, signer, usages);
    api.create(&PostParams::default(), &csr)
        .await
        .unwrap_or_else(|e| panic!("creating CSR {name}: {e}"))
}

pub fn create_csr_object(
    name: &str,
    pem: &str,
    signer: &str,
    usages: &[&str],
) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.as_bytes().to_vec()),
            signer_name: signer.to_owned(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub async fn get_csr(cp: &ControlPlane, name: &str) -> CertificateSigningRequest {
    Api::<CertificateSigningRequest>::all(cp.admin_client().unwrap())
        .get(name)
        .await
        .unwrap()
}

pub fn conditions(csr: &CertificateSigningRequest) -> Vec<(String, String, String)> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            (
                c.type_,
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default(),
            )
        })
        .collect()
}

/// Polls the CSR until `done` holds; panics with the daemon's log otherwise.
pub async fn wait_csr<F>(
    cp: &ControlPlane,
    name: &str,
    timeout: Duration,
    daemon_log: impl Fn() -> String,
    done: F,
) -> CertificateSigningRequest
where
    F: Fn(&CertificateSigningRequest) -> bool,
{
    let start = Instant::now();
    loop {
        let csr = get_csr(cp, name).await;
        if done(&csr) {
            return csr;
        }
        assert!(
            start.elapsed() < timeout,
            "CSR {name} did not reach the expected state in {timeout:?}; conditions {:?}\ndaemon log:\n{}",
            conditions(&csr),
            daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn approved_with(csr: &CertificateSigningRequest, message: &str) -> bool {
    conditions(csr)
        .iter()
        .any(|(t, r, m)| t == "Approved" && r == "AutoApproved" && m == message)
}

/// Events the daemon posted about CSR `name`.
pub async fn events_for(cp: &ControlPlane, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cp.admin_client().unwrap(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

pub async fn wait_event(
    cp: &ControlPlane,
    name: &str,
    reason: &str,
    timeout: Duration,
    daemon_log: impl Fn() -> String,
) -> Event {
    let start = Instant::now();
    loop {
        if let Some(e) = events_for(cp, name)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason))
        {
            return e;
        }
        assert!(
            start.elapsed() < timeout,
            "no {reason} Event for {name} in {timeout:?}\ndaemon log:\n{}",
            daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
