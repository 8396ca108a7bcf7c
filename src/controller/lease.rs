//! Leader election on a coordination.k8s.io/v1 Lease with client-go semantics.
//!
//! Why not a crate: kube 5 has none built in, and kube-lease-manager keeps reporting
//! leadership through an API outage. Here leadership is a *local monotonic deadline*:
//! `valid_until = start of the last successful renew + renew_deadline`. Every write in
//! the daemon checks it immediately before sending ([`LeaderHandle::check`]), and since
//! `renew_deadline < lease_duration`, our deadline passes before any follower may take
//! over (followers time expiry from when *they* saw the record change, also locally).
//!
//! A Lease is editable by anyone with `update` on it, so what is read from it is not
//! trusted blindly: a foreign `leaseDurationSeconds` is bounded ([`foreign_lease_duration`]),
//! and a write conflict is answered by re-reading, never by exiting (a Lease editor could
//! otherwise crash-loop the leader at will).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::ApiError;

/// The longest lease this daemon writes (`--leader-elect-lease-duration`), and the most
/// it ever waits on a foreign record: a Lease edited to a huge `leaseDurationSeconds`
/// delays fail-over by at most this much. Also the cap for the other two durations.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(300);

/// client-go's `JitterFactor`: NewLeaderElector requires
/// `renewDeadline > retryPeriod * JitterFactor`, so a leader always gets more than one
/// renewal attempt (client-go jitters its retries by up to this factor).
pub const JITTER_FACTOR: f64 = 1.2;

/// Validated leader-election settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Why a leader-election setting was refused; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    #[error(
        "{flag} ({value}) must be a whole number of seconds: it is written to the Lease as \
         leaseDurationSeconds, and a truncated value would let a follower take over while \
         the leader still acts"
    )]
    NotWholeSeconds { flag: &'static str, value: String },
    #[error("{flag} ({value}) must be between {min} and {max}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        min: String,
        max: String,
    },
    #[error(
        "--leader-elect-lease-duration ({lease}) must be greater than \
         --leader-elect-renew-deadline ({renew}): followers wait the lease duration, and the \
         leader must stop acting before that"
    )]
    LeaseNotAboveRenew { lease: String, renew: String },
    #[error(
        "--leader-elect-renew-deadline ({renew}) must be greater than \
         --leader-elect-retry-period ({retry}) x 1.2 (client-go's JitterFactor) = \
         {bound}, so the leader gets more than one renewal attempt per deadline"
    )]
    RenewNotAboveRetry {
        renew: String,
        retry: String,
        bound: String,
    },
    #[error("leader election identity must not be empty")]
    EmptyIdentity,
}

/// `15s`, `2.5s`, `800ms`: how durations are shown back to people.
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `--leader-elect-lease-duration`: whole seconds in 1 s ..= [`MAX_LEASE_DURATION`].
pub fn check_lease_duration(d: Duration) -> Result<Duration, LeaseConfigError> {
    const FLAG: &str = "--leader-elect-lease-duration";
    if d.subsec_nanos() != 0 {
        return Err(LeaseConfigError::NotWholeSeconds {
            flag: FLAG,
            value: show(d),
        });
    }
    check_range(FLAG, d, Duration::from_secs(1))
}

/// `--leader-elect-renew-deadline` / `--leader-elect-retry-period`: 1 ms ..=
/// [`MAX_LEASE_DURATION`] (never zero; sub-second values are fine, they are not written).
pub fn check_period(flag: &'static str, d: Duration) -> Result<Duration, LeaseConfigError> {
    check_range(flag, d, Duration::from_millis(1))
}

fn check_range(
    flag: &'static str,
    d: Duration,
    min: Duration,
) -> Result<Duration, LeaseConfigError> {
    if d < min || d > MAX_LEASE_DURATION {
        return Err(LeaseConfigError::OutOfRange {
            flag,
            value: show(d),
            min: show(min),
            max: show(MAX_LEASE_DURATION),
        });
    }
    Ok(d)
}

impl LeaseConfig {
    /// The flag checks again (a `LeaseConfig` may be built without the flags), then
    /// client-go's invariants: `retry x JitterFactor < renew deadline < lease duration`.
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        check_lease_duration(self.lease_duration)?;
        check_period("--leader-elect-renew-deadline", self.renew_deadline)?;
        check_period("--leader-elect-retry-period", self.retry_period)?;
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaseConfigError::LeaseNotAboveRenew {
                lease: show(self.lease_duration),
                renew: show(self.renew_deadline),
            });
        }
        let bound = self.retry_period.mul_f64(JITTER_FACTOR);
        if self.renew_deadline <= bound {
            return Err(LeaseConfigError::RenewNotAboveRetry {
                renew: show(self.renew_deadline),
                retry: show(self.retry_period),
                bound: show(bound),
            });
        }
        if self.identity.is_empty() {
            return Err(LeaseConfigError::EmptyIdentity);
        }
        Ok(())
    }
}

/// The part of a Lease that decides who leads. Compared as a whole to notice renewals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    /// As read: `None` when the field is absent. Never used unbounded, see
    /// [`foreign_lease_duration`].
    pub lease_duration_seconds: Option<i32>,
    pub renew_time: Option<Timestamp>,
    pub acquire_time: Option<Timestamp>,
    pub transitions: i32,
}

impl LeaseRecord {
    pub fn from_spec(spec: Option<&LeaseSpec>) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        LeaseRecord {
            holder: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds,
            renew_time: spec.renew_time.map(|t| t.0),
            acquire_time: spec.acquire_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// What was wrong with a foreign holder's `leaseDurationSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationAnomaly {
    /// The field is absent.
    Missing,
    /// Zero or negative: taken literally, a follower would take over at once while the
    /// holder may still act until its own renew deadline.
    NotPositive(i32),
    /// Above [`MAX_LEASE_DURATION`]: taken literally, it would block fail-over for that long.
    AboveMax(i32),
    /// Shorter than our own lease duration. Legitimate while replicas are rolled to a new
    /// `--leader-elect-lease-duration`; otherwise an edit that could end our wait before
    /// the holder's renew deadline.
    BelowOurs(i32),
}

impl DurationAnomaly {
    /// Worth a warning: no replica of ours writes such a value.
    pub fn out_of_range(self) -> bool {
        !matches!(self, DurationAnomaly::BelowOurs(_))
    }
}

/// How long a follower waits, from when it saw a foreign record change, before taking
/// over: the record's `leaseDurationSeconds`, but never less than our own lease duration
/// (the holder's renew deadline is unknown to us; a replica of ours configured alike keeps
/// its deadline below `ours`, whatever the record says) and never more than
/// [`MAX_LEASE_DURATION`]. Waiting longer is always safe; it only delays fail-over.
pub fn foreign_lease_duration(
    raw: Option<i32>,
    ours: Duration,
) -> (Duration, Option<DurationAnomaly>) {
    let max = MAX_LEASE_DURATION.max(ours);
    match raw {
        None => (ours, Some(DurationAnomaly::Missing)),
        Some(s) if s <= 0 => (ours, Some(DurationAnomaly::NotPositive(s))),
        Some(s) => {
            let d = Duration::from_secs(u64::from(s.unsigned_abs()));
            if d > max {
                (max, Some(DurationAnomaly::AboveMax(s)))
            } else if d < ours {
                (ours, Some(DurationAnomaly::BelowOurs(s)))
            } else {
                (d, None)
            }
        }
    }
}

/// A record and the local instant we first saw it. Expiry is judged from this instant,
/// never from the record's wall-clock times, so clock skew between nodes cannot matter.
#[derive(Debug, Clone)]
pub struct Observed {
    pub record: LeaseRecord,
    pub at: Instant,
}

/// Keeps the old observation while the record is unchanged (the holder is not renewing).
pub fn observe(prev: Option<Observed>, current: LeaseRecord, now: Instant) -> Observed {
    match prev {
        Some(p) if p.record == current => p,
        _ => Observed {
            record: current,
            at: now,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No Lease object exists: create it holding it ourselves.
    Create,
    /// Free or expired: take it over (transitions + 1).
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease.
    Follow {
        holder: String,
        expires_in: Duration,
    },
}

/// The pure decision, unit-tested below. `ours` is our own lease duration, the floor of
/// any wait (see [`foreign_lease_duration`]).
pub fn decide(observed: Option<&Observed>, me: &str, ours: Duration, now: Instant) -> Step {
    let Some(o) = observed else {
        return Step::Create;
    };
    if o.record.holder == me {
        return Step::Renew;
    }
    // client-go's release protocol (ReleaseOnCancel): an empty holder is free at once.
    if o.record.holder.is_empty() {
        return Step::Acquire;
    }
    let (duration, _) = foreign_lease_duration(o.record.lease_duration_seconds, ours);
    let expiry = o.at + duration;
    if now >= expiry {
        Step::Acquire
    } else {
        Step::Follow {
            holder: o.record.holder.clone(),
            expires_in: expiry - now,
        }
    }
}

/// What the rest of the daemon sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderState {
    /// `Some(deadline)` while we lead; writes are allowed strictly before it.
    pub valid_until: Option<Instant>,
    pub transitions: u64,
}

/// Cheap, cloneable view of leadership for fencing writes.
#[derive(Debug, Clone)]
pub struct LeaderHandle {
    rx: watch::Receiver<LeaderState>,
    always: bool,
    /// Why leadership cannot be had until a person acts (see [`LeaderHandle::problem`]).
    problem: Problem,
}

/// Shared by the elector (writer) and every handle (readers, e.g. `/readyz`).
type Problem = std::sync::Arc<std::sync::Mutex<Option<String>>>;

impl LeaderHandle {
    /// For `--leader-elect=false`: always allowed to write.
    pub fn always_leader() -> Self {
        let (_tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        LeaderHandle {
            rx,
            always: true,
            problem: Problem::default(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.always
            || self
                .rx
                .borrow()
                .valid_until
                .is_some_and(|t| Instant::now() < t)
    }

    /// The fence: call immediately before every approval/deny write.
    pub fn check(&self) -> Result<(), String> {
        if self.is_leader() {
            Ok(())
        } else {
            Err("this replica does not hold a valid leader lease".to_owned())
        }
    }

    /// Resolves when we become leader (immediately when already leading): `true`, or
    /// `false` when the elector is gone (the process is stopping) and never will.
    pub async fn became_leader(&mut self) -> bool {
        if self.always {
            return true;
        }
        self.rx.wait_for(|s| s.valid_until.is_some()).await.is_ok()
    }

    /// Resolves when the elector stops leading (stepped down, lost or released the lease,
    /// or ended); never with `--leader-elect=false`. A deadline that passes unnoticed is
    /// caught by [`LeaderHandle::check`], not here.
    pub async fn stopped_leading(&mut self) {
        if self.always {
            return futures::future::pending().await;
        }
        let _ = self.rx.wait_for(|s| s.valid_until.is_none()).await;
    }

    /// A problem no retry can solve, in plain words with its fixes (today: the Lease's
    /// namespace does not exist); `None` while the election can make progress.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.rx.clone()
    }

    pub fn elected(&self) -> bool {
        self.always
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lost leader lease {namespace}/{name}: {reason}")]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// How the elector ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseExit {
    /// Shut down on request; the lease was released (or never held).
    Released,
}

/// Get → decide → write rounds in one attempt: a 409 means the Lease changed between our
/// read and our write, so we read again at once rather than after a retry period.
const ROUNDS_PER_ATTEMPT: usize = 4;

/// Runs the election loop.
///
/// Leadership ends in one of two ways. *Step-down*: the Lease is seen held by someone else
/// (on a read, or on re-reading after a 409), or the renew deadline passed while our writes
/// met conflicts: the fence closes at once, and the loop goes on as a follower, campaigning
/// again (no restart: anyone able to edit the Lease could otherwise crash-loop us).
/// *Lost*: the renew deadline passed without a conflict (API server unreachable or failing):
/// `run` returns `Err(Lost)` and the caller exits non-zero, as kube-controller-manager does.
pub struct Elector {
    api: Api<Lease>,
    problem: Problem,
    cfg: LeaseConfig,
    tx: watch::Sender<LeaderState>,
}

/// Called after each attempt so metrics can follow leadership without this module
/// knowing about them.
pub type OnChange = Box<dyn Fn(bool) + Send + Sync>;

/// The outcome of one create or update of the Lease.
enum Write {
    Done,
    Conflict,
    /// The Lease's namespace does not exist: no retry helps until a person acts.
    NoNamespace,
    Failed(String),
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig) -> (Self, LeaderHandle) {
        let (tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        let api = Api::namespaced(client, &cfg.namespace);
        let problem = Problem::default();
        (
            Elector {
                api,
                cfg,
                tx,
                problem: problem.clone(),
            },
            LeaderHandle {
                rx,
                always: false,
                problem,
            },
        )
    }

    /// `namespace/name`, as logs name the Lease.
    fn lease_ref(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    fn lost(&self, reason: impl Into<String>) -> LeaseError {
        self.tx.send_modify(|s| s.valid_until = None);
        LeaseError::Lost {
            namespace: self.cfg.namespace.clone(),
            name: self.cfg.name.clone(),
            reason: reason.into(),
        }
    }

    /// Closes the fence first, then tells the rest of the daemon; the loop goes on.
    fn step_down(&self, on_change: &OnChange, reason: &str) {
        self.tx.send_modify(|s| s.valid_until = None);
        on_change(false);
        tracing::warn!(
            lease = %self.lease_ref(),
            identity = %self.cfg.identity,
            reason,
            "stepped down: no longer leader ({reason}); writes are fenced, following and campaigning again"
        );
    }

    fn no_namespace(&self) -> String {
        let ns = &self.cfg.namespace;
        format!(
            "leader election cannot start: namespace {ns:?} does not exist, so the Lease {} \
             cannot be created. Fix one of: create it (kubectl create namespace {ns}); use an \
             existing namespace with --leader-elect-resource-namespace NAME; or run a single \
             replica with --leader-elect=false",
            self.lease_ref()
        )
    }

    /// Says a failed attempt once (a retry failing the same way is only a debug line), and
    /// publishes a problem that needs a person for `/readyz`.
    fn report(&self, outcome: &Attempt, last_failure: &mut Option<String>) {
        let (why, blocked) = match outcome {
            Attempt::Failed(why) => (why, false),
            Attempt::Blocked(why) => (why, true),
            _ => {
                *last_failure = None;
                *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return;
            }
        };
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = blocked.then(|| why.clone());
        if last_failure.as_deref() == Some(why.as_str()) {
            tracing::debug!(lease = %self.lease_ref(), error = %why, "leader election attempt failed again");
            return;
        }
        *last_failure = Some(why.clone());
        if blocked {
            tracing::error!(lease = %self.lease_ref(), "{why}");
        } else {
            tracing::warn!(lease = %self.lease_ref(), error = %why, "leader election attempt failed");
        }
    }

    fn leading_until(&self) -> Option<Instant> {
        self.tx.borrow().valid_until
    }

    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_change: OnChange,
    ) -> Result<LeaseExit, LeaseError> {
        let mut observed: Option<Observed> = None;
        let mut warned: Option<(String, Option<i32>)> = None;
        // A write of ours met a 409 since our last successful renewal: the API server
        // answers and someone else writes the Lease, so a passed deadline is contention,
        // not an outage.
        let mut conflict_since_renew = false;
        // The last failure said, so a retry that fails the same way is not said again.
        let mut last_failure: Option<String> = None;
        loop {
            let start = Instant::now();
            if let Some(until) = self.leading_until()
                && start >= until
            {
                let reason = format!(
                    "could not renew within the renew deadline ({})",
                    show(self.cfg.renew_deadline)
                );
                if conflict_since_renew {
                    self.step_down(
                        &on_change,
                        &format!(
                            "{reason}: the Lease kept changing under our writes (409 Conflict)"
                        ),
                    );
                } else {
                    on_change(false);
                    return Err(self.lost(reason));
                }
            }
            // Bound each attempt so a hung connection cannot outlive our deadline.
            let attempt_timeout = self.cfg.retry_period.max(Duration::from_millis(500));
            let mut conflicted = false;
            let outcome = {
                let attempt = tokio::time::timeout(
                    attempt_timeout,
                    self.try_once(&mut observed, &mut warned, &mut conflicted),
                );
                tokio::select! {
                    r = attempt => r.unwrap_or(Attempt::Failed("lease request timed out".into())),
                    _ = shutdown.cancelled() => Attempt::Shutdown,
                }
            };
            conflict_since_renew |= conflicted;
            self.report(&outcome, &mut last_failure);
            match outcome {
                Attempt::Leading => {
                    conflict_since_renew = false;
                    let was_leading = self.leading_until().is_some();
                    self.tx.send_modify(|s| {
                        s.valid_until = Some(start + self.cfg.renew_deadline);
                        if !was_leading {
                            s.transitions += 1;
                        }
                    });
                    if !was_leading {
                        tracing::info!(lease = %self.lease_ref(), identity = %self.cfg.identity, "became leader");
                    }
                    on_change(true);
                }
                Attempt::Following(holder) => {
                    if self.leading_until().is_some() {
                        self.step_down(&on_change, &format!("the Lease is now held by {holder:?}"));
                    } else {
                        on_change(false);
                    }
                }
                Attempt::Failed(_) | Attempt::Blocked(_) => {}
                Attempt::Shutdown => {
                    if self.leading_until().is_some() {
                        self.tx.send_modify(|s| s.valid_until = None);
                        on_change(false);
                        self.release().await;
                    }
                    return Ok(LeaseExit::Released);
                }
            }
            let wait = self.cfg.retry_period;
            tokio::select! {
                _ = tokio::time::sleep_until(start + wait) => {}
                _ = shutdown.cancelled() => {
                    if self.leading_until().is_some() {
                        self.tx.send_modify(|s| s.valid_until = None);
                        on_change(false);
                        self.release().await;
                    }
                    return Ok(LeaseExit::Released);
                }
            }
        }
    }

    async fn try_once(
        &self,
        observed: &mut Option<Observed>,
        warned: &mut Option<(String, Option<i32>)>,
        conflicted: &mut bool,
    ) -> Attempt {
        for _ in 0..ROUNDS_PER_ATTEMPT {
            let existing = match self.api.get_opt(&self.cfg.name).await {
                Ok(l) => l,
                Err(e) => return Attempt::Failed(format!("reading lease: {}", ApiError::of(&e))),
            };
            let Some(lease) = existing else {
                *observed = None;
                match self.create().await {
                    Write::Done => return Attempt::Leading,
                    // Someone created it between our read and our create: read theirs.
                    Write::Conflict => {
                        *conflicted = true;
                        continue;
                    }
                    Write::NoNamespace => return Attempt::Blocked(self.no_namespace()),
                    Write::Failed(why) => return Attempt::Failed(why),
                }
            };
            let record = LeaseRecord::from_spec(lease.spec.as_ref());
            self.check_foreign_duration(&record, warned);
            let now = Instant::now();
            let obs = observe(observed.take(), record, now);
            let step = decide(Some(&obs), &self.cfg.identity, self.cfg.lease_duration, now);
            *observed = Some(obs);
            let acquire = match step {
                Step::Follow { holder, .. } => return Attempt::Following(holder),
                Step::Renew => false,
                Step::Acquire | Step::Create => true,
            };
            match self.update(lease, acquire).await {
                Write::Done => return Attempt::Leading,
                // The Lease changed since our read (another candidate, or anyone editing
                // it, even only its labels): decide again on what it holds now.
                Write::Conflict => {
                    *conflicted = true;
                    tracing::debug!(lease = %self.lease_ref(), "lease changed under our write (409 Conflict); reading it again");
                }
                Write::NoNamespace => return Attempt::Blocked(self.no_namespace()),
                Write::Failed(why) => return Attempt::Failed(why),
            }
        }
        Attempt::Failed(format!(
            "the lease changed under each of our {ROUNDS_PER_ATTEMPT} writes (409 Conflict)"
        ))
    }

    /// One log line per (holder, value) whose `leaseDurationSeconds` we do not take as is.
    fn check_foreign_duration(
        &self,
        record: &LeaseRecord,
        warned: &mut Option<(String, Option<i32>)>,
    ) {
        if record.holder.is_empty() || record.holder == self.cfg.identity {
            return;
        }
        let raw = record.lease_duration_seconds;
        let (wait, anomaly) = foreign_lease_duration(raw, self.cfg.lease_duration);
        let Some(anomaly) = anomaly else {
            return;
        };
        let key = (record.holder.clone(), raw);
        if warned.as_ref() == Some(&key) {
            return;
        }
        *warned = Some(key);
        let value = raw.map_or_else(|| "absent".to_owned(), |v| v.to_string());
        let lease = self.lease_ref();
        let holder = &record.holder;
        let wait = show(wait);
        if anomaly.out_of_range() {
            tracing::warn!(
                lease = %lease,
                holder = %holder,
                lease_duration_seconds = %value,
                wait = %wait,
                "Lease {lease} held by {holder:?} has leaseDurationSeconds {value}, outside 1..={}: \
                 not trusted, a follower waits {wait} instead",
                MAX_LEASE_DURATION.as_secs()
            );
        } else {
            tracing::info!(
                lease = %lease,
                holder = %holder,
                lease_duration_seconds = %value,
                wait = %wait,
                "Lease {lease} held by {holder:?} has leaseDurationSeconds {value}, shorter than \
                 our own lease duration: a follower waits {wait} instead"
            );
        }
    }

    fn spec_now(&self, acquire: Option<Timestamp>, transitions: i32) -> LeaseSpec {
        let now = Timestamp::now();
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            // Exact: the flag is validated to whole seconds within MAX_LEASE_DURATION.
            lease_duration_seconds: Some(
                i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquire.unwrap_or(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn create(&self) -> Write {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.spec_now(None, 0)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Write::Done,
            Err(e) if ApiError::of(&e).is(409) => Write::Conflict,
            // A create in a namespace that does not exist is the one 404 a create can get.
            Err(e) if ApiError::of(&e).is(404) => Write::NoNamespace,
            Err(e) => Write::Failed(format!("creating lease: {}", ApiError::of(&e))),
        }
    }

    async fn update(&self, mut lease: Lease, acquire: bool) -> Write {
        let old = LeaseRecord::from_spec(lease.spec.as_ref());
        let spec = if acquire {
            self.spec_now(None, old.transitions.saturating_add(1))
        } else {
            self.spec_now(old.acquire_time, old.transitions)
        };
        lease.spec = Some(spec);
        // resourceVersion stays set: a concurrent writer makes this a 409, never a double hold.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Write::Done,
            Err(e) if ApiError::of(&e).is(409) => Write::Conflict,
            Err(e) => Write::Failed(format!("updating lease: {}", ApiError::of(&e))),
        }
    }

    /// Hands the lease over at once (client-go's ReleaseOnCancel): empty holder, 1 s.
    async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
                return Ok(());
            };
            if lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                != Some(self.cfg.identity.as_str())
            {
                return Ok(());
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            self.api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.cfg.retry_period, result).await {
            Ok(Ok(())) => tracing::info!(lease = %self.lease_ref(), "released leader lease"),
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.lease_ref(), error = %ApiError::of(&e), "could not release leader lease; it will expire")
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease_ref(), "timed out releasing leader lease; it will expire")
            }
        }
    }
}

enum Attempt {
    Leading,
    Following(String),
    /// Cannot succeed until a person acts; the text says what to do.
    Blocked(String),
    Failed(String),
    Shutdown,
}

/// `<hostname>_<random>` like client-go users (KCM uses `<hostname>_<uuid>`).
pub fn default_identity() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "tlsboot".to_owned());
    let mut bytes = [0u8; 8];
    let suffix = match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{}", std::process::id()),
    };
    format!("{host}_{suffix}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Our own lease duration in these tests (the default).
    const OURS: Duration = Duration::from_secs(15);

    fn rec(holder: &str, secs: i32, renew: i64) -> LeaseRecord {
        rec_raw(holder, Some(secs), renew)
    }

    fn rec_raw(holder: &str, secs: Option<i32>, renew: i64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            lease_duration_seconds: secs,
            renew_time: Some(Timestamp::from_second(renew).unwrap()),
            acquire_time: None,
            transitions: 0,
        }
    }

    #[test]
    fn no_lease_means_create() {
        assert_eq!(decide(None, "me", OURS, Instant::now()), Step::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_if_old() {
        let t0 = Instant::now();
        let o = observe(None, rec("me", 15, 100), t0);
        assert_eq!(
            decide(Some(&o), "me", OURS, t0 + Duration::from_secs(3600)),
            Step::Renew
        );
    }

    #[test]
    fn empty_holder_is_acquired_at_once() {
        let t0 = Instant::now();
        let o = observe(None, rec("", 1, 100), t0);
        assert_eq!(decide(Some(&o), "me", OURS, t0), Step::Acquire);
    }

    #[test]
    fn live_foreign_lease_is_followed_until_local_expiry() {
        let t0 = Instant::now();
        let o = observe(None, rec("other", 15, 100), t0);
        match decide(Some(&o), "me", OURS, t0 + Duration::from_secs(14)) {
            Step::Follow { holder, expires_in } => {
                assert_eq!(holder, "other");
                assert_eq!(expires_in, Duration::from_secs(1));
            }
            s => panic!("unexpected {s:?}"),
        }
        assert_eq!(
            decide(Some(&o), "me", OURS, t0 + Duration::from_secs(15)),
            Step::Acquire
        );
    }

    #[test]
    fn expiry_ignores_wall_clock_times_in_the_record() {
        // A renewTime far in the past (skewed clock) must not make us take over early.
        let t0 = Instant::now();
        let o = observe(None, rec("other", 15, 0), t0);
        assert!(matches!(
            decide(Some(&o), "me", OURS, t0 + Duration::from_secs(5)),
            Step::Follow { .. }
        ));
    }

    #[test]
    fn a_renewal_restarts_the_local_expiry_clock() {
        let t0 = Instant::now();
        let o1 = observe(None, rec("other", 15, 100), t0);
        let t1 = t0 + Duration::from_secs(10);
        let o2 = observe(Some(o1.clone()), rec("other", 15, 110), t1);
        assert_eq!(o2.at, t1);
        assert!(matches!(
            decide(Some(&o2), "me", OURS, t0 + Duration::from_secs(20)),
            Step::Follow { .. }
        ));
        // Unchanged record keeps the first observation time.
        let o3 = observe(Some(o1), rec("other", 15, 100), t1);
        assert_eq!(o3.at, t0);
        assert_eq!(
            decide(Some(&o3), "me", OURS, t0 + Duration::from_secs(20)),
            Step::Acquire
        );
    }

    /// Where a follower first takes over a record `rec` seen at `t0`: the smallest whole
    /// second at which `decide` says Acquire (searching up to an hour).
    fn takeover_after(rec: LeaseRecord) -> Duration {
        let t0 = Instant::now();
        let o = observe(None, rec, t0);
        (0..=3600)
            .map(Duration::from_secs)
            .find(|d| decide(Some(&o), "me", OURS, t0 + *d) == Step::Acquire)
            .expect("takes over within an hour")
    }

    #[test]
    fn zero_duration_waits_our_own_lease_duration() {
        // Taken literally (or as 1 s), a follower would act while the holder may still
        // write until its renew deadline (10 s by default).
        assert_eq!(takeover_after(rec("other", 0, 100)), OURS);
        assert_eq!(
            foreign_lease_duration(Some(0), OURS),
            (OURS, Some(DurationAnomaly::NotPositive(0)))
        );
    }

    #[test]
    fn negative_duration_waits_our_own_lease_duration() {
        assert_eq!(takeover_after(rec("other", -5, 100)), OURS);
        assert_eq!(takeover_after(rec("other", i32::MIN, 100)), OURS);
        assert_eq!(
            foreign_lease_duration(Some(-5), OURS),
            (OURS, Some(DurationAnomaly::NotPositive(-5)))
        );
    }

    #[test]
    fn missing_duration_waits_our_own_lease_duration() {
        assert_eq!(takeover_after(rec_raw("other", None, 100)), OURS);
        assert_eq!(
            foreign_lease_duration(None, OURS),
            (OURS, Some(DurationAnomaly::Missing))
        );
    }

    #[test]
    fn huge_duration_is_capped() {
        // An edited Lease must not block fail-over for 68 years.
        for huge in [301, 86_400, i32::MAX] {
            assert_eq!(takeover_after(rec("other", huge, 100)), MAX_LEASE_DURATION);
            assert_eq!(
                foreign_lease_duration(Some(huge), OURS),
                (MAX_LEASE_DURATION, Some(DurationAnomaly::AboveMax(huge)))
            );
        }
        // The largest value any replica of ours writes is honoured exactly.
        assert_eq!(takeover_after(rec("other", 300, 100)), MAX_LEASE_DURATION);
        assert_eq!(foreign_lease_duration(Some(300), OURS).1, None);
    }

    #[test]
    fn shorter_foreign_duration_waits_our_own() {
        assert_eq!(takeover_after(rec("other", 1, 100)), OURS);
        let (wait, anomaly) = foreign_lease_duration(Some(1), OURS);
        assert_eq!(wait, OURS);
        assert_eq!(anomaly, Some(DurationAnomaly::BelowOurs(1)));
        assert!(!DurationAnomaly::BelowOurs(1).out_of_range());
        assert!(DurationAnomaly::Missing.out_of_range());
        // Longer than ours and in range: honoured (a replica configured longer).
        assert_eq!(
            takeover_after(rec("other", 60, 100)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_released_lease_is_free_whatever_its_duration() {
        for secs in [Some(1), Some(0), None, Some(i32::MAX)] {
            assert_eq!(takeover_after(rec_raw("", secs, 100)), Duration::ZERO);
        }
    }

    fn cfg() -> LeaseConfig {
        LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    #[test]
    fn config_invariants_are_enforced() {
        assert!(cfg().validate().is_ok());
        let mut bad = cfg();
        bad.renew_deadline = Duration::from_secs(15);
        assert!(matches!(
            bad.validate(),
            Err(LeaseConfigError::LeaseNotAboveRenew { .. })
        ));
        let mut bad = cfg();
        bad.retry_period = Duration::from_secs(10);
        assert!(matches!(
            bad.validate(),
            Err(LeaseConfigError::RenewNotAboveRetry { .. })
        ));
        // client-go's JitterFactor: 10 s is not more than 1.2 x 9 s.
        let mut bad = cfg();
        bad.retry_period = Duration::from_secs(9);
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("10s 800ms"), "{e}");
        let mut ok = cfg();
        ok.retry_period = Duration::from_secs(8);
        assert!(ok.validate().is_ok(), "10 s > 9.6 s");
        let mut bad = cfg();
        bad.identity.clear();
        assert_eq!(bad.validate(), Err(LeaseConfigError::EmptyIdentity));
    }

    #[test]
    fn lease_duration_must_be_whole_seconds_in_range() {
        for d in [
            Duration::from_millis(1500),
            Duration::from_millis(900),
            Duration::from_nanos(15_000_000_001),
        ] {
            assert!(
                matches!(
                    check_lease_duration(d),
                    Err(LeaseConfigError::NotWholeSeconds { .. })
                ),
                "{d:?}"
            );
        }
        for d in [Duration::ZERO, Duration::from_secs(301)] {
            assert!(
                matches!(
                    check_lease_duration(d),
                    Err(LeaseConfigError::OutOfRange { .. })
                ),
                "{d:?}"
            );
        }
        for secs in [1, 15, 300] {
            let d = Duration::from_secs(secs);
            assert_eq!(check_lease_duration(d), Ok(d));
        }
        // validate() repeats the flag check for configs built without the flags.
        let mut c = cfg();
        c.lease_duration = Duration::from_millis(15_500);
        assert!(matches!(
            c.validate(),
            Err(LeaseConfigError::NotWholeSeconds { .. })
        ));
    }

    #[test]
    fn periods_are_bounded() {
        assert!(check_period("--x", Duration::ZERO).is_err());
        assert!(check_period("--x", Duration::from_secs(301)).is_err());
        assert!(check_period("--x", Duration::from_millis(2500)).is_ok());
        let e = check_period("--leader-elect-retry-period", Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--leader-elect-retry-period (0s) must be between 1ms and 5m"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn handle_fences_on_the_local_deadline() {
        let (tx, rx) = watch::channel(LeaderState {
            valid_until: None,
            transitions: 0,
        });
        let h = LeaderHandle {
            rx,
            always: false,
            problem: Problem::default(),
        };
        assert!(h.check().is_err());
        tx.send_modify(|s| s.valid_until = Some(Instant::now() + Duration::from_secs(60)));
        assert!(h.check().is_ok());
        tx.send_modify(|s| s.valid_until = Some(Instant::now() - Duration::from_millis(1)));
        assert!(
            h.check().is_err(),
            "a passed deadline must fence even before the elector notices"
        );
        assert!(LeaderHandle::always_leader().check().is_ok());
    }

    #[test]
    fn identity_has_host_and_random_suffix() {
        let a = default_identity();
        let b = default_identity();
        assert!(a.contains('_'));
        assert_ne!(a, b);
    }
}
