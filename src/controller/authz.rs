//! SubjectAccessReviews, built exactly as kube-controller-manager's csrapproving does
//! (`pkg/controller/certificates/approver/sarapprove.go`, `authorize`).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use crate::policy::SarSubresource;

/// The SAR asking whether the CSR's requester may `create
/// certificatesigningrequests/<subresource>`. User, uid, groups and extra are copied from
/// the CSR spec (set by the API server from the authenticated requester); no namespace,
/// name or version is sent.
pub fn subject_access_review(
    csr: &CertificateSigningRequest,
    subresource: SarSubresource,
) -> SubjectAccessReview {
    let spec = &csr.spec;
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            uid: spec.uid.clone(),
            groups: spec.groups.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".to_owned()),
                resource: Some("certificatesigningrequests".to_owned()),
                verb: Some("create".to_owned()),
                subresource: Some(subresource.as_str().to_owned()),
                ..ResourceAttributes::default()
            }),
            non_resource_attributes: None,
        },
        ..SubjectAccessReview::default()
    }
}

/// The ClusterRole that grants `subresource`, for explanations.
pub fn granting_cluster_role(subresource: SarSubresource) -> String {
    format!(
        "system:certificates.k8s.io:certificatesigningrequests:{}",
        subresource.as_str()
    )
}

/// A human explanation of a refused CSR: who asked, what is missing, what would fix it.
pub fn explain_refusal(csr: &CertificateSigningRequest, tried: &[SarSubresource]) -> String {
    let user = csr.spec.username.as_deref().unwrap_or("<unknown>");
    let groups = csr.spec.groups.clone().unwrap_or_default();
    let missing: Vec<String> = tried
        .iter()
        .map(|s| format!("create certificatesigningrequests/{}", s.as_str()))
        .collect();
    // The group a binding should name: the most specific one the requester has,
    // never system:authenticated (that would grant every user).
    let group = groups
        .iter()
        .find(|g| g.as_str() == "system:bootstrappers" || g.as_str() == "system:nodes")
        .or_else(|| {
            groups.iter().find(|g| {
                g.as_str() != "system:authenticated" && g.as_str() != "system:unauthenticated"
            })
        });
    let fix = match (tried.last(), group) {
        (Some(last), Some(group)) => format!(
            "; a ClusterRoleBinding of ClusterRole {} to group {group} would grant it (tlsboot rbac apply installs the standard ones)",
            granting_cluster_role(*last)
        ),
        (Some(last), None) => format!(
            "; a ClusterRoleBinding of ClusterRole {} to this user would grant it",
            granting_cluster_role(*last)
        ),
        (None, _) => String::new(),
    };
    format!(
        "user {user:?} (groups {groups:?}) is not allowed to {}: SubjectAccessReview refused{fix}",
        missing.join(" or ")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use std::collections::BTreeMap;

    fn csr() -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                username: Some("system:bootstrap:abcdef".into()),
                uid: Some("u-1".into()),
                groups: Some(vec![
                    "system:bootstrappers".into(),
                    "system:authenticated".into(),
                ]),
                extra: Some(BTreeMap::from([("k".to_string(), vec!["v".to_string()])])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn sar_copies_identity_and_names_the_subresource() {
        let sar = subject_access_review(&csr(), SarSubresource::NodeClient);
        let v = serde_json::to_value(&sar).unwrap();
        assert_eq!(v["spec"]["user"], "system:bootstrap:abcdef");
        assert_eq!(v["spec"]["uid"], "u-1");
        assert_eq!(v["spec"]["groups"][0], "system:bootstrappers");
        assert_eq!(v["spec"]["extra"]["k"][0], "v");
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!(ra["group"], "certificates.k8s.io");
        assert_eq!(ra["resource"], "certificatesigningrequests");
        assert_eq!(ra["verb"], "create");
        assert_eq!(ra["subresource"], "nodeclient");
        assert!(
            ra.get("namespace").is_none()
                && ra.get("name").is_none()
                && ra.get("version").is_none()
        );
    }

    #[test]
    fn refusal_names_permission_and_binding() {
        let msg = explain_refusal(&csr(), &[SarSubresource::NodeClient]);
        assert!(
            msg.contains("create certificatesigningrequests/nodeclient"),
            "{msg}"
        );
        assert!(
            msg.contains("system:certificates.k8s.io:certificatesigningrequests:nodeclient"),
            "{msg}"
        );
        assert!(msg.contains("group system:bootstrappers"), "{msg}");
        assert!(!msg.contains("group system:authenticated"), "{msg}");
    }
}
