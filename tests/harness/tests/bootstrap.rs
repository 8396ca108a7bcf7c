//! A simulated kubelet through the real bootstrap-token authenticator, RBAC,
//! Node authorizer, NodeRestriction and KCM's signer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{control_plane, kubectl};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;
use tlsboot_harness::kubelet::{BOOTSTRAP_CLIENT_USAGES, ROTATION_CLIENT_USAGES, SERVING_USAGES};
use tlsboot_harness::{BootstrapTokenOptions, Error, KubeletOptions, SimKubelet, whoami};
use x509_parser::prelude::*;

const EXTRA_GROUP: &str = "system:bootstrappers:tlsboot-test";

fn cert_subject(pem: &str) -> (String, Vec<String>, String) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("x509");
    let cn = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let o = cert
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let issuer = cert
        .issuer()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (cn, o, issuer)
}

async fn kubelet_with_token(
    cp: &tlsboot_harness::ControlPlane,
    node: &str,
) -> (SimKubelet, String) {
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions {
            extra_groups: vec![EXTRA_GROUP.into()],
            ..BootstrapTokenOptions::default()
        })
        .await
        .expect("bootstrap token");
    let boot = cp
        .bootstrap_kubeconfig(&token)
        .await
        .expect("bootstrap kubeconfig");
    let k = SimKubelet::new(boot.config(), KubeletOptions::new(node)).expect("kubelet");
    (k, token.id)
}

#[tokio::test]
async fn bootstrap_token_kubelet_gets_a_client_certificate_approved_with_kubectl() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("boot");
    let (mut kubelet, token_id) = kubelet_with_token(cp, &node).await;

    let csr_name = kubelet
        .request_client_certificate()
        .await
        .expect("client CSR");
    assert!(csr_name.starts_with("node-csr-"), "{csr_name}");

    // The real authenticator turned the token into the bootstrap identity.
    let admin = cp.admin_client().unwrap();
    let csr = Api::<CertificateSigningRequest>::all(admin)
        .get(&csr_name)
        .await
        .unwrap();
    let spec = &csr.spec;
    assert_eq!(
        spec.username.as_deref(),
        Some(format!("system:bootstrap:{token_id}").as_str())
    );
    let groups = spec.groups.clone().unwrap_or_default();
    for g in ["system:bootstrappers", EXTRA_GROUP, "system:authenticated"] {
        assert!(groups.iter().any(|x| x == g), "{g} missing from {groups:?}");
    }
    assert_eq!(
        spec.signer_name,
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(
        spec.usages.clone().unwrap_or_default(),
        BOOTSTRAP_CLIENT_USAGES.map(String::from)
    );

    // Stand-in approval: the real kubectl as the admin; KCM's csrsigning signs.
    let out = kubectl(cp, &["certificate", "approve", &csr_name]);
    assert!(out.contains("approved"), "{out}");
    let issued = kubelet.wait_client_certificate().await.expect("issued");
    let (cn, o, issuer) = cert_subject(&issued.cert_pem);
    assert_eq!(cn, format!("system:node:{node}"));
    assert_eq!(o, vec!["system:nodes".to_string()]);
    assert_eq!(issuer, "tlsboot-test-ca");

    // The issued certificate authenticates as the node.
    let node_client = kubelet.node_client().unwrap();
    let (user, groups) = whoami(&node_client).await.unwrap();
    assert_eq!(user, format!("system:node:{node}"));
    assert!(groups.iter().any(|g| g == "system:nodes"), "{groups:?}");
    let created = kubelet
        .register_node()
        .await
        .expect("node registers itself");
    let addrs = created.status.unwrap().addresses.unwrap();
    assert!(addrs.iter().any(|a| a.type_ == "InternalIP"), "{addrs:?}");
    assert!(
        addrs
            .iter()
            .any(|a| a.type_ == "Hostname" && a.address == node),
        "{addrs:?}"
    );

    let listed = kubectl(cp, &["get", "csr", &csr_name, "--no-headers"]);
    assert!(listed.contains("Approved,Issued"), "{listed}");
}

#[tokio::test]
async fn kubelet_serving_and_rotation_csrs_come_from_the_node_identity() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("life");
    let (mut kubelet, _) = kubelet_with_token(cp, &node).await;
    let admin = cp.admin_client().unwrap();
    let csrs = Api::<CertificateSigningRequest>::all(admin.clone());

    let name = kubelet.request_client_certificate().await.unwrap();
    common::approve_as(&admin, &name).await.unwrap();
    kubelet.wait_client_certificate().await.unwrap();
    kubelet.register_node().await.unwrap();

    let serving = kubelet.request_serving_certificate().await.unwrap();
    assert!(serving.starts_with("csr-"), "{serving}");
    let csr = csrs.get(&serving).await.unwrap();
    assert_eq!(csr.spec.signer_name, "kubernetes.io/kubelet-serving");
    assert_eq!(
        csr.spec.username.as_deref(),
        Some(format!("system:node:{node}").as_str())
    );
    assert_eq!(
        csr.spec.usages.clone().unwrap(),
        SERVING_USAGES.map(String::from)
    );
    common::approve_as(&admin, &serving).await.unwrap();
    let cert = kubelet.wait_serving_certificate().await.unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.cert_pem.as_bytes()).unwrap();
    let x = pem.parse_x509().unwrap();
    let sans = x
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .clone();
    assert!(
        sans.iter()
            .any(|n| matches!(n, GeneralName::DNSName(d) if *d == node)),
        "{sans:?}"
    );
    assert!(
        sans.iter().any(|n| matches!(n, GeneralName::IPAddress(_))),
        "{sans:?}"
    );

    let before = kubelet.client_certificate().unwrap().cert_pem.clone();
    let rotation = kubelet.request_client_rotation().await.unwrap();
    let csr = csrs.get(&rotation).await.unwrap();
    assert_eq!(
        csr.spec.signer_name,
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(
        csr.spec.username.as_deref(),
        Some(format!("system:node:{node}").as_str())
    );
    assert_eq!(
        csr.spec.usages.clone().unwrap(),
        ROTATION_CLIENT_USAGES.map(String::from)
    );
    common::approve_as(&admin, &rotation).await.unwrap();
    let after = kubelet.wait_client_rotation().await.unwrap();
    assert_ne!(before, after.cert_pem);
    let (user, _) = whoami(&kubelet.node_client().unwrap()).await.unwrap();
    assert_eq!(user, format!("system:node:{node}"));
}

#[tokio::test]
async fn a_denied_csr_ends_the_wait_with_the_upstream_message() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("denied");
    let (mut kubelet, _) = kubelet_with_token(cp, &node).await;
    let name = kubelet.request_client_certificate().await.unwrap();
    kubectl(cp, &["certificate", "deny", &name]);
    let err = kubelet.wait_client_certificate().await.unwrap_err();
    assert!(matches!(err, Error::CsrDenied { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "certificate signing request is denied, reason: KubectlDeny, message: \
         This CSR was denied by kubectl certificate deny."
    );
}

#[tokio::test]
async fn kubectl_works_with_the_admin_kubeconfig() {
    let Some(cp) = control_plane().await else {
        return;
    };
    assert_eq!(kubectl(cp, &["get", "--raw", "/readyz"]).trim(), "ok");
    let out = kubectl(cp, &["get", "csr"]);
    // Other tests may or may not have created CSRs yet; both print cleanly.
    assert!(out.is_empty() || out.starts_with("NAME"), "{out}");
    let who = kubectl(
        cp,
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"],
    );
    assert!(who.contains("system:masters"), "{who}");
}
