//! One CSR through the daemon: policy → SubjectAccessReviews → fenced approval write.
//! Waiting CSRs explain themselves with one Event per cause.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::authz;
use super::config::Config;
use super::lease::LeaderHandle;
use super::metrics::{Metrics, Outcome};
use super::ratelimit::RateLimiter;
use crate::cluster::{
    ApiError, ApprovalDecision, ApprovalError, ApprovalOutcome, ApprovalWrite, write_approval,
};
use crate::policy::{self, CsrFacts, SarSubresource, Verdict};

/// Condition reason when `--deny-invalid` denies a kubelet client CSR.
pub const REASON_DENIED_INVALID: &str = "KubeletClientCSRInvalid";
/// Event reasons (CamelCase, shown by `kubectl describe csr` / `kubectl events`).
pub const EVENT_NOT_AUTHORIZED: &str = "NotAuthorized";
pub const EVENT_INVALID: &str = "InvalidRequest";
pub const EVENT_AWAITING_REVIEW: &str = "AwaitingReview";
/// Events for cluster-scoped objects live in `default`, as client-go's recorder puts them.
pub const EVENT_NAMESPACE: &str = "default";
pub const REPORTING_CONTROLLER: &str = "tlsboot.io/controller";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(
        "SubjectAccessReview {subresource} for CSR {name:?}: {}",
        ApiError::of(error)
    )]
    Sar {
        name: String,
        subresource: &'static str,
        error: kube::Error,
    },
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

/// What the work queue does with a CSR after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until the CSR changes (or the periodic resync).
    Done,
    /// Try again after this long (refused SAR, API error).
    RetryAfter(Duration),
}

/// Per-CSR memory: which causes were already reported, how often the SARs were refused.
#[derive(Debug, Default)]
struct Memo {
    reported: HashSet<&'static str>,
    refusals: u32,
}

/// Shared by every reconcile.
pub struct Context {
    pub csrs: Api<CertificateSigningRequest>,
    pub sars: Api<SubjectAccessReview>,
    pub events: Api<Event>,
    pub leader: LeaderHandle,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    pub config: Arc<Config>,
    pub sar_cache: authz::SarCache,
    memos: Mutex<HashMap<String, Memo>>,
    event_budget: Mutex<HashMap<String, super::ratelimit::Bucket>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        leader: LeaderHandle,
        metrics: Metrics,
        config: Arc<Config>,
    ) -> Self {
        Context {
            csrs: Api::all(client.clone()),
            sars: Api::all(client.clone()),
            events: Api::namespaced(client, EVENT_NAMESPACE),
            leader,
            metrics,
            limiter: RateLimiter::new(config.kube_api_qps, config.kube_api_burst),
            sar_cache: authz::SarCache::new(config.sar_cache_ttl),
            config,
            memos: Mutex::new(HashMap::new()),
            event_budget: Mutex::new(HashMap::new()),
        }
    }

    /// Per-requester Event budget: one bad token cannot flood the events API.
    fn event_allowed(&self, requestor: &str) -> bool {
        let per_minute = self.config.events_per_requester_per_minute;
        if per_minute == 0 {
            return false;
        }
        let now = Instant::now();
        let mut budgets = self.event_budget.lock().unwrap_or_else(|e| e.into_inner());
        if budgets.len() > 10_000 {
            budgets.clear();
        }
        budgets
            .entry(requestor.to_owned())
            .or_insert_with(|| {
                super::ratelimit::Bucket::new(f64::from(per_minute) / 60.0, per_minute, now)
            })
            .try_take(now)
    }

    /// True the first time `cause` is seen for this CSR: one Event, one metric per cause.
    fn first_report(&self, uid: &str, cause: &'static str) -> bool {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        memos
            .entry(uid.to_owned())
            .or_default()
            .reported
            .insert(cause)
    }

    fn next_backoff(&self, uid: &str) -> Duration {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        let memo = memos.entry(uid.to_owned()).or_default();
        let delay = backoff(
            self.config.backoff_base,
            self.config.backoff_max,
            memo.refusals,
        );
        memo.refusals = memo.refusals.saturating_add(1);
        delay
    }

    fn forget(&self, uid: &str) {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        memos.remove(uid);
    }

    /// How many CSRs are remembered (reported causes, refusal counts).
    #[cfg(test)]
    pub(crate) fn memo_count(&self) -> usize {
        self.memos.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Remembers that `cause` was reported for `uid`, as a reconcile does.
    #[cfg(test)]
    pub(crate) fn remember(&self, uid: &str, cause: &'static str) {
        self.first_report(uid, cause);
    }

    /// Drops memos of CSRs that no longer exist, so memory follows the cluster.
    pub fn retain_memos(&self, live: &HashSet<String>) {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        memos.retain(|uid, _| live.contains(uid));
    }
}

/// Upstream's item backoff is 200 ms doubling to 1000 s; we cap lower (configurable)
/// because the periodic resync also retries.
pub fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.min(30));
    base.saturating_mul(factor).min(max)
}

fn csr_name(csr: &CertificateSigningRequest) -> &str {
    csr.metadata.name.as_deref().unwrap_or("")
}

fn node_of(csr: &CertificateSigningRequest, decision: &policy::Decision) -> String {
    decision
        .parsed
        .as_ref()
        .and_then(|p| p.common_names.first())
        .and_then(|cn| cn.strip_prefix("system:node:"))
        .map(str::to_owned)
        .unwrap_or_else(|| csr.spec.username.clone().unwrap_or_default())
}

pub async fn reconcile(
    csr: Arc<CertificateSigningRequest>,
    ctx: Arc<Context>,
) -> Result<Next, ReconcileError> {
    // A standby makes no API calls at all; becoming leader re-runs every CSR.
    if !ctx.leader.is_leader() {
        return Ok(Next::Done);
    }
    let decision = policy::decide(&CsrFacts::from_csr(&csr));
    let node = node_of(&csr, &decision);
    let span = tracing::info_span!(
        "csr",
        csr = %csr_name(&csr),
        node = %node,
        requestor = %csr.spec.username.as_deref().unwrap_or(""),
        signer = %csr.spec.signer_name
    );
    // Instrument rather than enter: a span guard held across `.await` leaks into
    // whatever else the worker thread runs.
    act(csr, ctx, decision).instrument(span).await
}

/// One CSR, by the policy's verdict: forget it, queue it for a person, refuse it, or ask the
/// SubjectAccessReviews and approve.
async fn act(
    csr: Arc<CertificateSigningRequest>,
    ctx: Arc<Context>,
    decision: policy::Decision,
) -> Result<Next, ReconcileError> {
    let uid = csr
        .metadata
        .uid
        .clone()
        .unwrap_or_else(|| csr_name(&csr).to_owned());
    // The policy alone picks the verdict (a serving CSR is Manual even when its checks fail),
    // so `tlsboot inspect` and `tlsboot list` show exactly what the daemon does.
    match decision.verdict {
        Verdict::Ignore => {
            ctx.forget(&uid);
            Ok(Next::Done)
        }
        Verdict::Manual => {
            queue_for_review(&ctx, &csr, &uid, &decision).await;
            Ok(Next::Done)
        }
        Verdict::Reject => {
            refuse_invalid(&ctx, &csr, &uid, &decision).await?;
            Ok(Next::Done)
        }
        Verdict::Authorize => authorize(&ctx, &csr, &uid, &decision).await,
    }
}

/// Manual: one AwaitingReview Event saying how to review it and which checks fail.
async fn queue_for_review(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    uid: &str,
    decision: &policy::Decision,
) {
    if !ctx.first_report(uid, EVENT_AWAITING_REVIEW) {
        return;
    }
    let name = csr_name(csr);
    ctx.metrics
        .decision(&csr.spec.signer_name, Outcome::queued_for_review);
    let failed = decision.checks.iter().filter(|c| !c.passed).count();
    tracing::info!(
        decision = "queued-for-review",
        failed_checks = failed,
        "serving CSR needs a person"
    );
    let note = format!(
        "kubelet serving certificates are never auto-approved: a person must review it \
         (tlsboot inspect {name}; tlsboot approve {name}); {}",
        if failed == 0 {
            "all checks pass".to_owned()
        } else {
            format!("{failed} check(s) fail: {}", decision.violations.join("; "))
        }
    );
    publish_event(ctx, csr, "Normal", EVENT_AWAITING_REVIEW, "Queue", note).await;
}

/// Reject: Denied with `--deny-invalid`, otherwise one InvalidRequest Event.
async fn refuse_invalid(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    uid: &str,
    decision: &policy::Decision,
) -> Result<(), ReconcileError> {
    let signer = &csr.spec.signer_name;
    let reasons = decision.violations.join("; ");
    if ctx.config.deny_invalid {
        let message = format!("Denied by tlsboot: {reasons}");
        if write(
            ctx,
            csr,
            ApprovalDecision::Deny,
            REASON_DENIED_INVALID,
            &message,
        )
        .await?
        {
            ctx.metrics.decision(signer, Outcome::denied);
            tracing::info!(decision = "denied", reasons = %reasons, "denied invalid kubelet client CSR");
        }
    } else if ctx.first_report(uid, EVENT_INVALID) {
        ctx.metrics.decision(signer, Outcome::invalid);
        tracing::info!(decision = "invalid", reasons = %reasons, "ignoring invalid kubelet client CSR");
        let note = format!(
            "not approving: the request is not a valid kubelet client certificate request: {reasons}"
        );
        publish_event(ctx, csr, "Warning", EVENT_INVALID, "Validate", note).await;
    }
    Ok(())
}

/// Authorize: the SubjectAccessReviews in upstream order; the first allowed one approves.
/// All refused: one NotAuthorized Event, then retry with backoff (RBAC may change).
async fn authorize(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    uid: &str,
    decision: &policy::Decision,
) -> Result<Next, ReconcileError> {
    for sub in decision.subject_access_reviews.iter().copied() {
        if sar_allowed(ctx, csr, sub).await? {
            approve(ctx, csr, sub).await?;
            ctx.forget(uid);
            return Ok(Next::Done);
        }
    }
    let explanation = authz::explain_refusal(csr, &decision.subject_access_reviews);
    if ctx.first_report(uid, EVENT_NOT_AUTHORIZED) {
        ctx.metrics
            .decision(&csr.spec.signer_name, Outcome::not_authorized);
        tracing::info!(decision = "not-authorized", "{explanation}");
        publish_event(
            ctx,
            csr,
            "Warning",
            EVENT_NOT_AUTHORIZED,
            "Authorize",
            explanation,
        )
        .await;
    }
    let delay = ctx.next_backoff(uid);
    tracing::debug!(?delay, "requeueing refused CSR");
    Ok(Next::RetryAfter(delay))
}

/// Writes the approval `sub` allowed, and counts it when this replica wrote it.
async fn approve(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    sub: SarSubresource,
) -> Result<(), ReconcileError> {
    let message = sub.approval_message();
    if !write(
        ctx,
        csr,
        ApprovalDecision::Approve,
        policy::REASON_AUTO_APPROVED,
        message,
    )
    .await?
    {
        return Ok(());
    }
    ctx.metrics
        .decision(&csr.spec.signer_name, Outcome::approved);
    if let Some(created) = &csr.metadata.creation_timestamp {
        let secs = Timestamp::now().duration_since(created.0).as_secs_f64();
        ctx.metrics.create_to_approved.observe(secs.max(0.0));
    }
    tracing::info!(
        decision = "approved",
        subresource = sub.as_str(),
        "approved kubelet client CSR"
    );
    Ok(())
}

async fn sar_allowed(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    sub: SarSubresource,
) -> Result<bool, ReconcileError> {
    // docs/security.md D1: the answer depends only on the requester, so a burst through one
    // bootstrap token costs one SAR per TTL instead of one per CSR.
    let key = authz::SarKey::new(csr, sub);
    if let Some(allowed) = ctx.sar_cache.get(&key, Instant::now()) {
        return Ok(allowed);
    }
    let gate = ctx.sar_cache.gate(&key);
    let _asking = match &gate {
        Some(g) => Some(g.lock().await),
        None => None,
    };
    // Whoever held the gate before us may have just answered.
    if let Some(allowed) = ctx.sar_cache.get(&key, Instant::now()) {
        return Ok(allowed);
    }
    let sar = authz::subject_access_review(csr, sub);
    ctx.limiter.acquire().await;
    let started = Instant::now();
    let result = ctx.sars.create(&PostParams::default(), &sar).await;
    ctx.metrics
        .sar_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(review) => {
            let allowed = review.status.is_some_and(|s| s.allowed);
            ctx.sar_cache.put(key, allowed, started);
            Ok(allowed)
        }
        Err(error) => {
            ctx.metrics.api_error("create_subjectaccessreview", &error);
            Err(ReconcileError::Sar {
                name: csr_name(csr).to_owned(),
                subresource: sub.as_str(),
                error,
            })
        }
    }
}

/// Writes the condition unless dry-run; `Ok(true)` when this replica wrote it.
async fn write(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    decision: ApprovalDecision,
    reason: &str,
    message: &str,
) -> Result<bool, ReconcileError> {
    if ctx.config.dry_run {
        tracing::info!(
            dry_run = true,
            condition = decision.condition_type(),
            reason,
            "would write condition"
        );
        return Ok(false);
    }
    let write = ApprovalWrite {
        decision,
        reason: reason.to_owned(),
        message: message.to_owned(),
        force: false,
        dry_run: false,
        max_conflict_retries: 5,
    };
    let expect = match decision {
        ApprovalDecision::Approve => Verdict::Authorize,
        ApprovalDecision::Deny => Verdict::Reject,
    };
    // write_approval only ever writes to the decided object from the decided requester
    // (same metadata.uid and spec requester fields), so the SubjectAccessReviews above
    // still speak for any copy that reaches this check. What can differ on a re-read after
    // a 409 is the content's verdict (it may have been decided meanwhile): judged again.
    // The first copy *is* the decided one: no second parse.
    let decided_version = csr.metadata.resource_version.clone();
    let recheck = |fresh: &CertificateSigningRequest| {
        if decided_version.is_some() && fresh.metadata.resource_version == decided_version {
            return Ok(());
        }
        let d = policy::decide(&CsrFacts::from_csr(fresh));
        if d.verdict == expect {
            Ok(())
        } else {
            Err(format!("re-read CSR is now {:?}", d.verdict))
        }
    };
    let leader = ctx.leader.clone();
    ctx.limiter.acquire().await;
    let started = Instant::now();
    let result = write_approval(&ctx.csrs, csr.clone(), &write, recheck, move || {
        leader.check()
    })
    .await;
    ctx.metrics
        .approval_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(ApprovalOutcome::Written(_)) => Ok(true),
        Ok(ApprovalOutcome::AlreadyDone) => Ok(false),
        Ok(ApprovalOutcome::Refused(why)) => {
            tracing::info!(reason = %why, "not writing: CSR changed meanwhile");
            Ok(false)
        }
        // Deleted and re-created under the same name between the decision and the write:
        // the new object is someone else's request and gets nothing from this decision.
        // No requeue is needed for it: its creation is a watch event, which queues the
        // name (work.rs `feed`; the reflector stores the new object before the event is
        // handed on), and a name queued while this reconcile holds it runs again once
        // it is done (queue.rs `add` → dirty → `done`). That run looks the name up in the
        // store, so it decides the new object from scratch: content, then its own SARs.
        Ok(ApprovalOutcome::Replaced { old_uid, new_uid }) => {
            ctx.metrics
                .decision(&csr.spec.signer_name, Outcome::replaced);
            tracing::warn!(
                %old_uid,
                %new_uid,
                condition = decision.condition_type(),
                "not writing: the CSR was deleted and re-created under the same name since it \
                 was decided; the new object gets a decision of its own"
            );
            Ok(false)
        }
        Ok(ApprovalOutcome::RequesterChanged { uid, fields }) => {
            let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
            tracing::warn!(
                %uid,
                fields = %fields.join(", "),
                condition = decision.condition_type(),
                "not writing: the re-read CSR names a different requester than the one decided on"
            );
            Ok(false)
        }
        // Someone else decided the other way: theirs stands, never a second condition.
        Err(ApprovalError::OppositeCondition { .. }) => Ok(false),
        Err(ApprovalError::NotFound { .. }) => Ok(false),
        Err(err) => {
            if let Some(code) = err.status_code() {
                ctx.metrics
                    .api_error_code("update_approval", &code.to_string());
            }
            Err(err.into())
        }
    }
}

/// Best effort: an Event that fails to post must never block a decision.
async fn publish_event(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    type_: &str,
    reason: &str,
    action: &str,
    mut note: String,
) {
    // A reconcile in flight when we stepped down must not write anything either.
    if ctx.config.dry_run || !ctx.leader.is_leader() {
        return;
    }
    let requestor = csr.spec.username.as_deref().unwrap_or("");
    if !ctx.event_allowed(requestor) {
        tracing::debug!(
            reason,
            requestor,
            "Event budget for this requester spent; not posting"
        );
        return;
    }
    // The events API caps notes at 1 kB.
    if note.len() > 1000 {
        let mut cut = 997;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let name = csr_name(csr);
    let now = Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name(name, now)),
            namespace: Some(EVENT_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.to_owned()),
        reason: Some(reason.to_owned()),
        action: Some(action.to_owned()),
        note: Some(note),
        reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
        reporting_instance: Some(ctx.config.identity.clone()),
        regarding: Some(ObjectReference {
            api_version: Some("certificates.k8s.io/v1".to_owned()),
            kind: Some("CertificateSigningRequest".to_owned()),
            name: Some(name.to_owned()),
            uid: csr.metadata.uid.clone(),
            resource_version: csr.metadata.resource_version.clone(),
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    ctx.limiter.acquire().await;
    if let Err(err) = ctx.events.create(&PostParams::default(), &event).await {
        ctx.metrics.api_error("create_event", &err);
        tracing::warn!(error = %ApiError::of(&err), reason, "could not post Event");
    }
}

/// Event names must be DNS subdomains, but kubelet CSR names (`node-csr-<base64url>`)
/// carry upper case and `_`: lower-case and replace, keep it short, add client-go's
/// `.<hex nanoseconds>` suffix for uniqueness.
pub fn event_name(csr_name: &str, now: Timestamp) -> String {
    let mut base: String = csr_name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .take(200)
        .collect();
    while base.ends_with(['-', '.']) {
        base.pop();
    }
    let base = base.trim_start_matches(['-', '.']);
    let base = if base.is_empty() { "csr" } else { base };
    format!("{base}.{:x}", now.as_nanosecond())
}

pub fn error_policy(csr: &CertificateSigningRequest, err: &ReconcileError, ctx: &Context) -> Next {
    ctx.metrics.reconcile_errors.inc();
    let uid = csr.metadata.uid.clone().unwrap_or_default();
    let delay = ctx.next_backoff(&uid);
    tracing::warn!(csr = csr_name(csr), error = %err, ?delay, "reconcile failed; retrying");
    Next::RetryAfter(delay)
}

/// A reconcile that panicked wrote nothing (the write is its last step): back off and retry.
pub fn panic_policy(csr: &CertificateSigningRequest, ctx: &Context) -> Next {
    ctx.metrics.reconcile_errors.inc();
    let uid = csr.metadata.uid.clone().unwrap_or_default();
    Next::RetryAfter(ctx.next_backoff(&uid))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_dns_subdomains() {
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        let n = event_name("node-csr-Ab_9-XyZ", t);
        assert!(n.starts_with("node-csr-ab-9-xyz."), "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        );
        assert!(event_name("__", t).starts_with("csr."));
        assert!(event_name(&"x".repeat(400), t).len() < 253);
    }

    #[test]
    fn backoff_doubles_from_base_and_caps() {
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(300);
        assert_eq!(backoff(base, max, 0), Duration::from_millis(200));
        assert_eq!(backoff(base, max, 1), Duration::from_millis(400));
        assert_eq!(backoff(base, max, 5), Duration::from_millis(6400));
        assert_eq!(backoff(base, max, 20), max);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }
}
