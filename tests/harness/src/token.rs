//! Bootstrap tokens, stored exactly as kubeadm's `BootstrapTokenToSecret`
//! stores them, so kube-apiserver's real bootstrap-token authenticator reads them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, Result};

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const SECRET_PREFIX: &str = "bootstrap-token-";
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A bootstrap token `<id>.<secret>` (6 + 16 characters of `[a-z0-9]`).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret half is a credential: never in logs.
        write!(f, "BootstrapToken({}.****)", self.id)
    }
}

fn random_chars(n: usize) -> Result<String> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| Error::Invalid(format!("OS random source: {e}")))?;
        // Bytes >= 252 would bias `% 36`; upstream rejects them too.
        for b in buf.iter().filter(|b| **b < 252) {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 36)]));
        }
    }
    Ok(out)
}

impl BootstrapToken {
    /// A fresh random token from the OS CSPRNG.
    pub fn generate() -> Result<BootstrapToken> {
        Ok(BootstrapToken {
            id: random_chars(6)?,
            secret: random_chars(16)?,
        })
    }

    /// Parses `id.secret`.
    pub fn parse(token: &str) -> Result<BootstrapToken> {
        let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| ALPHABET.contains(&b));
        match token.split_once('.') {
            Some((id, secret)) if ok(id, 6) && ok(secret, 16) => Ok(BootstrapToken {
                id: id.into(),
                secret: secret.into(),
            }),
            _ => Err(Error::Invalid(
                "a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}".into(),
            )),
        }
    }

    /// The bearer token, `id.secret`.
    pub fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The user kube-apiserver authenticates it as: `system:bootstrap:<id>`.
    pub fn user(&self) -> String {
        format!("system:bootstrap:{}", self.id)
    }

    /// `bootstrap-token-<id>` (in `kube-system`).
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.id)
    }
}

/// What the token Secret says. Default: 1 h TTL, usages `signing,authentication`,
/// no extra groups (the user is in `system:bootstrappers` anyway).
#[derive(Debug, Clone)]
pub struct BootstrapTokenOptions {
    /// `None` = never expires.
    pub ttl: Option<Duration>,
    pub description: Option<String>,
    /// Each becomes `usage-bootstrap-<usage>: "true"`.
    pub usages: Vec<String>,
    /// `auth-extra-groups`, each must match `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
    pub extra_groups: Vec<String>,
}

impl Default for BootstrapTokenOptions {
    fn default() -> Self {
        BootstrapTokenOptions {
            ttl: Some(Duration::from_secs(3600)),
            description: Some("tlsboot-harness test token".into()),
            usages: vec!["signing".into(), "authentication".into()],
            extra_groups: Vec::new(),
        }
    }
}

/// The Secret kubeadm would write for `token`.
pub fn token_secret(token: &BootstrapToken, opts: &BootstrapTokenOptions) -> Secret {
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        data.insert(k.to_owned(), ByteString(v.into_bytes()));
    };
    put("token-id", token.id.clone());
    put("token-secret", token.secret.clone());
    if let Some(d) = opts.description.as_ref().filter(|d| !d.is_empty()) {
        put("description", d.clone());
    }
    if let Some(ttl) = opts.ttl {
        let at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(jiff::Timestamp::MAX);
        // RFC 3339 in UTC, whole seconds, like Go's time.RFC3339.
        let at = jiff::Timestamp::from_second(at.as_second()).unwrap_or(at);
        put("expiration", at.to_string());
    }
    for u in &opts.usages {
        put(&format!("usage-bootstrap-{u}"), "true".into());
    }
    if !opts.extra_groups.is_empty() {
        put("auth-extra-groups", opts.extra_groups.join(","));
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(token.secret_name()),
            namespace: Some("kube-system".into()),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Creates the token Secret in `kube-system`.
pub async fn create_secret(
    client: &kube::Client,
    token: &BootstrapToken,
    opts: &BootstrapTokenOptions,
) -> Result<Secret> {
    Ok(Api::<Secret>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &token_secret(token, opts))
        .await?)
}

/// Asks the API server who `client` is (SelfSubjectReview): (user, groups).
pub async fn whoami(client: &kube::Client) -> Result<(String, Vec<String>)> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok((
        info.username.unwrap_or_default(),
        info.groups.unwrap_or_default(),
    ))
}

/// Waits until `client` (holding `token`) authenticates as the token's user.
/// The authenticator reads Secrets through an informer, so a new token can be
/// refused (401) for a moment.
pub async fn wait_authenticates(
    client: &kube::Client,
    token: &BootstrapToken,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match whoami(client).await {
            Ok((user, _)) if user == token.user() => return Ok(()),
            Ok((user, _)) => {
                return Err(Error::Invalid(format!(
                    "bootstrap token {} authenticated as {user:?}",
                    token.id
                )));
            }
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 401 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(Error::Kube(kube::Error::Api(s))) if s.code == 401 => {
                return Err(Error::Timeout {
                    what: format!("bootstrap token {} to authenticate", token.id),
                    timeout,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_match_the_upstream_pattern_and_round_trip() {
        for _ in 0..100 {
            let t = BootstrapToken::generate().unwrap();
            assert_eq!(BootstrapToken::parse(&t.token()).unwrap(), t);
        }
        assert!(BootstrapToken::parse("ABCDEF.0123456789abcdef").is_err());
        assert!(BootstrapToken::parse("abcdef0123456789abcdef").is_err());
        assert!(
            !format!(
                "{:?}",
                BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
            )
            .contains("0123")
        );
    }

    #[test]
    fn secret_has_kubeadm_shape() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let s = token_secret(
            &t,
            &BootstrapTokenOptions {
                extra_groups: vec![
                    "system:bootstrappers:a".into(),
                    "system:bootstrappers:b".into(),
                ],
                ..BootstrapTokenOptions::default()
            },
        );
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(s.type_.as_deref(), Some(SECRET_TYPE));
        let d = s.data.unwrap();
        let get = |k: &str| String::from_utf8(d[k].0.clone()).unwrap();
        assert_eq!(get("token-id"), "abcdef");
        assert_eq!(get("token-secret"), "0123456789abcdef");
        assert_eq!(get("usage-bootstrap-authentication"), "true");
        assert_eq!(get("usage-bootstrap-signing"), "true");
        assert_eq!(
            get("auth-extra-groups"),
            "system:bootstrappers:a,system:bootstrappers:b"
        );
        let exp = get("expiration");
        assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
        assert!(exp.parse::<jiff::Timestamp>().unwrap() > jiff::Timestamp::now());
    }
}
