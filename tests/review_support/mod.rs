//! Helpers shared by the review end-to-end tests: nodes and serving CSRs made through the real
//! API (as the node itself where the API allows it), and runs of the real `tlsboot` and `kubectl`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../controller_support/shared.rs"]
mod shared;
// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use shared::{Run, control_plane};

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use tlsboot_harness::{ControlPlane, UserKubeconfig};

pub const SERVING: &str = "kubernetes.io/kubelet-serving";
pub const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The real `tlsboot` binary with `kubeconfig` and nothing inherited that could change it.
pub fn tlsboot_command(kubeconfig: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tlsboot"));
    c.arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG");
    c
}

pub fn tlsboot_with(kubeconfig: &Path, args: &[&str]) -> Run {
    Run::from(
        tlsboot_command(kubeconfig)
            .args(args)
            .output()
            .expect("run tlsboot"),
    )
}

/// `tlsboot` as the cluster admin (user `tlsboot-admin`, group system:masters).
pub fn tlsboot(cp: &ControlPlane, args: &[&str]) -> Run {
    tlsboot_with(cp.kubeconfig_path(), args)
}

/// The real `/usr/bin/kubectl` as the admin.
pub fn kubectl(cp: &ControlPlane, args: &[&str]) -> Run {
    Run::from(cp.kubectl().args(args).output().expect("run kubectl"))
}

/// kubectl's CONDITION column for one CSR.
pub fn kubectl_condition(cp: &ControlPlane, name: &str) -> String {
    let run = kubectl(cp, &["get", "csr", name, "--no-headers"]).ok();
    run.stdout
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// `(type, reason, message)` of every condition, read with kubectl.
pub fn conditions(cp: &ControlPlane, name: &str) -> Vec<(String, String, String)> {
    let run = kubectl(cp, &["get", "csr", name, "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    v["status"]["conditions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["type"].as_str().unwrap_or_default().to_string(),
                        c["reason"].as_str().unwrap_or_default().to_string(),
                        c["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A non-loopback address for a node name (10.200.0.0/16; nothing is ever sent to it).
pub fn node_ip(name: &str) -> IpAddr {
    let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let b = d.as_ref();
    IpAddr::from([10, 200, b[0], b[1].max(1)])
}

/// A Node with `InternalIP` and `Hostname` addresses, created by the admin (status patched,
/// as the kubelet's status sync does).
pub async fn create_node(cp: &ControlPlane, name: &str, ip: IpAddr) -> Node {
    let api: Api<Node> = Api::all(cp.admin_client().unwrap());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &node).await.unwrap();
    let status = NodeStatus {
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.into(),
            },
        ]),
        ..Default::default()
    };
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap()
}

/// The node's own identity (`system:node:<name>`, group `system:nodes`), a client certificate
/// signed by the cluster CA: the Node authorizer and NodeRestriction treat it as that kubelet.
pub async fn node_identity(cp: &ControlPlane, name: &str) -> UserKubeconfig {
    cp.user_kubeconfig(&format!("system:node:{name}"), &["system:nodes"])
        .await
        .unwrap()
}

/// PEM CSR with the kubelet's subject for `cn_node` and these SANs (DNS names or IPs).
pub fn serving_request(cn_node: &str, sans: &[&str]) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:{cn_node}"));
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// Creates a kubelet-serving CSR with `client` (its identity becomes spec.username); returns
/// the server-generated name.
pub async fn create_serving_csr(client: kube::Client, pem: &str) -> String {
    create_csr(
        client,
        pem.as_bytes(),
        SERVING,
        &["digital signature", "server auth"],
    )
    .await
}

pub async fn create_csr(
    client: kube::Client,
    request: &[u8],
    signer: &str,
    usages: &[&str],
) -> String {
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.to_vec()),
            signer_name: signer.into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        status: None,
    };
    Api::<CertificateSigningRequest>::all(client)
        .create(&PostParams::default(), &csr)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap()
}

/// A Node plus a serving CSR from that node for `sans`; returns the CSR name.
pub async fn node_with_serving_csr(cp: &ControlPlane, node: &str, sans: &[&str]) -> String {
    let id = node_identity(cp, node).await;
    create_serving_csr(id.client().unwrap(), &serving_request(node, sans)).await
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// The table row (whitespace-split cells) whose first cell is `name`.
pub fn row<'a>(table: &'a str, name: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
}

/// A kubelet client request for `cn_node` (`O=system:nodes, CN=system:node:<cn_node>`, no
/// SANs), filed with `client` as the requester; returns the CSR name.
pub async fn create_client_csr(client: kube::Client, cn_node: &str) -> String {
    create_csr(
        client,
        serving_request(cn_node, &[]).as_bytes(),
        CLIENT,
        &["digital signature", "client auth"],
    )
    .await
}

/// A ClusterRole with `rules` bound to the user named `user` (a ServiceAccount's user name
/// works too: RBAC matches User subjects by name).
pub async fn bind(cp: &ControlPlane, user: &str, rules: Vec<PolicyRule>) {
    let client = cp.admin_client().unwrap();
    let name = format!("review-e2e-{user}");
    Api::<ClusterRole>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                rules: Some(rules),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(client)
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name,
                },
                subjects: Some(vec![Subject {
                    kind: "User".into(),
                    name: user.into(),
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
}

pub fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(v(groups)),
        resources: Some(v(resources)),
        verbs: v(verbs),
        resource_names: if names.is_empty() {
            None
        } else {
            Some(v(names))
        },
        ..Default::default()
    }
}

/// One permission of the reviewer role (docs/review.md) a test can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lacking {
    /// Has `get` on nodes, not `list`.
    ListNodes,
    /// No `get` on the `default/kubernetes` Service.
    GetServices,
    /// No `create` on `subjectaccessreviews`.
    CreateSubjectAccessReviews,
}

/// A new user with docs/review.md's reviewer role (approve for both kubelet signers) except
/// `lacking`; returns the user name and its kubeconfig.
pub async fn reviewer(cp: &ControlPlane, lacking: Lacking) -> (String, UserKubeconfig) {
    let user = cp.unique_name("reviewer");
    let mut rules = vec![
        rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["get", "list", "watch"],
            &[],
        ),
        rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests/approval"],
            &["update"],
            &[],
        ),
        rule(
            &["certificates.k8s.io"],
            &["signers"],
            &["approve"],
            &[SERVING, CLIENT],
        ),
    ];
    rules.push(if lacking == Lacking::ListNodes {
        rule(&[""], &["nodes"], &["get"], &[])
    } else {
        rule(&[""], &["nodes"], &["get", "list"], &[])
    });
    if lacking != Lacking::GetServices {
        rules.push(rule(&[""], &["services"], &["get"], &["kubernetes"]));
    }
    if lacking != Lacking::CreateSubjectAccessReviews {
        rules.push(rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
            &["create"],
            &[],
        ));
    }
    bind(cp, &user, rules).await;
    let kc = cp.user_kubeconfig(&user, &[]).await.unwrap();
    (user, kc)
}
