//! The one decision type every caller reads, and [`decide`].

use super::csr::{ParseError, ParsedCsr, parse_csr, stage};
use super::upstream::{
    CONDITION_APPROVED, CONDITION_DENIED, MESSAGE_NODE_CLIENT, MESSAGE_SELF_NODE_CLIENT,
    SAR_SUBRESOURCE_NODE_CLIENT, SAR_SUBRESOURCE_SELF_NODE_CLIENT, SIGNER_KUBELET_CLIENT,
    SIGNER_KUBELET_SERVING,
};
use super::{kubelet_client, kubelet_serving};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::Serialize;

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

/// Which of our signers a CSR is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignerClass {
    KubeletClient,
    KubeletServing,
    Other,
}

impl SignerClass {
    /// Exact, case-sensitive match on `spec.signerName`, as the API server stores it.
    pub fn of(signer_name: &str) -> Self {
        match signer_name {
            SIGNER_KUBELET_CLIENT => Self::KubeletClient,
            SIGNER_KUBELET_SERVING => Self::KubeletServing,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::KubeletClient => "kubelet-client",
            Self::KubeletServing => "kubelet-serving",
            Self::Other => "other",
        }
    }
}

/// What should happen to the CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Content is a valid kubelet client request; the SubjectAccessReviews decide.
    Authorize,
    /// Content is invalid for its signer.
    Reject,
    /// A kubelet-serving request with valid content: a person decides.
    Manual,
    /// Not ours, or already decided.
    Ignore,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Reject => "reject",
            Self::Manual => "manual",
            Self::Ignore => "ignore",
        }
    }
}

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

/// One rule, evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// Why it failed (upstream's string where upstream has one); `None` when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: &'static str) -> Self {
        Self {
            name,
            passed: true,
            detail: None,
        }
    }

    pub(crate) fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            passed: false,
            detail: Some(detail.into()),
        }
    }

    pub(crate) fn rule(name: &'static str, ok: bool, detail: impl FnOnce() -> String) -> Self {
        if ok {
            Self::pass(name)
        } else {
            Self::fail(name, detail())
        }
    }
}

/// Names of the content checks, in the order they appear in [`Decision::checks`]. The parse stages
/// come first (see [`stage`]).
pub mod check {
    // Upstream ValidateKubeletClientCSR / ValidateKubeletServingCSR.
    pub const ORGANIZATION: &str = "organization";
    pub const DNS_OR_IP_SAN: &str = "dns-or-ip-san";
    pub const NO_DNS_SANS: &str = "no-dns-sans";
    pub const NO_EMAIL_SANS: &str = "no-email-sans";
    pub const NO_IP_SANS: &str = "no-ip-sans";
    pub const NO_URI_SANS: &str = "no-uri-sans";
    pub const COMMON_NAME_PREFIX: &str = "common-name-prefix";
    pub const USAGES: &str = "usages";
    // tlsboot hardening.
    pub const SINGLE_COMMON_NAME: &str = "single-common-name";
    pub const NODE_NAME: &str = "node-name";
    pub const NO_OTHER_SANS: &str = "no-other-sans";
    pub const REQUESTER_IS_NODE: &str = "requester-is-node";
    pub const REQUESTER_IN_NODES_GROUP: &str = "requester-in-nodes-group";
    pub const COMMON_NAME_IS_REQUESTER: &str = "common-name-is-requester";
    pub const NO_API_SERVER_IDENTITY: &str = "no-api-server-identity";
}

/// Everything a caller needs: the verdict, the reasons, and what was checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub class: SignerClass,
    pub verdict: Verdict,
    /// The reviews to try in order (upstream: selfnodeclient, then nodeclient); empty unless
    /// [`Verdict::Authorize`].
    pub subject_access_reviews: Vec<SarSubresource>,
    /// Failed checks' reasons, in check order (parse, then upstream's rules, then hardening).
    pub violations: Vec<String>,
    /// Every check run, pass or fail, in order. Empty for [`Verdict::Ignore`].
    pub checks: Vec<Check>,
    /// Why [`Verdict::Ignore`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_reason: Option<String>,
    /// The decoded request; `None` when it did not parse or was not looked at (ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parsed: Option<ParsedCsr>,
}

impl Decision {
    fn ignored(class: SignerClass, reason: String) -> Self {
        Self {
            class,
            verdict: Verdict::Ignore,
            subject_access_reviews: Vec::new(),
            violations: Vec::new(),
            checks: Vec::new(),
            ignore_reason: Some(reason),
            parsed: None,
        }
    }
}

/// Why tlsboot leaves this CSR alone, before looking at its content. Mirrors upstream `handle`:
/// an issued certificate, then an Approved or Denied condition of any status.
fn ignore_reason(class: SignerClass, facts: &CsrFacts<'_>) -> Option<String> {
    if class == SignerClass::Other {
        return Some(format!(
            "signer {:?} is not handled by tlsboot",
            facts.signer_name
        ));
    }
    if facts.issued {
        return Some("a certificate was already issued (status.certificate is set)".into());
    }
    if facts.denied {
        return Some("already has a Denied condition".into());
    }
    if facts.approved {
        return Some("already has an Approved condition".into());
    }
    None
}

/// Decides what to do with a CSR. Never panics; refuses oversized requests before decoding.
/// Ignored CSRs (not ours, already decided) are not parsed at all, so resyncs of old objects
/// cost nothing.
pub fn decide(facts: &CsrFacts<'_>) -> Decision {
    let class = SignerClass::of(facts.signer_name);
    if let Some(reason) = ignore_reason(class, facts) {
        return Decision::ignored(class, reason);
    }
    decide_class(facts, class, parse_csr(facts.request))
}

/// [`decide`] with the request already parsed (or refused) by the caller — for callers that
/// decode `spec.request` themselves (files) or already hold the parse result.
pub fn decide_with_parse(facts: &CsrFacts<'_>, parsed: Result<ParsedCsr, ParseError>) -> Decision {
    let class = SignerClass::of(facts.signer_name);
    if let Some(reason) = ignore_reason(class, facts) {
        return Decision::ignored(class, reason);
    }
    decide_class(facts, class, parsed)
}

fn decide_class(
    facts: &CsrFacts<'_>,
    class: SignerClass,
    parsed: Result<ParsedCsr, ParseError>,
) -> Decision {
    let mut checks = Vec::with_capacity(stage::ALL.len() + 16);
    let parsed = match parsed {
        Ok(p) => {
            checks.extend(stage::ALL.iter().map(|s| Check::pass(s)));
            p
        }
        Err(e) => {
            let failed = e.stage();
            for s in stage::ALL.iter().take_while(|s| **s != failed) {
                checks.push(Check::pass(s));
            }
            let reason = e.to_string();
            checks.push(Check::fail(failed, reason.clone()));
            return Decision {
                class,
                verdict: Verdict::Reject,
                subject_access_reviews: Vec::new(),
                violations: vec![reason],
                checks,
                ignore_reason: None,
                parsed: None,
            };
        }
    };

    match class {
        SignerClass::KubeletClient => kubelet_client::checks(&parsed, facts.usages, &mut checks),
        SignerClass::KubeletServing => kubelet_serving::checks(&parsed, facts, &mut checks),
        // Unreachable through `decide` (ignored above); kept total so no input can panic.
        SignerClass::Other => {}
    }
    let violations: Vec<String> = checks.iter().filter_map(|c| c.detail.clone()).collect();
    let verdict = match (class, violations.is_empty()) {
        (SignerClass::KubeletClient, true) => Verdict::Authorize,
        (SignerClass::KubeletServing, true) => Verdict::Manual,
        (SignerClass::Other, _) => Verdict::Ignore,
        (_, false) => Verdict::Reject,
    };
    let subject_access_reviews = if verdict == Verdict::Authorize {
        super::sar::recognized_subresources(facts.username, &parsed)
    } else {
        Vec::new()
    };
    Decision {
        class,
        verdict,
        subject_access_reviews,
        violations,
        checks,
        ignore_reason: None,
        parsed: Some(parsed),
    }
}
