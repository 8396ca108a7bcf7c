//! The SubjectAccessReviews kube-controller-manager's csrapproving asks before it approves a
//! kubelet client CSR (`pkg/controller/certificates/approver/sarapprove.go`, recognizers and
//! `authorize`). Pure data: the daemon sends them, and the review commands send the very same
//! ones to show a person what the daemon would be told.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::csr::ParsedCsr;
use super::upstream::{
    MESSAGE_NODE_CLIENT, MESSAGE_SELF_NODE_CLIENT, SAR_SUBRESOURCE_NODE_CLIENT,
    SAR_SUBRESOURCE_SELF_NODE_CLIENT,
};
use serde::Serialize;

/// The `certificatesigningrequests/<subresource>` a SubjectAccessReview asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SarSubresource {
    SelfNodeClient,
    NodeClient,
}

impl SarSubresource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfNodeClient => SAR_SUBRESOURCE_SELF_NODE_CLIENT,
            Self::NodeClient => SAR_SUBRESOURCE_NODE_CLIENT,
        }
    }

    /// The `message` of the Approved condition upstream writes when this review allows.
    pub fn approval_message(self) -> &'static str {
        match self {
            Self::SelfNodeClient => MESSAGE_SELF_NODE_CLIENT,
            Self::NodeClient => MESSAGE_NODE_CLIENT,
        }
    }
}

/// The reviews to try, in upstream's order, for a request whose content is a valid kubelet
/// client request: `selfnodeclient` first when the requester is the subject CN
/// (`isSelfNodeClientCert`: `spec.username == x509cr.Subject.CommonName`, Go's CN is the last),
/// then `nodeclient`.
pub fn recognized_subresources(username: &str, parsed: &ParsedCsr) -> Vec<SarSubresource> {
    if username == parsed.go_common_name() {
        vec![SarSubresource::SelfNodeClient, SarSubresource::NodeClient]
    } else {
        vec![SarSubresource::NodeClient]
    }
}

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
