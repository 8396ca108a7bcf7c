//! `tlsboot approve` / `tlsboot deny`: kubectl's semantics and output, plus tlsboot's refusal to
//! approve a CSR whose checks fail (without `--force`). Every write goes through
//! [`crate::cluster::write_approval`].

use std::io::Write;
use std::process::ExitCode;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::assess::{Assessment, ClusterFacts, assess};
use super::error::{ReviewError, exit_code, report};
use super::format::{for_output, resource_name, terminal_safe};
use super::list::{sort_queue, to_json_pretty};
use super::session::Session;
use crate::cluster::csr_status::awaits_decision;
use crate::cluster::{
    ApiError, ApprovalDecision, ApprovalError, ApprovalOutcome, ApprovalWrite, Connection,
    write_approval,
};
use crate::policy::{SIGNER_KUBELET_SERVING, SignerClass};

/// Condition `reason` of an approval written by tlsboot's review commands.
pub const REASON_APPROVE: &str = "TlsbootApprove";
/// Condition `reason` of a denial written by tlsboot's review commands.
pub const REASON_DENY: &str = "TlsbootDeny";
/// kubectl's bound on 409 retries.
pub const MAX_CONFLICT_RETRIES: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionOutput {
    /// `certificatesigningrequest.certificates.k8s.io/NAME`, without the verb.
    Name,
    /// The CSR as stored.
    Json,
    Yaml,
}

/// Flags shared by approve and deny.
#[derive(Debug, Clone, clap::Args)]
pub struct DecisionFlags {
    /// Update the CSR even if it already has the condition (as kubectl); for approve, also
    /// approve it although checks fail or could not be evaluated.
    #[arg(long)]
    pub force: bool,

    /// Server-side dry run: admission and RBAC run, nothing is stored. `--dry-run=server` is
    /// accepted for kubectl habits.
    #[arg(
        long,
        value_name = "server",
        num_args = 0..=1,
        default_missing_value = "server",
        value_parser = ["server"]
    )]
    pub dry_run: Option<String>,

    /// Output format (default: `certificatesigningrequest.certificates.k8s.io/NAME approved`).
    #[arg(short, long, value_enum)]
    pub output: Option<DecisionOutput>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ApproveArgs {
    /// Names of the CSRs to approve.
    #[arg(
        value_name = "NAME",
        required_unless_present = "all_valid",
        conflicts_with = "all_valid"
    )]
    pub names: Vec<String>,

    /// Approve every pending kubelet-serving CSR whose checks all pass; the others are listed
    /// on stderr with the checks that failed or could not be evaluated. Never approves
    /// kubelet-client CSRs.
    #[arg(long, conflicts_with = "force")]
    pub all_valid: bool,

    #[command(flatten)]
    pub flags: DecisionFlags,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DenyArgs {
    /// Names of the CSRs to deny.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,

    /// Why, in words; recorded in the Denied condition's message.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    #[command(flatten)]
    pub flags: DecisionFlags,
}

/// Which command writes, for the condition message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Approve,
    Deny,
    Review,
}

impl Via {
    fn command(self) -> &'static str {
        match self {
            Via::Approve => "tlsboot approve",
            Via::Deny => "tlsboot deny",
            Via::Review => "tlsboot review",
        }
    }
}

/// The checks an approval went past with `--force`, for the condition message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forced {
    pub failed: Vec<&'static str>,
    /// Checks that could not be evaluated.
    pub unknown: Vec<&'static str>,
}

impl Forced {
    pub fn is_empty(&self) -> bool {
        self.failed.is_empty() && self.unknown.is_empty()
    }
}

/// The condition message: who decided, with which tlsboot command, and anything the audit
/// trail should keep (checks overridden with --force, failed and unknown apart; the deny
/// reason).
pub fn condition_message(
    decision: ApprovalDecision,
    user: Option<&str>,
    via: Via,
    forced: &Forced,
    reason: Option<&str>,
) -> String {
    let verb = match decision {
        ApprovalDecision::Approve => "Approved",
        ApprovalDecision::Deny => "Denied",
    };
    let who = user.unwrap_or("an unidentified user");
    let mut m = format!("{verb} by {who} with {}.", via.command());
    let failed = (!forced.failed.is_empty())
        .then(|| format!("these checks failed: {}", forced.failed.join(", ")));
    let unknown = (!forced.unknown.is_empty()).then(|| {
        format!(
            "these checks could not be evaluated: {}",
            forced.unknown.join(", ")
        )
    });
    match (failed, unknown) {
        (Some(f), Some(u)) => m.push_str(&format!(" Approved with --force although {f}; and {u}.")),
        (Some(one), None) | (None, Some(one)) => {
            m.push_str(&format!(" Approved with --force although {one}."))
        }
        (None, None) => {}
    }
    if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        m.push_str(&format!(" Reason: {r}"));
    }
    m
}

/// What approving `a` needs: `Ok(checks forced past, to record)` or `Err(refusal)`. A check
/// that could not be evaluated blocks exactly as a failed one does.
pub fn approval_gate(a: &Assessment, force: bool) -> Result<Forced, ReviewError> {
    let forced = Forced {
        failed: a.failed().map(|c| c.name).collect(),
        unknown: a.unknown().map(|c| c.name).collect(),
    };
    if forced.is_empty() || force {
        return Ok(forced);
    }
    if a.decision.parsed.is_none() && a.class != SignerClass::Other {
        let reason = a
            .failed()
            .next()
            .and_then(|c| c.detail.clone())
            .unwrap_or_default();
        return Err(ReviewError::MalformedRequest {
            name: a.name.clone(),
            reason,
        });
    }
    Err(ReviewError::Refused(a.refusal().unwrap_or_default()))
}

/// One decision to write.
pub struct DecisionRequest<'a> {
    pub decision: ApprovalDecision,
    pub via: Via,
    pub user: Option<&'a str>,
    pub force: bool,
    pub dry_run: bool,
    pub reason: Option<&'a str>,
}

/// What happened to one CSR.
#[derive(Debug)]
pub enum Done {
    Written(Box<CertificateSigningRequest>),
    /// The condition was already there (kubectl prints success anyway).
    Already(Box<CertificateSigningRequest>),
}

/// Checks (approve only), then writes through `write_approval`. Errors come back explained.
pub async fn decide_one(
    session: &Session,
    csr: CertificateSigningRequest,
    facts: &ClusterFacts,
    req: &DecisionRequest<'_>,
) -> Result<Done, ReviewError> {
    let a = assess(&csr, facts);
    // Only a pending CSR is judged: on a decided one kubectl's rules come first (the opposite
    // condition is an error, the same one is nothing to do), and write_approval applies them.
    let forced_past = if req.decision == ApprovalDecision::Approve && awaits_decision(&csr) {
        approval_gate(&a, req.force)?
    } else {
        Forced::default()
    };
    let write = ApprovalWrite {
        decision: req.decision,
        reason: match req.decision {
            ApprovalDecision::Approve => REASON_APPROVE,
            ApprovalDecision::Deny => REASON_DENY,
        }
        .to_owned(),
        message: condition_message(req.decision, req.user, req.via, &forced_past, req.reason),
        force: req.force,
        dry_run: req.dry_run,
        max_conflict_retries: MAX_CONFLICT_RETRIES,
    };
    let approving = req.decision == ApprovalDecision::Approve;
    let force = req.force;
    // Re-read copies after a 409 are judged again: the spec cannot change, but a copy that
    // suddenly fails (e.g. replaced under the same name) must not be approved.
    let recheck = |c: &CertificateSigningRequest| {
        if approving && !force {
            match assess(c, facts).refusal() {
                Some(r) => Err(r),
                None => Ok(()),
            }
        } else {
            Ok(())
        }
    };
    let name = a.name.clone();
    let signer = a.signer_name.clone();
    let original = csr.clone();
    match write_approval(&session.csrs(), csr, &write, recheck, || Ok(())).await {
        Ok(ApprovalOutcome::Written(stored)) => Ok(Done::Written(stored)),
        Ok(ApprovalOutcome::AlreadyDone) => Ok(Done::Already(Box::new(original))),
        Ok(ApprovalOutcome::Refused(r)) => Err(ReviewError::Refused(r)),
        Ok(ApprovalOutcome::Replaced { old_uid, new_uid }) => Err(ReviewError::Refused(format!(
            "certificate signing request {name:?} was deleted and re-created since it was \
             reviewed (reviewed uid {old_uid}, now uid {new_uid}); nothing was written: \
             review it again"
        ))),
        Ok(ApprovalOutcome::RequesterChanged { uid, fields }) => {
            let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
            Err(ReviewError::Refused(format!(
                "certificate signing request {name:?} (uid {uid}) names a different requester \
                 ({}) than when it was reviewed; nothing was written: review it again",
                fields.join(", ")
            )))
        }
        Err(ApprovalError::NotFound { name }) => Err(ReviewError::NotFound { name }),
        Err(ApprovalError::Forbidden {
            decision, message, ..
        }) => Err(ReviewError::Forbidden(
            session
                .explain_approval_forbidden(req.user, decision.verb(), &name, &signer, &message)
                .await,
        )),
        Err(ApprovalError::Api {
            decision, error, ..
        }) => {
            let action = decision.gerund();
            Err(if ApiError::of(&error).answered() {
                ReviewError::Api {
                    what: format!("{action} certificate signing request {name:?}"),
                    detail: ApiError::of(&error).to_string(),
                }
            } else {
                session.api_error(format!("{action} {name:?}"), error)
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// kubectl's per-object output.
pub fn print_done(
    out: &mut impl Write,
    done: &Done,
    verb: &str,
    dry_run: bool,
    output: Option<DecisionOutput>,
) -> Result<(), ReviewError> {
    let csr = match done {
        Done::Written(c) | Done::Already(c) => c,
    };
    let name = csr.metadata.name.clone().unwrap_or_default();
    match output {
        None => {
            let suffix = if dry_run { " (server dry run)" } else { "" };
            writeln!(
                out,
                "{} {verb}{suffix}",
                terminal_safe(&resource_name(&name))
            )?;
        }
        Some(DecisionOutput::Name) => writeln!(out, "{}", terminal_safe(&resource_name(&name)))?,
        Some(DecisionOutput::Json) => writeln!(out, "{}", to_json_pretty(&for_output(csr))?)?,
        Some(DecisionOutput::Yaml) => {
            out.write_all(serde_yaml_ng::to_string(&for_output(csr))?.as_bytes())?
        }
    }
    Ok(())
}

pub async fn run_approve(conn: &Connection, args: &ApproveArgs) -> Result<ExitCode, ReviewError> {
    approve(conn, args).await
}

pub async fn run_deny(conn: &Connection, args: &DenyArgs) -> Result<ExitCode, ReviewError> {
    decide_named(
        conn,
        &args.names,
        ApprovalDecision::Deny,
        &args.flags,
        args.reason.as_deref(),
    )
    .await
}

/// The caller's name for condition messages; a warning (not a failure) when unknown.
pub async fn current_user(session: &Session) -> Option<String> {
    match session.whoami().await {
        Ok(u) => Some(u),
        Err(why) => {
            eprintln!(
                "warning: could not find out who you are (SelfSubjectReview: {why}); \
                 the condition message will say \"an unidentified user\""
            );
            None
        }
    }
}

async fn approve(conn: &Connection, args: &ApproveArgs) -> Result<ExitCode, ReviewError> {
    if !args.all_valid {
        return decide_named(
            conn,
            &args.names,
            ApprovalDecision::Approve,
            &args.flags,
            None,
        )
        .await;
    }
    let session = Session::connect(conn).await?;
    let mut csrs = session
        .list_csrs(&[SIGNER_KUBELET_SERVING.to_owned()])
        .await?;
    csrs.retain(awaits_decision);
    sort_queue(&mut csrs);
    if csrs.is_empty() {
        eprintln!("No pending {SIGNER_KUBELET_SERVING} CSRs.");
        return Ok(ExitCode::SUCCESS);
    }
    let facts = session.cluster_facts(&csrs).await?;
    let user = current_user(&session).await;
    let req = DecisionRequest {
        decision: ApprovalDecision::Approve,
        via: Via::Approve,
        user: user.as_deref(),
        // --force conflicts with --all-valid: it must never let a failing CSR through.
        force: false,
        dry_run: args.flags.dry_run.is_some(),
        reason: None,
    };
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for csr in csrs {
        let a = assess(&csr, &facts);
        if !a.passes() {
            eprintln!(
                "{}",
                terminal_safe(&format!(
                    "skipped {}: {}",
                    a.name,
                    a.blocking_lines().join("; ")
                ))
            );
            continue;
        }
        if !decide_and_print(&session, csr, &facts, &req, args.flags.output, &mut out).await? {
            failed = true;
        }
    }
    Ok(exit_code(failed))
}

async fn decide_named(
    conn: &Connection,
    names: &[String],
    decision: ApprovalDecision,
    flags: &DecisionFlags,
    reason: Option<&str>,
) -> Result<ExitCode, ReviewError> {
    let session = Session::connect(conn).await?;
    let (csrs, all_read) = session.get_csrs(names).await?;
    let mut failed = !all_read;
    if csrs.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    // Denials need no Node comparison; approvals do.
    let facts = if decision == ApprovalDecision::Approve {
        session.cluster_facts(&csrs).await?
    } else {
        ClusterFacts::default()
    };
    let user = current_user(&session).await;
    let via = match decision {
        ApprovalDecision::Approve => Via::Approve,
        ApprovalDecision::Deny => Via::Deny,
    };
    let req = DecisionRequest {
        decision,
        via,
        user: user.as_deref(),
        force: flags.force,
        dry_run: flags.dry_run.is_some(),
        reason,
    };
    let mut out = std::io::stdout().lock();
    for csr in csrs {
        if !decide_and_print(&session, csr, &facts, &req, flags.output, &mut out).await? {
            failed = true;
        }
    }
    Ok(exit_code(failed))
}

/// Writes one decision and prints it as kubectl does; `false` (after saying why on stderr)
/// when it could not be written. Deciding a CSR the same way twice changes nothing: said
/// unless `--force` asked to write it anyway.
async fn decide_and_print(
    session: &Session,
    csr: CertificateSigningRequest,
    facts: &ClusterFacts,
    req: &DecisionRequest<'_>,
    output: Option<DecisionOutput>,
    out: &mut impl Write,
) -> Result<bool, ReviewError> {
    let verb = match req.decision {
        ApprovalDecision::Approve => "approved",
        ApprovalDecision::Deny => "denied",
    };
    let done = match decide_one(session, csr, facts, req).await {
        Ok(done) => done,
        Err(e) => {
            report(&e);
            return Ok(false);
        }
    };
    if let Done::Already(c) = &done
        && !req.force
    {
        eprintln!(
            "note: {} was already {verb}; nothing was changed",
            terminal_safe(c.metadata.name.as_deref().unwrap_or_default())
        );
    }
    print_done(out, &done, verb, req.dry_run, output)?;
    out.flush()?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::review::assess::ClusterFacts;
    use crate::review::assess::tests::node_facts;
    use crate::review::assess::tests::serving_csr;

    fn facts_with_n1() -> ClusterFacts {
        ClusterFacts {
            api_service_ips: Ok(vec!["10.0.0.1".parse().unwrap()]),
            ..node_facts(&[("n1", &[("InternalIP", "10.1.0.1"), ("Hostname", "n1")])])
        }
    }

    #[test]
    fn messages_name_tlsboot_the_user_and_overrides() {
        assert_eq!(
            condition_message(
                ApprovalDecision::Approve,
                Some("alice"),
                Via::Approve,
                &Forced::default(),
                None
            ),
            "Approved by alice with tlsboot approve."
        );
        assert_eq!(
            condition_message(
                ApprovalDecision::Approve,
                Some("alice"),
                Via::Review,
                &Forced {
                    failed: vec!["sans-on-node"],
                    unknown: vec![]
                },
                None
            ),
            "Approved by alice with tlsboot review. Approved with --force although these checks failed: sans-on-node."
        );
        assert_eq!(
            condition_message(
                ApprovalDecision::Deny,
                None,
                Via::Deny,
                &Forced::default(),
                Some(" wrong IP ")
            ),
            "Denied by an unidentified user with tlsboot deny. Reason: wrong IP"
        );
        assert_eq!(
            condition_message(
                ApprovalDecision::Deny,
                Some("bob"),
                Via::Deny,
                &Forced::default(),
                Some("  ")
            ),
            "Denied by bob with tlsboot deny."
        );
    }

    #[test]
    fn gate_refuses_failing_checks_unless_forced() {
        let good = assess(
            &serving_csr("ok", "system:node:n1", "n1", &["n1", "10.1.0.1"]),
            &facts_with_n1(),
        );
        assert_eq!(approval_gate(&good, false).unwrap(), Forced::default());

        let bad = assess(
            &serving_csr("bad", "system:node:n1", "n1", &["n1", "10.0.0.1"]),
            &facts_with_n1(),
        );
        match approval_gate(&bad, false) {
            Err(ReviewError::Refused(text)) => {
                assert!(text.contains("\"bad\""), "{text}");
                assert!(text.contains("sans-on-node"), "{text}");
                assert!(text.contains("no-service-identity"), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            approval_gate(&bad, true).unwrap(),
            Forced {
                failed: vec!["sans-on-node", "no-service-identity"],
                unknown: vec![]
            }
        );
    }

    #[test]
    fn gate_refuses_unknown_checks_like_failed_ones() {
        let mut facts = facts_with_n1();
        facts.api_service_ips = Err("services \"kubernetes\" is forbidden".into());
        let unknown = assess(
            &serving_csr("unk", "system:node:n1", "n1", &["n1", "10.1.0.1"]),
            &facts,
        );
        match approval_gate(&unknown, false) {
            Err(ReviewError::Refused(text)) => {
                assert!(text.contains("1 check could not be evaluated:"), "{text}");
                assert!(
                    text.contains("  - no-service-identity (unknown): could not read Service default/kubernetes to compare IP SANs: services \"kubernetes\" is forbidden"),
                    "{text}"
                );
                assert!(text.contains("--force"), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            approval_gate(&unknown, true).unwrap(),
            Forced {
                failed: vec![],
                unknown: vec!["no-service-identity"]
            }
        );

        // Failed and unknown together: both named, apart.
        let both = assess(
            &serving_csr("both", "system:node:n1", "n1", &["n1", "10.9.9.9"]),
            &facts,
        );
        let forced = approval_gate(&both, true).unwrap();
        assert_eq!(forced.failed, vec!["sans-on-node"]);
        assert_eq!(forced.unknown, vec!["no-service-identity"]);
        match approval_gate(&both, false) {
            Err(ReviewError::Refused(text)) => assert!(
                text.contains("1 check failed and 1 could not be evaluated:"),
                "{text}"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            condition_message(
                ApprovalDecision::Approve,
                Some("alice"),
                Via::Approve,
                &forced,
                None
            ),
            "Approved by alice with tlsboot approve. Approved with --force although these checks \
             failed: sans-on-node; and these checks could not be evaluated: no-service-identity."
        );
        assert_eq!(
            condition_message(
                ApprovalDecision::Approve,
                Some("alice"),
                Via::Approve,
                &Forced {
                    failed: vec![],
                    unknown: vec!["requester-authorized"]
                },
                None
            ),
            "Approved by alice with tlsboot approve. Approved with --force although these checks \
             could not be evaluated: requester-authorized."
        );
    }

    #[test]
    fn malformed_requests_get_their_own_error() {
        let mut csr = serving_csr("junk", "system:node:n1", "n1", &["n1"]);
        csr.spec.request.0 =
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                .to_vec();
        let a = assess(&csr, &facts_with_n1());
        match approval_gate(&a, false) {
            Err(e @ ReviewError::MalformedRequest { .. }) => {
                let t = e.to_string();
                assert!(t.contains("spec.request cannot be decoded"), "{t}");
            }
            other => panic!("expected MalformedRequest, got {other:?}"),
        }
    }

    #[test]
    fn output_matches_kubectl() {
        let csr = serving_csr("csr-q", "system:node:n1", "n1", &["n1"]);
        let done = Done::Written(Box::new(csr));
        let mut buf = Vec::new();
        print_done(&mut buf, &done, "approved", false, None).unwrap();
        print_done(&mut buf, &done, "denied", true, None).unwrap();
        print_done(
            &mut buf,
            &done,
            "approved",
            false,
            Some(DecisionOutput::Name),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "certificatesigningrequest.certificates.k8s.io/csr-q approved\n\
             certificatesigningrequest.certificates.k8s.io/csr-q denied (server dry run)\n\
             certificatesigningrequest.certificates.k8s.io/csr-q\n"
        );
    }
}
