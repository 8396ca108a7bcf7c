//! What a CSR's `status` says, read one way everywhere.
//!
//! "Pending" means two different things in Kubernetes, so neither helper is called that:
//! [`awaits_decision`] is kubectl's `Pending` (no Approved or Denied condition: what a person
//! still has to decide), [`awaits_approver`] is what an approver still acts on (upstream
//! `handle`: also not issued). Conditions count whatever their `status`, as upstream
//! `GetCertApprovalCondition` and kubectl read them.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

pub use crate::policy::upstream::{CONDITION_APPROVED, CONDITION_DENIED};
/// Set by a signer that could not issue the certificate.
pub const CONDITION_FAILED: &str = "Failed";

/// Whether a condition of this type is present (any status).
pub fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_))
}

pub fn is_approved(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, CONDITION_APPROVED)
}

pub fn is_denied(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, CONDITION_DENIED)
}

pub fn has_failed(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, CONDITION_FAILED)
}

/// Approved or Denied: final, the API server refuses to remove either.
pub fn is_decided(csr: &CertificateSigningRequest) -> bool {
    is_approved(csr) || is_denied(csr)
}

/// `status.certificate` is non-empty.
pub fn is_issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// kubectl's `Pending`: neither Approved nor Denied, so a person may still decide it. A
/// `Failed` condition does not end that.
pub fn awaits_decision(csr: &CertificateSigningRequest) -> bool {
    !is_decided(csr)
}

/// What an approver still acts on (upstream `handle`, and `policy::decide`'s Ignore): not
/// decided and no certificate issued.
pub fn awaits_approver(csr: &CertificateSigningRequest) -> bool {
    !is_decided(csr) && !is_issued(csr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::policy::{CsrFacts, Verdict, decide};

    fn csr(conditions: &[(&str, &str)], cert: bool) -> CertificateSigningRequest {
        let mut c = CertificateSigningRequest::default();
        c.spec.signer_name = crate::policy::SIGNER_KUBELET_CLIENT.into();
        c.status = Some(crate::policy::test_status(
            conditions,
            cert.then_some(b"PEM".as_slice()),
        ));
        c
    }

    #[test]
    fn the_two_pendings_differ_only_on_an_issued_certificate() {
        let cases = [
            (csr(&[], false), true, true),
            (csr(&[("Failed", "True")], false), true, true),
            (csr(&[("Approved", "True")], false), false, false),
            (csr(&[("Denied", "False")], false), false, false),
            (csr(&[], true), true, false),
        ];
        for (c, decision, approver) in cases {
            assert_eq!(awaits_decision(&c), decision, "{:?}", c.status);
            assert_eq!(awaits_approver(&c), approver, "{:?}", c.status);
        }
    }

    #[test]
    fn awaits_approver_is_exactly_what_the_policy_does_not_ignore() {
        for c in [
            csr(&[], false),
            csr(&[("Failed", "True")], false),
            csr(&[("Approved", "False")], false),
            csr(&[("Denied", "True")], false),
            csr(&[], true),
        ] {
            let ignored = decide(&CsrFacts::from_csr(&c)).verdict == Verdict::Ignore;
            assert_eq!(awaits_approver(&c), !ignored, "{:?}", c.status);
        }
    }
}
