//! Helpers shared by the harness's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::Api;
use kube::api::PostParams;
use tlsboot_harness::ControlPlane;

/// The shared control plane, or `None` (skip) when binaries are missing
/// outside CI; in CI a missing control plane fails the test.
pub async fn control_plane() -> Option<&'static ControlPlane> {
    ControlPlane::shared()
        .await
        .expect("the real control plane must start")
}

/// Runs the real kubectl with the admin kubeconfig; panics with its output on failure.
pub fn kubectl(cp: &ControlPlane, args: &[&str]) -> String {
    let out = cp.kubectl().args(args).output().expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `PUT …/approval` appending an Approved condition, as `client`.
pub async fn approve_as(
    client: &kube::Client,
    name: &str,
) -> kube::Result<CertificateSigningRequest> {
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    let mut csr = api.get(name).await?;
    let status = csr.status.get_or_insert_with(Default::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("HarnessTest".into()),
            message: Some("approved by a harness test".into()),
            ..CertificateSigningRequestCondition::default()
        });
    api.replace_subresource("approval", name, &PostParams::default(), &csr)
        .await
}

/// Expects a 403 and returns its message.
pub fn forbidden<T: std::fmt::Debug>(r: kube::Result<T>) -> String {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => s.message.clone(),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}
