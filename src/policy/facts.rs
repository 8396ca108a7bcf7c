//! What policy needs to know about a CSR, borrowed from the API object.

use super::upstream::{CONDITION_APPROVED, CONDITION_DENIED};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

/// What policy needs to know about a CSR. Borrowed, cheap to build per reconcile.
#[derive(Debug, Clone, Copy)]
pub struct CsrFacts<'a> {
    pub name: &'a str,
    pub signer_name: &'a str,
    /// `spec.request`: the PEM bytes (already base64-decoded by the API machinery).
    pub request: &'a [u8],
    pub usages: &'a [String],
    pub username: &'a str,
    pub groups: &'a [String],
    /// Has a condition of type `Approved` (any status, as upstream `GetCertApprovalCondition`).
    pub approved: bool,
    /// Has a condition of type `Denied` (any status).
    pub denied: bool,
    /// `status.certificate` is non-empty.
    pub issued: bool,
}

/// A CSR status with these `(type, status)` conditions and, when given, this certificate: the
/// one way unit tests of every layer write a decided (or failed, or issued) CSR.
#[cfg(test)]
pub(crate) fn test_status(
    conditions: &[(&str, &str)],
    certificate: Option<&[u8]>,
) -> k8s_openapi::api::certificates::v1::CertificateSigningRequestStatus {
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };
    CertificateSigningRequestStatus {
        conditions: Some(
            conditions
                .iter()
                .map(|(t, s)| CertificateSigningRequestCondition {
                    type_: (*t).into(),
                    status: (*s).into(),
                    ..Default::default()
                })
                .collect(),
        ),
        certificate: certificate.map(|c| k8s_openapi::ByteString(c.to_vec())),
    }
}

impl<'a> CsrFacts<'a> {
    pub fn from_csr(csr: &'a CertificateSigningRequest) -> Self {
        let spec = &csr.spec;
        let status = csr.status.as_ref();
        let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
        Self {
            name: csr.metadata.name.as_deref().unwrap_or(""),
            signer_name: &spec.signer_name,
            request: &spec.request.0,
            usages: spec.usages.as_deref().unwrap_or(&[]),
            username: spec.username.as_deref().unwrap_or(""),
            groups: spec.groups.as_deref().unwrap_or(&[]),
            approved: conditions.iter().any(|c| c.type_ == CONDITION_APPROVED),
            denied: conditions.iter().any(|c| c.type_ == CONDITION_DENIED),
            issued: status
                .and_then(|s| s.certificate.as_ref())
                .is_some_and(|c| !c.0.is_empty()),
        }
    }
}
