//! The one decision type every caller reads, and [`decide`].

use super::check::Check;
use super::csr::{ParseError, ParsedCsr, parse_csr, stage};
use super::facts::CsrFacts;
use super::sar::SarSubresource;
use super::upstream::{SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING};
use super::{kubelet_client, kubelet_serving};
use serde::Serialize;

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
    /// A kubelet-client request whose content is invalid.
    Reject,
    /// A kubelet-serving request, whatever its checks say: a person decides. Failed checks are
    /// still listed in [`Decision::violations`] for that person.
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

/// The verdict for a CSR that was looked at, from its class and whether every check passed.
/// A serving CSR is always a person's call, even when its checks fail: its SANs are
/// self-reported, so no rule here can prove it good, and failing one does not prove it
/// malicious (a renamed node, a stale address) — the person sees the violations and decides.
/// Upstream never auto-decides serving CSRs either. Only a client CSR is rejected outright.
fn verdict_for(class: SignerClass, all_checks_pass: bool) -> Verdict {
    match (class, all_checks_pass) {
        (SignerClass::KubeletClient, true) => Verdict::Authorize,
        (SignerClass::KubeletClient, false) => Verdict::Reject,
        (SignerClass::KubeletServing, _) => Verdict::Manual,
        (SignerClass::Other, _) => Verdict::Ignore,
    }
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
                verdict: verdict_for(class, false),
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
    let verdict = verdict_for(class, violations.is_empty());
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
