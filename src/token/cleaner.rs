//! Expired bootstrap token cleanup, with kube-controller-manager's `tokencleaner`
//! semantics: watch `kube-system` Secrets of type `bootstrap.kubernetes.io/token`,
//! delete expired ones (an unparseable `expiration` counts as expired) with a UID
//! precondition, treat NotFound/Conflict as done, and look again at the expiry instant.
//! Tokens without `expiration` are never touched.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::bootstrap::{Expiry, NAMESPACE, SECRET_TYPE, expiry};
use super::error::TokenError;
use super::gocompat::format_rfc3339_utc;
use crate::cluster::ApiError;

/// Far-future expiries are re-checked daily instead: the timer wheel has a horizon, and
/// a day is cheap.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Expiration has one-second precision; waking a little late guarantees "expired".
const SLACK: Duration = Duration::from_millis(500);
const RETRY: Duration = Duration::from_secs(10);

/// What the cleaner does with one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a token (wrong type) or no expiration: leave it, forever.
    Keep,
    /// Still valid: look again after this long.
    RecheckIn(Duration),
    /// Expired (or unparseable expiration): delete it.
    Delete { reason: String },
}

/// Pure decision, `GetExpiration` semantics.
pub fn verdict(secret: &Secret, now: Timestamp) -> Verdict {
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return Verdict::Keep;
    }
    match expiry(secret, now) {
        Expiry::Never => Verdict::Keep,
        Expiry::Unparseable => Verdict::Delete {
            reason: "unparseable expiration".into(),
        },
        Expiry::Expired(at) => Verdict::Delete {
            reason: format!("expired at {}", format_rfc3339_utc(at)),
        },
        Expiry::At(at) => {
            let remaining = at.duration_since(now).unsigned_abs();
            Verdict::RecheckIn((remaining + SLACK).min(MAX_WAIT))
        }
    }
}

struct Ctx {
    api: Api<Secret>,
}

fn name_of(secret: &Secret) -> String {
    secret.metadata.name.clone().unwrap_or_default()
}

async fn reconcile(secret: Arc<Secret>, ctx: Arc<Ctx>) -> Result<Action, TokenError> {
    let name = name_of(&secret);
    match verdict(&secret, Timestamp::now()) {
        Verdict::Keep => Ok(Action::await_change()),
        Verdict::RecheckIn(after) => {
            tracing::debug!(secret = %name, after = ?after, "bootstrap token still valid");
            Ok(Action::requeue(after))
        }
        Verdict::Delete { reason } => {
            let params = DeleteParams {
                // Only the object we judged: a token re-created under the same name
                // since our read has a new UID and is left alone (409).
                preconditions: secret.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match ctx.api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(secret = %format!("{NAMESPACE}/{name}"), %reason, "deleted expired bootstrap token");
                    Ok(Action::await_change())
                }
                Err(e) if matches!(ApiError::of(&e).code(), Some(404 | 409)) => {
                    Ok(Action::await_change())
                }
                Err(e) => Err(TokenError::kube(
                    format!("deleting expired bootstrap token Secret {NAMESPACE}/{name}"),
                    e,
                )),
            }
        }
    }
}

fn error_policy(_secret: Arc<Secret>, error: &TokenError, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %error, "token cleaner: will retry");
    Action::requeue(RETRY)
}

/// Runs until `shutdown` is cancelled. Fails early (before watching) when the Secrets
/// cannot even be listed, so a missing RBAC rule is an error at startup, not a silent
/// retry loop.
pub async fn run_token_cleaner(
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), TokenError> {
    let api: Api<Secret> = Api::namespaced(client, NAMESPACE);
    let selector = format!("type={SECRET_TYPE}");
    api.list_metadata(&ListParams::default().fields(&selector).limit(1))
        .await
        .map_err(|e| {
            TokenError::kube(
                format!("listing bootstrap token Secrets in {NAMESPACE} (the token cleaner needs list, watch and delete on secrets there)"),
                e,
            )
        })?;
    tracing::info!(namespace = NAMESPACE, "token cleaner started");
    let ctx = Arc::new(Ctx { api: api.clone() });
    Controller::new(api, watcher::Config::default().fields(&selector))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "token cleaner event");
            }
        })
        .await;
    tracing::info!("token cleaner stopped");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::token::gocompat::parse_rfc3339;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn secret(type_: &str, expiration: Option<&str>) -> Secret {
        let mut data = std::collections::BTreeMap::new();
        data.insert("token-id".to_string(), ByteString(b"abcdef".to_vec()));
        if let Some(e) = expiration {
            data.insert("expiration".to_string(), ByteString(e.as_bytes().to_vec()));
        }
        Secret {
            metadata: ObjectMeta {
                name: Some("bootstrap-token-abcdef".into()),
                ..ObjectMeta::default()
            },
            type_: Some(type_.into()),
            data: Some(data),
            ..Secret::default()
        }
    }

    fn now() -> Timestamp {
        parse_rfc3339("2030-01-01T00:00:00Z")
            .map(|t| t.timestamp)
            .unwrap_or_default()
    }

    #[test]
    fn tokens_without_expiration_are_kept() {
        assert_eq!(verdict(&secret(SECRET_TYPE, None), now()), Verdict::Keep);
        assert_eq!(
            verdict(&secret(SECRET_TYPE, Some("")), now()),
            Verdict::Keep
        );
    }

    #[test]
    fn other_secret_types_are_never_deleted() {
        let s = secret("Opaque", Some("2000-01-01T00:00:00Z"));
        assert_eq!(verdict(&s, now()), Verdict::Keep);
    }

    #[test]
    fn expired_and_unparseable_are_deleted() {
        let expired = secret(SECRET_TYPE, Some("2029-12-31T23:59:59Z"));
        assert_eq!(
            verdict(&expired, now()),
            Verdict::Delete {
                reason: "expired at 2029-12-31T23:59:59Z".into()
            }
        );
        let at_now = secret(SECRET_TYPE, Some("2030-01-01T00:00:00Z"));
        assert!(matches!(verdict(&at_now, now()), Verdict::Delete { .. }));
        let junk = secret(SECRET_TYPE, Some("next tuesday"));
        assert_eq!(
            verdict(&junk, now()),
            Verdict::Delete {
                reason: "unparseable expiration".into()
            }
        );
    }

    #[test]
    fn live_tokens_are_rechecked_at_expiry() {
        let live = secret(SECRET_TYPE, Some("2030-01-01T00:01:00Z"));
        assert_eq!(
            verdict(&live, now()),
            Verdict::RecheckIn(Duration::from_secs(60) + SLACK)
        );
        let far = secret(SECRET_TYPE, Some("2040-01-01T00:00:00Z"));
        assert_eq!(verdict(&far, now()), Verdict::RecheckIn(MAX_WAIT));
    }
}
