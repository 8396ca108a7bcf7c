//! The one place that writes Approved/Denied conditions (`PUT …/approval`).
//!
//! Both the daemon and the review commands call [`write_approval`], so the condition's
//! shape, the 409 re-read loop, the fence check and "never a second condition" hold
//! everywhere at once.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, PostParams};

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
            Decision::Approve => "Approved",
            Decision::Deny => "Denied",
        }
    }

    fn opposite(self) -> &'static str {
        match self {
            Decision::Approve => "Denied",
            Decision::Deny => "Approved",
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
    #[error("{action} certificate signing request {name:?}: forbidden: {message}")]
    Forbidden {
        action: &'static str,
        name: String,
        message: String,
    },
    #[error("not writing {action} for {name:?}: {reason}")]
    Fenced {
        action: &'static str,
        name: String,
        reason: String,
    },
    #[error(
        "{action} certificate signing request {name:?}: gave up after {attempts} write conflicts"
    )]
    Conflicts {
        action: &'static str,
        name: String,
        attempts: u32,
    },
    #[error("{action} certificate signing request {name:?}: {source}")]
    Api {
        action: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ApprovalError {
    /// HTTP status of the API error behind this, if any (for metrics).
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApprovalError::Api {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            ApprovalError::NotFound { .. } => Some(404),
            ApprovalError::Forbidden { .. } => Some(403),
            ApprovalError::Conflicts { .. } => Some(409),
            _ => None,
        }
    }
}

fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_))
}

fn api_error_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Appends `write`'s condition to `csr` and PUTs it to `/approval`, carrying the
/// resourceVersion so a concurrent writer makes us re-read instead of overwrite.
///
/// `recheck` runs on every copy we are about to write (the first and each re-read one):
/// `Err(reason)` stops with [`ApprovalOutcome::Refused`]. `fence` runs immediately before
/// each PUT; `Err(reason)` aborts with [`ApprovalError::Fenced`] (the daemon uses it to
/// prove it still holds the lease).
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
    let action = match write.decision {
        Decision::Approve => "approving",
        Decision::Deny => "denying",
    };
    let name = csr.metadata.name.clone().unwrap_or_default();
    let mut current = csr;
    let mut conflicts = 0u32;
    loop {
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
                action,
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
            Err(err) => match api_error_code(&err) {
                Some(409) => {
                    conflicts += 1;
                    if conflicts > write.max_conflict_retries {
                        return Err(ApprovalError::Conflicts {
                            action,
                            name,
                            attempts: conflicts,
                        });
                    }
                    current = match api.get(&name).await {
                        Ok(fresh) => fresh,
                        Err(source) if api_error_code(&source) == Some(404) => {
                            return Err(ApprovalError::NotFound { name });
                        }
                        Err(source) => {
                            return Err(ApprovalError::Api {
                                action,
                                name,
                                source,
                            });
                        }
                    };
                }
                Some(404) => return Err(ApprovalError::NotFound { name }),
                Some(403) => {
                    let message = match err {
                        kube::Error::Api(status) => status.message,
                        other => other.to_string(),
                    };
                    return Err(ApprovalError::Forbidden {
                        action,
                        name,
                        message,
                    });
                }
                _ => {
                    return Err(ApprovalError::Api {
                        action,
                        name,
                        source: err,
                    });
                }
            },
        }
    }
}
