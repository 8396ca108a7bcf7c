//! The **real** kubelet (v1.37.2, with a fake CRI; see `tlsboot_harness::realkubelet`)
//! joins through the real `tlsboot controller` process, against the real control plane.
//! Upstream's own certificate code checks what the simulated kubelet claims a kubelet
//! sends. One real kubelet per control plane (all real kubelets report the host's
//! address), so each test starts its own control plane (about 3 s) and sees only its own
//! CSRs and Events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tlsboot_harness::kubelet::{BOOTSTRAP_CLIENT_USAGES, KUBELET_SERVING, digested_csr_name};
use tlsboot_harness::{
    ControlPlane, KubeletBinaries, Options, RealKubelet, RealKubeletOptions, UserKubeconfig,
    binaries_for_tests, kubelet_binaries_for_tests,
};

/// Bootstrap and first serving certificate: generous, the kubelet starts in a few seconds
/// but this machine's 2 cores are shared.
const WAIT: Duration = Duration::from_secs(120);

/// What the certificate manager logs when the API server refuses its CSR
/// (client-go `csr.RequestCertificate`: "cannot create certificate signing request: %v").
const UNAUTHORIZED_LINE: &str = "cannot create certificate signing request: Unauthorized";

struct Env {
    cp: ControlPlane,
    daemon: Daemon,
    _identity: UserKubeconfig,
    kubelets: KubeletBinaries,
}

/// A control plane of its own (`seed_rbac` or not, extra KCM flags), the daemon under
/// its shipped RBAC, and the kubelet binaries; `None` = skip (loudly) outside CI.
async fn env(seed_rbac: bool, kcm_args: &[&str]) -> Option<Env> {
    let bins = binaries_for_tests().expect("the control plane must be available")?;
    let kubelets = kubelet_binaries_for_tests().expect("the real kubelet must be available")?;
    let cp = ControlPlane::start(Options {
        binaries: Some(bins),
        seed_rbac,
        kcm_args: kcm_args.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    })
    .await
    .expect("the control plane must start");
    let identity = daemon_identity(&cp).await;
    let daemon = Daemon::start(&cp, identity.path(), "tlsboot-real-kubelet", &[]);
    daemon.wait_ready(Duration::from_secs(60));
    Some(Env {
        cp,
        daemon,
        _identity: identity,
        kubelets,
    })
}

impl Env {
    async fn start_kubelet(&self, boot: &UserKubeconfig, opts: &RealKubeletOptions) -> RealKubelet {
        let dir = self.cp.dir().join(format!("kubelet-{}", opts.node_name));
        RealKubelet::start(&self.kubelets, &dir, boot.path(), opts)
            .await
            .expect("the real kubelet must start")
    }

    fn csrs(&self) -> Api<CertificateSigningRequest> {
        Api::all(self.cp.admin_client().unwrap())
    }

    /// Waits for the first CSR with `signer` asked for by `user`.
    async fn wait_csr_from(
        &self,
        k: &RealKubelet,
        signer: &str,
        user: &str,
    ) -> CertificateSigningRequest {
        let start = std::time::Instant::now();
        loop {
            let found = self
                .csrs()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|c| c.spec.signer_name == signer && c.spec.username.as_deref() == Some(user));
            if let Some(c) = found {
                return c;
            }
            assert!(
                k.exited().is_none(),
                "kubelet exited: {:?}\n{}",
                k.exited(),
                k.log_tail(30)
            );
            assert!(
                start.elapsed() < WAIT,
                "no {signer} CSR from {user} in {WAIT:?}\nkubelet log {}:\n{}",
                k.log_path().display(),
                k.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn wait_issued(&self, name: &str) -> CertificateSigningRequest {
        wait_csr(
            &self.cp,
            name,
            WAIT,
            || self.daemon.logs(),
            |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.certificate.as_ref())
                    .is_some()
            },
        )
        .await
    }
}

fn issued_der(csr: &CertificateSigningRequest) -> Vec<u8> {
    let pem = &csr.status.as_ref().unwrap().certificate.as_ref().unwrap().0;
    first_cert_der(&String::from_utf8_lossy(pem))
}

fn first_cert_der(pem: &str) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(p.label, "CERTIFICATE", "first PEM block");
    p.contents
}

/// The DER of the certificate in a kubelet `*-current.pem` (certificate, then key), once
/// the file exists.
fn current_der(path: &std::path::Path) -> Option<Vec<u8>> {
    RealKubelet::read_pem(path).map(|pem| first_cert_der(&pem))
}

fn usages(csr: &CertificateSigningRequest) -> Vec<String> {
    csr.spec.usages.clone().unwrap_or_default()
}

/// The subject public key info (DER) of a CSR object's request.
fn request_spki(csr: &CertificateSigningRequest) -> Vec<u8> {
    use x509_parser::prelude::FromDer as _;
    let (_, p) = x509_parser::pem::parse_x509_pem(&csr.spec.request.0).unwrap();
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&p.contents)
            .unwrap();
    req.certification_request_info.subject_pki.raw.to_vec()
}

async fn wait_node_ready(cp: &ControlPlane, k: &RealKubelet) -> Node {
    let nodes: Api<Node> = Api::all(cp.admin_client().unwrap());
    let start = std::time::Instant::now();
    loop {
        if let Ok(n) = nodes.get(k.node_name()).await {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                return n;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "Node {} not Ready in {WAIT:?}\nkubelet log:\n{}",
            k.node_name(),
            k.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// rotateCertificates: true (the client certificate manager): the client CSR has a
/// generated name and is approved as `nodeclient`; the Node registers; the serving CSR
/// waits for a person until `tlsboot approve`, after which the kubelet serves the issued
/// certificate; with KCM signing for 2 minutes the kubelet rotates its client
/// certificate and tlsboot approves that as `selfnodeclient`.
#[tokio::test(flavor = "multi_thread")]
async fn real_kubelet_bootstraps_serves_after_approve_and_rotates() {
    // Short-lived certificates (< 8 h) are backdated 5 min and not shortened, so a
    // 2 min signing duration puts the kubelet's rotation deadline (70-90 % of the
    // lifetime from NotBefore) between 6 s before and 78 s after issuance.
    let Some(env) = env(true, &["--cluster-signing-duration=2m"]).await else {
        return;
    };
    let (token, boot) = bootstrap(&env.cp).await;
    let opts = RealKubeletOptions::new(env.cp.unique_name("real"));
    let node = opts.node_name.clone();
    let mut k = env.start_kubelet(&boot, &opts).await;

    // 1. The client CSR, as the bootstrap token.
    let client = env.wait_csr_from(&k, CLIENT_SIGNER, &token.user()).await;
    let client_name = client.metadata.name.clone().unwrap();
    assert!(
        client_name.starts_with("csr-"),
        "the certificate manager uses generateName: {client_name}"
    );
    assert_eq!(
        usages(&client),
        BOOTSTRAP_CLIENT_USAGES,
        "the simulated kubelet must ask for what the real one asks for"
    );
    let client = env.wait_issued(&client_name).await;
    assert!(
        approved_with(&client, NODECLIENT_MSG),
        "{:?}",
        conditions(&client)
    );
    assert_eq!(conditions(&client).len(), 1, "exactly one condition");

    // 2. Its kubeconfig and client certificate, then its Node.
    k.wait_until("kubeconfig and kubelet-client-current.pem", WAIT, |k| {
        k.kubeconfig_path().exists() && k.client_cert_path().exists()
    })
    .await
    .unwrap();
    let node_obj = wait_node_ready(&env.cp, &k).await;
    let addresses: Vec<String> = node_obj
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .map(|a| format!("{}={}", a.type_, a.address))
        .collect();
    assert!(
        addresses.contains(&format!("InternalIP={}", k.node_ip())),
        "{addresses:?}"
    );

    // 3. The serving CSR waits for a person.
    let node_user = format!("system:node:{node}");
    let serving = env.wait_csr_from(&k, KUBELET_SERVING, &node_user).await;
    let serving_name = serving.metadata.name.clone().unwrap();
    let event = wait_event(&env.cp, &serving_name, "AwaitingReview", WAIT, || {
        env.daemon.logs()
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    let serving = get_csr(&env.cp, &serving_name).await;
    assert!(
        conditions(&serving).is_empty(),
        "still pending: {:?}",
        conditions(&serving)
    );
    assert!(!k.server_cert_path().exists(), "no serving certificate yet");

    // 4. A person approves it; the kubelet writes and serves the issued certificate.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .arg("--kubeconfig")
        .arg(env.cp.kubeconfig_path())
        .args(["approve", &serving_name])
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tlsboot approve: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let serving = env.wait_issued(&serving_name).await;
    let issued = issued_der(&serving);
    k.wait_until(
        "kubelet-server-current.pem to hold the issued certificate",
        WAIT,
        |k| current_der(&k.server_cert_path()).as_ref() == Some(&issued),
    )
    .await
    .unwrap();
    let presented = k
        .presented_certificate(env.cp.ca_pem(), &node)
        .await
        .unwrap();
    assert_eq!(
        presented, issued,
        "the kubelet's TLS port presents the issued certificate"
    );

    // 5. Rotation: a client CSR as the node itself, approved as selfnodeclient, and the
    // kubelet switches to the new certificate.
    let rotation = env.wait_csr_from(&k, CLIENT_SIGNER, &node_user).await;
    let rotation_name = rotation.metadata.name.clone().unwrap();
    assert_eq!(usages(&rotation), ["digital signature", "client auth"]);
    let rotation = env.wait_issued(&rotation_name).await;
    assert!(
        approved_with(&rotation, SELFNODECLIENT_MSG),
        "{:?}",
        conditions(&rotation)
    );
    let rotated = issued_der(&rotation);
    k.wait_until(
        "kubelet-client-current.pem to hold the rotated certificate",
        WAIT,
        |k| current_der(&k.client_cert_path()).as_ref() == Some(&rotated),
    )
    .await
    .unwrap();
    k.stop();
    assert!(!k.dir().exists(), "the kubelet's directory is removed");
}

/// rotateCertificates: false (`bootstrap.LoadClientCert`): the client CSR is named
/// `node-csr-<digest>`, exactly the digest the simulated kubelet computes from the same
/// key, subject and usages; tlsboot approves it as `nodeclient` and the Node registers.
#[tokio::test(flavor = "multi_thread")]
async fn real_kubelet_without_rotation_asks_with_the_digest_name() {
    let Some(env) = env(true, &[]).await else {
        return;
    };
    let (token, boot) = bootstrap(&env.cp).await;
    let mut opts = RealKubeletOptions::new(env.cp.unique_name("real"));
    opts.rotate_certificates = false;
    opts.server_tls_bootstrap = false;
    let node = opts.node_name.clone();
    let k = env.start_kubelet(&boot, &opts).await;

    let client = env.wait_csr_from(&k, CLIENT_SIGNER, &token.user()).await;
    let name = client.metadata.name.clone().unwrap();
    let cn = format!("system:node:{node}");
    let real_usages = usages(&client);
    let real_usages: Vec<&str> = real_usages.iter().map(String::as_str).collect();
    assert_eq!(
        name,
        digested_csr_name(&request_spki(&client), &cn, &["system:nodes"], &real_usages),
        "the simulated kubelet's digest of the real kubelet's request"
    );
    assert_eq!(real_usages, BOOTSTRAP_CLIENT_USAGES);
    let client = env.wait_issued(&name).await;
    assert!(
        approved_with(&client, NODECLIENT_MSG),
        "{:?}",
        conditions(&client)
    );
    k.wait_until("kubeconfig and kubelet-client-current.pem", WAIT, |k| {
        k.kubeconfig_path().exists() && k.client_cert_path().exists()
    })
    .await
    .unwrap();
    assert_eq!(
        current_der(&k.client_cert_path()),
        Some(issued_der(&client)),
        "the kubelet uses the certificate KCM issued"
    );
    wait_node_ready(&env.cp, &k).await;
}

/// A deleted bootstrap token: the kubelet is refused (its own log says so), no CSR is
/// ever created and nothing is approved.
#[tokio::test(flavor = "multi_thread")]
async fn real_kubelet_with_a_deleted_token_is_refused_and_nothing_is_approved() {
    let Some(env) = env(true, &[]).await else {
        return;
    };
    let (token, boot) = bootstrap(&env.cp).await;
    let secrets: Api<Secret> = Api::namespaced(env.cp.admin_client().unwrap(), "kube-system");
    secrets
        .delete(
            &format!("bootstrap-token-{}", token.id),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    // The authenticator reads Secrets through an informer: wait until it forgets the
    // token, so the kubelet cannot race the deletion.
    let boot_client = boot.client().unwrap();
    let start = std::time::Instant::now();
    while tlsboot_harness::whoami(&boot_client).await.is_ok() {
        assert!(
            start.elapsed() < WAIT,
            "the deleted token still authenticates"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let k = env
        .start_kubelet(&boot, &RealKubeletOptions::new(env.cp.unique_name("real")))
        .await;
    k.wait_for_log(UNAUTHORIZED_LINE, WAIT).await.unwrap();
    let all = env.csrs().list(&ListParams::default()).await.unwrap().items;
    assert!(
        all.is_empty(),
        "no CSR may exist: {:?}",
        all.iter()
            .map(|c| c.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    // (The kubeconfig itself is written at start: with rotateCertificates it only
    // points at kubelet-client-current.pem.)
    assert!(!k.client_cert_path().exists(), "no client certificate");
    assert_eq!(
        env.daemon.metric(&format!(
            "tlsboot_csr_decisions_total{{signer=\"{CLIENT_SIGNER}\",outcome=\"approved\"}}"
        )),
        0.0,
        "nothing approved"
    );
}

/// Bootstrappers may create CSRs but nobody granted `nodeclient`: the real kubelet's CSR
/// stays Pending with the NotAuthorized Event.
#[tokio::test(flavor = "multi_thread")]
async fn real_kubelet_without_the_nodeclient_grant_waits_not_authorized() {
    let Some(env) = env(false, &[]).await else {
        return;
    };
    let (create, role, group) = tlsboot_harness::SEED_BINDINGS[0];
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
        Api::all(env.cp.admin_client().unwrap());
    crbs.create(&PostParams::default(), &bind(create, role, group))
        .await
        .unwrap();
    let (token, boot) = bootstrap(&env.cp).await;
    let k = env
        .start_kubelet(&boot, &RealKubeletOptions::new(env.cp.unique_name("real")))
        .await;
    let client = env.wait_csr_from(&k, CLIENT_SIGNER, &token.user()).await;
    let name = client.metadata.name.clone().unwrap();
    let event = wait_event(&env.cp, &name, "NotAuthorized", WAIT, || env.daemon.logs()).await;
    let note = event.note.clone().unwrap_or_default();
    assert_eq!(event.type_.as_deref(), Some("Warning"), "{note}");
    assert!(
        note.contains(&token.user()) && note.contains("certificatesigningrequests/nodeclient"),
        "the Event names the requester and the missing permission: {note}"
    );
    let csr = get_csr(&env.cp, &name).await;
    assert!(
        conditions(&csr).is_empty(),
        "still pending: {:?}",
        conditions(&csr)
    );
    assert!(!k.client_cert_path().exists(), "no client certificate");
}
