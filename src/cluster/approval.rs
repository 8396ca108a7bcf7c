//! The one place that writes Approved/Denied conditions (`PUT …/approval`).
//!
//! Both the daemon and the review commands call [`write_approval`], so the condition's
//! shape, the 409 re-read loop, the binding to the decided object, the fence check and
//! "never a second condition" hold everywhere at once.

use std::collections::BTreeMap;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, PostParams};

use super::api_error::ApiError;
use super::csr_status::{CONDITION_APPROVED, CONDITION_DENIED, has_condition};

/// Which condition to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    /// The condition type as the API spells it.
    pub fn condition_type(self) -> &'static str {
        match self {
            Decision::Approve => CONDITION_APPROVED,
            Decision::Deny => CONDITION_DENIED,
        }
    }

    fn opposite(self) -> &'static str {
        match self {
            Decision::Approve => CONDITION_DENIED,
            Decision::Deny => CONDITION_APPROVED,
        }
    }

    /// The verb, as in "may not approve".
    pub fn verb(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }

    /// As in "approving certificate signing request …".
    pub fn gerund(self) -> &'static str {
        match self {
            Decision::Approve => "approving",
            Decision::Deny => "denying",
        }
    }
}

/// What to write and how hard to try.
#[derive(Debug, Clone)]
pub struct ApprovalWrite {
    pub decision: Decision,
    /// CamelCase reason, e.g. `AutoApproved`.
    pub reason: String,
    pub message: String,
    /// Like `kubectl certificate approve --force`: re-PUT even when the same condition is
    /// already there (the object is sent unchanged: never a second condition).
    pub force: bool,
    /// Server-side dry run: admission and RBAC run, nothing is stored.
    pub dry_run: bool,
    /// 409s tolerated before giving up (kubectl uses 10).
    pub max_conflict_retries: u32,
}

#[derive(Debug)]
pub enum ApprovalOutcome {
    /// The condition was appended (or, with `force`, the object re-PUT) and stored.
    Written(Box<CertificateSigningRequest>),
    /// The same condition type was already present; nothing was sent.
    AlreadyDone,
    /// The caller's re-check refused the (possibly re-read) object; nothing was sent.
    Refused(String),
    /// The name now belongs to another object: the decided CSR was deleted and a new one
    /// created under the same name. Nothing was written to it: a new object needs a whole
    /// new decision (content and authorization), never the old one's.
    Replaced { old_uid: String, new_uid: String },
    /// The re-read copy names a different requester than the decided one (the fields the
    /// SubjectAccessReviews and a reviewer judged). Nothing was written.
    RequesterChanged {
        uid: String,
        fields: Vec<RequesterField>,
    },
}

/// A requester field of `spec`, as the API spells its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequesterField {
    Username,
    Uid,
    Groups,
    Extra,
}

impl RequesterField {
    pub fn as_str(self) -> &'static str {
        match self {
            RequesterField::Username => "spec.username",
            RequesterField::Uid => "spec.uid",
            RequesterField::Groups => "spec.groups",
            RequesterField::Extra => "spec.extra",
        }
    }
}

impl std::fmt::Display for RequesterField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who filed the CSR, as the API server recorded it from the creating request's
/// authentication. An absent list or map and an empty one say the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requester {
    username: String,
    uid: String,
    groups: Vec<String>,
    extra: BTreeMap<String, Vec<String>>,
}

impl Requester {
    fn of(csr: &CertificateSigningRequest) -> Self {
        let spec = &csr.spec;
        Requester {
            username: spec.username.clone().unwrap_or_default(),
            uid: spec.uid.clone().unwrap_or_default(),
            groups: spec.groups.clone().unwrap_or_default(),
            extra: spec.extra.clone().unwrap_or_default(),
        }
    }

    fn differences(&self, other: &Requester) -> Vec<RequesterField> {
        let mut out = Vec::new();
        if self.username != other.username {
            out.push(RequesterField::Username);
        }
        if self.uid != other.uid {
            out.push(RequesterField::Uid);
        }
        if self.groups != other.groups {
            out.push(RequesterField::Groups);
        }
        if self.extra != other.extra {
            out.push(RequesterField::Extra);
        }
        out
    }
}

/// What a decision was made about: one object (by `metadata.uid`, which a delete and
/// re-create under the same name changes) filed by one requester.
#[derive(Debug, Clone)]
struct Binding {
    uid: String,
    requester: Requester,
}

/// Why a copy may not receive the decision made for the bound object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unbound {
    /// The copy has no uid: it cannot be shown to be the decided object.
    NoUid,
    Replaced {
        new_uid: String,
    },
    Requester(Vec<RequesterField>),
}

impl Binding {
    /// `None` when `decided` has no uid: a write could then land on any object of that name.
    fn of(decided: &CertificateSigningRequest) -> Option<Binding> {
        let uid = decided.metadata.uid.clone().filter(|u| !u.is_empty())?;
        Some(Binding {
            uid,
            requester: Requester::of(decided),
        })
    }

    fn check(&self, copy: &CertificateSigningRequest) -> Result<(), Unbound> {
        match copy.metadata.uid.as_deref() {
            None | Some("") => return Err(Unbound::NoUid),
            Some(uid) if uid != self.uid => {
                return Err(Unbound::Replaced {
                    new_uid: uid.to_owned(),
                });
            }
            Some(_) => {}
        }
        // spec is immutable today; the write must not depend on that staying true.
        let changed = self.requester.differences(&Requester::of(copy));
        if changed.is_empty() {
            Ok(())
        } else {
            Err(Unbound::Requester(changed))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// kubectl's wording, so scripts that grep for it keep working.
    #[error("certificate signing request {name:?} is already {existing}")]
    OppositeCondition {
        name: String,
        existing: &'static str,
    },
    #[error("certificatesigningrequests.certificates.k8s.io {name:?} not found")]
    NotFound { name: String },
    #[error("{} certificate signing request {name:?}: forbidden: {message}", decision.gerund())]
    Forbidden {
        decision: Decision,
        name: String,
        message: String,
    },
    #[error("not writing {} for {name:?}: {reason}", decision.gerund())]
    Fenced {
        decision: Decision,
        name: String,
        reason: String,
    },
    /// The object to write cannot be tied to the decided one (no `metadata.uid`).
    #[error(
        "not {} certificate signing request {name:?}: the {copy} copy has no \
         metadata.uid, so the write cannot be bound to the object that was decided",
        decision.gerund()
    )]
    MissingUid {
        decision: Decision,
        name: String,
        /// `decided` or `re-read`.
        copy: &'static str,
    },
    #[error(
        "{} certificate signing request {name:?}: gave up after {attempts} write conflicts",
        decision.gerund()
    )]
    Conflicts {
        decision: Decision,
        name: String,
        attempts: u32,
    },
    // The kube error is part of the message, not a `source()`: printers walk the chain,
    // and kube's own Display would add the Status in Debug form.
    #[error("{} certificate signing request {name:?}: {}", decision.gerund(), ApiError::of(error))]
    Api {
        decision: Decision,
        name: String,
        error: kube::Error,
    },
}

impl ApprovalError {
    /// HTTP status of the API error behind this, if any (for metrics).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApprovalError::Api { error, .. } => ApiError::of(error).code(),
            ApprovalError::NotFound { .. } => Some(404),
            ApprovalError::Forbidden { .. } => Some(403),
            ApprovalError::Conflicts { .. } => Some(409),
            _ => None,
        }
    }
}

/// Appends `write`'s condition to `csr` and PUTs it to `/approval`, carrying the
/// resourceVersion so a concurrent writer makes us re-read instead of overwrite.
///
/// `csr` is the copy the caller decided on. Every copy written (it, and each one re-read
/// after a 409) must be that same object from that same requester: a different
/// `metadata.uid` ends with [`ApprovalOutcome::Replaced`], different requester fields with
/// [`ApprovalOutcome::RequesterChanged`], and a decided copy without a uid with
/// [`ApprovalError::MissingUid`]; nothing is sent in any of these cases. A caller's
/// `recheck` judges content only, so this binding is what keeps one requester's
/// authorization (or one reviewed object) from being spent on another.
///
/// `recheck` runs on every bound copy we are about to write (the first and each re-read
/// one): `Err(reason)` stops with [`ApprovalOutcome::Refused`]. `fence` runs immediately
/// before each PUT; `Err(reason)` aborts with [`ApprovalError::Fenced`] (the daemon uses it
/// to prove it still holds the lease).
pub async fn write_approval<R, F>(
    api: &Api<CertificateSigningRequest>,
    csr: CertificateSigningRequest,
    write: &ApprovalWrite,
    mut recheck: R,
    fence: F,
) -> Result<ApprovalOutcome, ApprovalError>
where
    R: FnMut(&CertificateSigningRequest) -> Result<(), String>,
    F: Fn() -> Result<(), String>,
{
    let decision = write.decision;
    let name = csr.metadata.name.clone().unwrap_or_default();
    let Some(binding) = Binding::of(&csr) else {
        return Err(ApprovalError::MissingUid {
            decision,
            name,
            copy: "decided",
        });
    };
    let mut current = csr;
    let mut conflicts = 0u32;
    loop {
        // Before anything else about the copy: a replaced object's conditions are not ours
        // to report either (its "already approved" is not the decided CSR's).
        match binding.check(&current) {
            Ok(()) => {}
            Err(Unbound::NoUid) => {
                return Err(ApprovalError::MissingUid {
                    decision,
                    name,
                    copy: "re-read",
                });
            }
            Err(Unbound::Replaced { new_uid }) => {
                return Ok(ApprovalOutcome::Replaced {
                    old_uid: binding.uid,
                    new_uid,
                });
            }
            Err(Unbound::Requester(fields)) => {
                return Ok(ApprovalOutcome::RequesterChanged {
                    uid: binding.uid,
                    fields,
                });
            }
        }
        if has_condition(&current, write.decision.opposite()) {
            return Err(ApprovalError::OppositeCondition {
                name,
                existing: write.decision.opposite(),
            });
        }
        let already = has_condition(&current, write.decision.condition_type());
        if already && !write.force {
            return Ok(ApprovalOutcome::AlreadyDone);
        }
        if let Err(reason) = recheck(&current) {
            return Ok(ApprovalOutcome::Refused(reason));
        }
        let mut body = current.clone();
        if !already {
            let status = body.status.get_or_insert_with(Default::default);
            // Timestamps left empty: the API server fills lastUpdateTime and
            // lastTransitionTime with its own clock, as for the upstream approver.
            status.conditions.get_or_insert_with(Vec::new).push(
                CertificateSigningRequestCondition {
                    type_: write.decision.condition_type().to_owned(),
                    status: "True".to_owned(),
                    reason: Some(write.reason.clone()),
                    message: Some(write.message.clone()),
                    ..Default::default()
                },
            );
        }
        if let Err(reason) = fence() {
            return Err(ApprovalError::Fenced {
                decision,
                name,
                reason,
            });
        }
        let params = PostParams {
            dry_run: write.dry_run,
            ..PostParams::default()
        };
        match api
            .replace_subresource("approval", &name, &params, &body)
            .await
        {
            Ok(stored) => return Ok(ApprovalOutcome::Written(Box::new(stored))),
            Err(err) => match ApiError::of(&err).code() {
                Some(409) => {
                    conflicts += 1;
                    if conflicts > write.max_conflict_retries {
                        return Err(ApprovalError::Conflicts {
                            decision,
                            name,
                            attempts: conflicts,
                        });
                    }
                    current = match api.get(&name).await {
                        Ok(fresh) => fresh,
                        Err(error) if ApiError::of(&error).is(404) => {
                            return Err(ApprovalError::NotFound { name });
                        }
                        Err(error) => {
                            return Err(ApprovalError::Api {
                                decision,
                                name,
                                error,
                            });
                        }
                    };
                }
                Some(404) => return Err(ApprovalError::NotFound { name }),
                Some(403) => {
                    let message = ApiError::of(&err).message();
                    return Err(ApprovalError::Forbidden {
                        decision,
                        name,
                        message,
                    });
                }
                _ => {
                    return Err(ApprovalError::Api {
                        decision,
                        name,
                        error: err,
                    });
                }
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn csr(uid: Option<&str>, user: &str, groups: &[&str]) -> CertificateSigningRequest {
        let mut c = CertificateSigningRequest::default();
        c.metadata.name = Some("node-csr-x".into());
        c.metadata.uid = uid.map(str::to_owned);
        c.spec.username = Some(user.into());
        c.spec.groups = Some(groups.iter().map(|g| g.to_string()).collect());
        c
    }

    const BOOT: &str = "system:bootstrap:abcdef";
    const GROUPS: &[&str] = &["system:bootstrappers", "system:authenticated"];

    #[test]
    fn a_decided_copy_without_uid_cannot_be_bound() {
        assert!(Binding::of(&csr(None, BOOT, GROUPS)).is_none());
        assert!(Binding::of(&csr(Some(""), BOOT, GROUPS)).is_none());
    }

    #[test]
    fn the_same_object_from_the_same_requester_is_bound() {
        let decided = csr(Some("uid-a"), BOOT, GROUPS);
        let b = Binding::of(&decided).unwrap();
        let mut later = decided.clone();
        later.metadata.resource_version = Some("99".into());
        assert_eq!(b.check(&later), Ok(()));
        // Absent and empty lists/maps are the same requester.
        let mut empty = decided.clone();
        empty.spec.uid = Some(String::new());
        empty.spec.extra = Some(BTreeMap::new());
        assert_eq!(b.check(&empty), Ok(()));
    }

    #[test]
    fn another_uid_under_the_same_name_is_a_replacement() {
        let b = Binding::of(&csr(Some("uid-a"), BOOT, GROUPS)).unwrap();
        // Even with the very same requester and content: a new object is a new decision.
        assert_eq!(
            b.check(&csr(Some("uid-b"), BOOT, GROUPS)),
            Err(Unbound::Replaced {
                new_uid: "uid-b".into()
            })
        );
        assert_eq!(b.check(&csr(None, BOOT, GROUPS)), Err(Unbound::NoUid));
        assert_eq!(b.check(&csr(Some(""), BOOT, GROUPS)), Err(Unbound::NoUid));
    }

    #[test]
    fn every_requester_field_is_compared() {
        let decided = csr(Some("uid-a"), BOOT, GROUPS);
        let b = Binding::of(&decided).unwrap();
        let changed = |f: &dyn Fn(&mut CertificateSigningRequest)| {
            let mut c = decided.clone();
            f(&mut c);
            b.check(&c)
        };
        use RequesterField::*;
        assert_eq!(
            changed(&|c| c.spec.username = Some("system:bootstrap:zzzzzz".into())),
            Err(Unbound::Requester(vec![Username]))
        );
        assert_eq!(
            changed(&|c| c.spec.uid = Some("other".into())),
            Err(Unbound::Requester(vec![Uid]))
        );
        assert_eq!(
            changed(&|c| c.spec.groups = Some(vec!["system:masters".into()])),
            Err(Unbound::Requester(vec![Groups]))
        );
        assert_eq!(
            changed(&|c| {
                c.spec.extra = Some(BTreeMap::from([("scopes".into(), vec!["x".into()])]))
            }),
            Err(Unbound::Requester(vec![Extra]))
        );
        assert_eq!(
            changed(&|c| {
                c.spec.username = None;
                c.spec.groups = None;
            }),
            Err(Unbound::Requester(vec![Username, Groups]))
        );
    }
}
