//! Proof that the harness runs the real rules: CertificateApproval admission,
//! RBAC on `/approval`, the bootstrap-token authenticator, TokenRequest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{approve_as, control_plane, forbidden};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, PostParams};
use tlsboot_harness::token::token_secret;
use tlsboot_harness::{
    BootstrapToken, BootstrapTokenOptions, ControlPlane, KubeletOptions, SimKubelet, whoami,
};

const SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

async fn grant_user(cp: &ControlPlane, user: &str, name: &str, rules: Vec<PolicyRule>) {
    let admin = cp.admin_client().unwrap();
    let meta = ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: meta.clone(),
                rules: Some(rules),
                ..ClusterRole::default()
            },
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin)
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: meta,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.into(),
                },
                subjects: Some(vec![Subject {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "User".into(),
                    name: user.into(),
                    namespace: None,
                }]),
            },
        )
        .await
        .unwrap();
}

fn rule(resources: &[&str], verbs: &[&str], names: Option<&[&str]>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["certificates.k8s.io".into()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        resource_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
        ..PolicyRule::default()
    }
}

/// Retries `f` while it fails with 403 (the RBAC authorizer reads bindings
/// through an informer, so a fresh grant takes a moment to apply).
async fn until_allowed<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(kube::Error::Api(s)) if s.code == 403 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

async fn pending_client_csr(cp: &ControlPlane, node: &str) -> (SimKubelet, String) {
    let token = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let boot = cp.bootstrap_kubeconfig(&token).await.unwrap();
    let mut k = SimKubelet::new(boot.config(), KubeletOptions::new(node)).unwrap();
    let name = k.request_client_certificate().await.unwrap();
    (k, name)
}

#[tokio::test]
async fn certificate_approval_admission_refuses_an_approver_without_approve_on_signers() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("adm");
    let (_kubelet, csr) = pending_client_csr(cp, &node).await;

    // RBAC lets this user update /approval, but it may not `approve` the signer.
    let user = cp.unique_name("approver-without-signer");
    let kc = cp.user_kubeconfig(&user, &[]).await.unwrap();
    let client = kc.client().unwrap();
    grant_user(
        cp,
        &user,
        &cp.unique_name("csr-approval-only"),
        vec![
            rule(
                &["certificatesigningrequests"],
                &["get", "list", "watch"],
                None,
            ),
            rule(&["certificatesigningrequests/approval"], &["update"], None),
        ],
    )
    .await;
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    until_allowed("get the CSR", || api.get(&csr)).await;
    let msg = forbidden(approve_as(&client, &csr).await);
    assert!(
        msg.contains(&format!(
            "user not permitted to approve requests with signerName \"{SIGNER}\""
        )),
        "not the CertificateApproval admission: {msg}"
    );

    // Control: with `approve` on that signer the same request is admitted.
    grant_user(
        cp,
        &user,
        &cp.unique_name("signer-approver"),
        vec![rule(&["signers"], &["approve"], Some(&[SIGNER]))],
    )
    .await;
    let approved = until_allowed("approve with approve on signers", || {
        approve_as(&client, &csr)
    })
    .await;
    let conds = approved.status.unwrap().conditions.unwrap();
    assert!(conds.iter().any(|c| c.type_ == "Approved"), "{conds:?}");
}

#[tokio::test]
async fn rbac_refuses_requesters_approving_their_own_csrs() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let node = cp.unique_name("self");
    let (mut kubelet, csr) = pending_client_csr(cp, &node).await;

    // The bootstrap user may create/get/watch CSRs but never touch /approval.
    let requestor = Api::<CertificateSigningRequest>::all(cp.admin_client().unwrap())
        .get(&csr)
        .await
        .unwrap()
        .spec
        .username
        .unwrap();
    assert!(requestor.starts_with("system:bootstrap:"), "{requestor}");
    let token_client = kubelet.bootstrap_client();
    let msg = forbidden(approve_as(&token_client, &csr).await);
    assert!(
        msg.contains("cannot update resource \"certificatesigningrequests/approval\""),
        "not an RBAC refusal: {msg}"
    );

    // Nor may a node approve its own renewal.
    approve_as(&cp.admin_client().unwrap(), &csr).await.unwrap();
    kubelet.wait_client_certificate().await.unwrap();
    let renewal = kubelet.request_client_rotation().await.unwrap();
    let msg = forbidden(approve_as(&kubelet.node_client().unwrap(), &renewal).await);
    assert!(
        msg.contains("cannot update resource \"certificatesigningrequests/approval\""),
        "{msg}"
    );
}

#[tokio::test]
async fn the_real_authenticator_refuses_expired_and_non_authentication_tokens() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let admin = cp.admin_client().unwrap();

    let signing_only = cp
        .create_bootstrap_token(&BootstrapTokenOptions {
            usages: vec!["signing".into()],
            ..BootstrapTokenOptions::default()
        })
        .await
        .unwrap();
    let expired = BootstrapToken::generate().unwrap();
    let mut secret: Secret = token_secret(&expired, &BootstrapTokenOptions::default());
    secret.data.as_mut().unwrap().insert(
        "expiration".into(),
        ByteString(b"2020-01-01T00:00:00Z".to_vec()),
    );
    Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // A valid token proves the informer has caught up with Secrets created before it.
    let valid = cp
        .create_bootstrap_token(&BootstrapTokenOptions::default())
        .await
        .unwrap();
    let ok = cp.bootstrap_kubeconfig(&valid).await.unwrap();
    assert_eq!(whoami(&ok.client().unwrap()).await.unwrap().0, valid.user());

    for token in [&signing_only, &expired] {
        let kc = cp.bootstrap_kubeconfig(token).await.unwrap();
        match whoami(&kc.client().unwrap()).await {
            Err(tlsboot_harness::Error::Kube(kube::Error::Api(s))) => {
                assert_eq!(s.code, 401, "{s:?}")
            }
            other => panic!("token {token:?} should be refused: {other:?}"),
        }
    }
    // And kubeadm's format is what it accepted: the exact keys.
    let stored = Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .get(&valid.secret_name())
        .await
        .unwrap();
    assert_eq!(
        stored.type_.as_deref(),
        Some("bootstrap.kubernetes.io/token")
    );
    let keys: Vec<_> = stored.data.unwrap().into_keys().collect();
    assert_eq!(
        keys,
        [
            "description",
            "expiration",
            "token-id",
            "token-secret",
            "usage-bootstrap-authentication",
            "usage-bootstrap-signing"
        ]
    );
}

#[tokio::test]
async fn service_account_kubeconfig_authenticates_through_token_request() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let ns = cp.unique_name("ns");
    let kc = cp.service_account_kubeconfig(&ns, "tlsboot").await.unwrap();
    assert!(kc.path().exists());
    let client = kc.client().unwrap();
    let (user, groups) = whoami(&client).await.unwrap();
    assert_eq!(user, format!("system:serviceaccount:{ns}:tlsboot"));
    assert!(
        groups.iter().any(|g| g == "system:serviceaccounts"),
        "{groups:?}"
    );
    // No permissions until someone binds them.
    forbidden(
        Api::<CertificateSigningRequest>::all(client)
            .list(&ListParams::default())
            .await,
    );
}
