//! Bootstrap tokens as Kubernetes defines them (`k8s.io/cluster-bootstrap`) and as
//! kubeadm stores them (`BootstrapTokenToSecret` / `BootstrapTokenFromSecret`).
//! Pure: no I/O except the OS random source, which is injectable.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::gocompat::{self, Rfc3339, quote};

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const SECRET_PREFIX: &str = "bootstrap-token-";
pub const NAMESPACE: &str = "kube-system";
pub const KEY_TOKEN_ID: &str = "token-id";
pub const KEY_TOKEN_SECRET: &str = "token-secret";
pub const KEY_EXPIRATION: &str = "expiration";
pub const KEY_DESCRIPTION: &str = "description";
pub const KEY_EXTRA_GROUPS: &str = "auth-extra-groups";
pub const USAGE_PREFIX: &str = "usage-bootstrap-";
pub const USAGE_AUTHENTICATION: &str = "authentication";
pub const USAGE_SIGNING: &str = "signing";
/// `KnownTokenUsages`, in upstream's order (it shows up in error messages).
pub const KNOWN_USAGES: [&str; 2] = [USAGE_SIGNING, USAGE_AUTHENTICATION];
pub const DEFAULT_GROUP: &str = "system:bootstrappers";
pub const USER_PREFIX: &str = "system:bootstrap:";
/// kubeadm's default `--groups`.
pub const KUBEADM_DEFAULT_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

pub const TOKEN_PATTERN: &str = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z";
pub const TOKEN_ID_PATTERN: &str = r"\A([a-z0-9]{6})\z";
pub const GROUP_PATTERN: &str = r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z";

/// Lengths of the two halves of a token.
pub const TOKEN_ID_LEN: usize = 6;
pub const TOKEN_SECRET_LEN: usize = 16;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 252 = 7 × 36: bytes at or above it would make `b % 36` favour the first 4 characters.
const REJECT_FROM: u8 = 252;

fn is_token_char(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_lowercase()
}

/// Matches `\A([a-z0-9]{6})\z`.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == TOKEN_ID_LEN && s.bytes().all(is_token_char)
}

/// Matches `\A[a-z0-9]{16}\z` (the secret half).
fn is_valid_secret(s: &str) -> bool {
    s.len() == TOKEN_SECRET_LEN && s.bytes().all(is_token_char)
}

/// Matches `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`.
pub fn is_valid_group(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let Some((&last, body)) = rest.as_bytes().split_last() else {
        return false;
    };
    is_token_char(last)
        && body.len() <= 255
        && body
            .iter()
            .all(|b| is_token_char(*b) || *b == b':' || *b == b'-')
}

/// `ValidateBootstrapGroupName`'s error.
pub fn group_error(group: &str) -> String {
    format!(
        "bootstrap group {} is invalid (must match {GROUP_PATTERN})",
        quote(group)
    )
}

/// `ValidateUsages`: unknown usages sorted and de-duplicated, as upstream's set does.
pub fn usages_error(usages: &[String]) -> Option<String> {
    let invalid: std::collections::BTreeSet<&str> = usages
        .iter()
        .map(String::as_str)
        .filter(|u| !KNOWN_USAGES.contains(u))
        .collect();
    if invalid.is_empty() {
        return None;
    }
    Some(format!(
        "invalid bootstrap token usage string: {}, valid usage options: {}",
        invalid.into_iter().collect::<Vec<_>>().join(","),
        KNOWN_USAGES.join(",")
    ))
}

/// A bootstrap token `<id>.<secret>`. `Debug` and `Display` hide the secret half so
/// it cannot end up in a log line by accident; [`TokenString::expose`] is explicit.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenString {
    id: String,
    secret: String,
}

impl fmt::Debug for TokenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenString({}.<redacted>)", self.id)
    }
}

impl fmt::Display for TokenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<redacted>", self.id)
    }
}

/// kubeadm's error for a string that is not a token (`NewBootstrapTokenString`).
pub fn not_a_token_error(s: &str) -> String {
    format!(
        "the bootstrap token {} was not of the form {}",
        quote(s),
        quote(TOKEN_PATTERN)
    )
}

impl TokenString {
    /// Parses `id.secret`, failing with kubeadm's exact message.
    pub fn parse(s: &str) -> Result<TokenString, String> {
        match s.split_once('.') {
            Some((id, secret)) if is_valid_id(id) && is_valid_secret(secret) => Ok(TokenString {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(not_a_token_error(s)),
        }
    }

    /// A fresh token from the OS CSPRNG.
    pub fn generate() -> Result<TokenString, getrandom::Error> {
        Self::generate_with(getrandom::fill)
    }

    /// A fresh token drawing bytes from `fill` (the OS CSPRNG in production; tests
    /// inject deterministic sources to check the rejection sampling).
    pub fn generate_with<E>(
        mut fill: impl FnMut(&mut [u8]) -> Result<(), E>,
    ) -> Result<TokenString, E> {
        Ok(TokenString {
            id: random_chars(6, &mut fill)?,
            secret: random_chars(16, &mut fill)?,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The full bearer token, secret included. Only for stdout, kubeconfigs and Secrets.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// `n` characters of `[a-z0-9]`, uniformly: bytes ≥ 252 are discarded, the rest
/// mapped with `% 36` (252 is a multiple of 36, so every character has 7 preimages).
fn random_chars<E>(
    n: usize,
    fill: &mut impl FnMut(&mut [u8]) -> Result<(), E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(n);
    // Twice the length, like upstream's buffered reader: usually one read suffices.
    let mut buf = vec![0u8; n * 2];
    while out.len() < n {
        fill(&mut buf)?;
        for &b in buf.iter().filter(|b| **b < REJECT_FROM) {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 36)]));
        }
    }
    Ok(out)
}

/// The Secret name for a token id.
pub fn secret_name(id: &str) -> String {
    format!("{SECRET_PREFIX}{id}")
}

/// What `token create` writes: kubeadm's `BootstrapToken` minus `TTL`, which has been
/// turned into `expires` (kubeadm does the same when it builds the Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: TokenString,
    pub description: String,
    pub expires: Option<Timestamp>,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

impl TokenSpec {
    /// `BootstrapTokenToSecret`: name, namespace, type and data exactly as kubeadm
    /// writes them.
    pub fn to_secret(&self) -> Secret {
        let mut data = BTreeMap::new();
        let mut put = |k: String, v: &str| {
            data.insert(k, ByteString(v.as_bytes().to_vec()));
        };
        put(KEY_TOKEN_ID.into(), self.token.id());
        put(KEY_TOKEN_SECRET.into(), self.token.secret());
        if !self.description.is_empty() {
            put(KEY_DESCRIPTION.into(), &self.description);
        }
        if let Some(expires) = self.expires {
            put(
                KEY_EXPIRATION.into(),
                &gocompat::format_rfc3339_utc(expires),
            );
        }
        for usage in &self.usages {
            put(format!("{USAGE_PREFIX}{usage}"), "true");
        }
        if !self.groups.is_empty() {
            put(KEY_EXTRA_GROUPS.into(), &self.groups.join(","));
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(secret_name(self.token.id())),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

/// `bootstrapsecretutil.GetData`: missing keys (and non-UTF-8 values) read as "".
pub fn get_data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

/// A data value's bytes as stored (empty when the key is missing).
fn raw_data<'a>(secret: &'a Secret, key: &str) -> &'a [u8] {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map_or(&[][..], |v| v.0.as_slice())
}

/// What is wrong with a token-id or token-secret value, described without any of its bytes.
pub fn token_part_defect(key: &str, raw: &[u8], want_len: usize) -> Option<String> {
    if raw.len() != want_len {
        Some(format!("{key} is {} bytes, want {want_len}", raw.len()))
    } else if !raw.iter().all(|&b| is_token_char(b)) {
        Some(format!("{key} has bytes outside [a-z0-9]"))
    } else {
        None
    }
}

/// `GetExpiration`: `None` when the token has no expiration, `Some(Err(()))` when it
/// is unparseable (which counts as expired), else the instant.
pub fn expiration(secret: &Secret) -> Option<Result<Rfc3339, ()>> {
    let raw = get_data(secret, KEY_EXPIRATION);
    if raw.is_empty() {
        return None;
    }
    Some(gocompat::parse_rfc3339(&raw).ok_or(()))
}

/// Whether the token is usable for authentication "now" as kube-apiserver's
/// bootstrap authenticator would decide (minus the secret comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(Timestamp),
    /// Expired at that instant.
    Expired(Timestamp),
    /// `expiration` present but unparseable: upstream treats it as expired.
    Unparseable,
}

/// `GetExpiration(secret, now)` as a value.
pub fn expiry(secret: &Secret, now: Timestamp) -> Expiry {
    match expiration(secret) {
        None => Expiry::Never,
        Some(Err(())) => Expiry::Unparseable,
        Some(Ok(t)) if t.timestamp <= now => Expiry::Expired(t.timestamp),
        Some(Ok(t)) => Expiry::At(t.timestamp),
    }
}

/// A token read back from its Secret (`BootstrapTokenFromSecret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token: TokenString,
    pub description: String,
    pub expires: Option<Rfc3339>,
    /// Sorted, as kubeadm sorts them.
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

impl StoredToken {
    /// `BootstrapTokenFromSecret`, with kubeadm's error strings where they repeat no token
    /// bytes. kubeadm's messages for a malformed token-id or token-secret quote the value; a
    /// malformed Secret can hold a real secret (a whole token pasted into one key, a secret one
    /// character short), so these errors name the Secret and the defect only.
    pub fn from_secret(secret: &Secret) -> Result<StoredToken, String> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let invalid = |defect: String| {
            format!(
                "bootstrap Token Secret {} is invalid: {defect}",
                quote(&name)
            )
        };
        let id_raw = raw_data(secret, KEY_TOKEN_ID);
        if id_raw.is_empty() {
            return Err(format!(
                "bootstrap Token Secret has no token-id data: {name}"
            ));
        }
        if let Some(defect) = token_part_defect(KEY_TOKEN_ID, id_raw, TOKEN_ID_LEN) {
            return Err(invalid(defect));
        }
        let id = get_data(secret, KEY_TOKEN_ID);
        if name != secret_name(&id) {
            return Err(invalid(format!(
                "its name is not {SECRET_PREFIX} followed by its token-id"
            )));
        }
        let secret_raw = raw_data(secret, KEY_TOKEN_SECRET);
        if secret_raw.is_empty() {
            return Err(format!(
                "bootstrap Token Secret has no token-secret data: {name}"
            ));
        }
        if let Some(defect) = token_part_defect(KEY_TOKEN_SECRET, secret_raw, TOKEN_SECRET_LEN) {
            return Err(invalid(defect));
        }
        let secret_part = get_data(secret, KEY_TOKEN_SECRET);
        let token = TokenString::parse(&format!("{id}.{secret_part}"))
            .map_err(|_| invalid("token-id or token-secret is malformed".into()))?;
        let description = get_data(secret, KEY_DESCRIPTION);
        let expires = match expiration(secret) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(())) => {
                let raw = get_data(secret, KEY_EXPIRATION);
                return Err(format!(
                    "can't parse expiration time of bootstrap token {}: parsing time {} as \"2006-01-02T15:04:05Z07:00\": not RFC 3339",
                    quote(&name),
                    quote(&raw)
                ));
            }
        };
        let mut usages: Vec<String> = secret
            .data
            .iter()
            .flatten()
            .filter(|(k, v)| k.starts_with(USAGE_PREFIX) && v.0 == b"true")
            .map(|(k, _)| k[USAGE_PREFIX.len()..].to_string())
            .collect();
        usages.sort();
        let groups_raw = get_data(secret, KEY_EXTRA_GROUPS);
        let groups = if groups_raw.is_empty() || groups_raw.starts_with(',') {
            // Upstream keeps the split only when its first element is non-empty.
            Vec::new()
        } else {
            groups_raw.split(',').map(str::to_string).collect()
        };
        Ok(StoredToken {
            token,
            description,
            expires,
            usages,
            groups,
        })
    }
}

/// What kube-apiserver's bootstrap-token authenticator would accept right now (all
/// its checks except comparing the presented secret): used by `doctor`.
pub fn authenticates(secret: &Secret, now: Timestamp) -> Result<(), &'static str> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Err("being deleted");
    }
    if secret.type_.as_deref() != Some(SECRET_TYPE) || secret.data.is_none() {
        return Err("wrong Secret type");
    }
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let id = get_data(secret, KEY_TOKEN_ID);
    if name != secret_name(&id) || !is_valid_id(&id) {
        return Err("token-id does not match the Secret name");
    }
    if !is_valid_secret(&get_data(secret, KEY_TOKEN_SECRET)) {
        return Err("malformed token-secret");
    }
    match expiry(secret, now) {
        Expiry::Expired(_) => return Err("expired"),
        Expiry::Unparseable => return Err("unparseable expiration (treated as expired)"),
        Expiry::Never | Expiry::At(_) => {}
    }
    if get_data(secret, &format!("{USAGE_PREFIX}{USAGE_AUTHENTICATION}")) != "true" {
        return Err("no authentication usage");
    }
    let groups = get_data(secret, KEY_EXTRA_GROUPS);
    if !groups.is_empty() && !groups.split(',').all(is_valid_group) {
        return Err("invalid auth-extra-groups");
    }
    Ok(())
}

/// The groups an authenticated token's user is in (before `system:authenticated`),
/// sorted and de-duplicated like upstream's `GetGroups`.
pub fn token_groups(secret: &Secret) -> Vec<String> {
    let mut groups = std::collections::BTreeSet::from([DEFAULT_GROUP.to_string()]);
    let extra = get_data(secret, KEY_EXTRA_GROUPS);
    if !extra.is_empty() {
        groups.extend(extra.split(',').map(str::to_string));
    }
    groups.into_iter().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn token(s: &str) -> TokenString {
        match TokenString::parse(s) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn token_patterns() {
        assert!(TokenString::parse("abcdef.0123456789abcdef").is_ok());
        for bad in [
            "",
            "abcdef",
            "abcdef.",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdefg",
            "abcdeF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "abcdef:0123456789abcdef",
            "abcdef.0123456789abcdef\n",
            " abcdef.0123456789abcdef",
            "abcdef.0123456789abcdef.x",
        ] {
            assert!(TokenString::parse(bad).is_err(), "{bad:?}");
        }
        assert!(is_valid_id("abc123"));
        assert!(!is_valid_id("abc12"));
        assert!(!is_valid_id("ABC123"));
        assert!(!is_valid_id("abc1234"));
    }

    #[test]
    fn parse_error_is_kubeadms() {
        assert_eq!(
            TokenString::parse("foo"),
            Err(r#"the bootstrap token "foo" was not of the form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z""#.to_string())
        );
    }

    #[test]
    fn group_pattern() {
        for ok in [
            "system:bootstrappers:kubeadm:default-node-token",
            "system:bootstrappers:a",
            "system:bootstrappers:worker-pool-1",
            "system:bootstrappers::a",
        ] {
            assert!(is_valid_group(ok), "{ok}");
        }
        let long_ok = format!("system:bootstrappers:{}a", "b".repeat(255));
        assert!(is_valid_group(&long_ok));
        let too_long = format!("system:bootstrappers:{}a", "b".repeat(256));
        assert!(!is_valid_group(&too_long));
        for bad in [
            "system:bootstrappers",
            "system:bootstrappers:",
            "system:bootstrappers:a-",
            "system:bootstrappers:a:",
            "system:bootstrappers:A",
            "system:masters",
            "system:bootstrappers:a b",
            "xsystem:bootstrappers:a",
        ] {
            assert!(!is_valid_group(bad), "{bad}");
        }
        assert_eq!(
            group_error("foo"),
            r#"bootstrap group "foo" is invalid (must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z)"#
        );
    }

    #[test]
    fn usages_validation() {
        let v = |u: &[&str]| usages_error(&u.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["signing", "authentication"]), None);
        assert_eq!(v(&[]), None);
        assert_eq!(
            v(&["foo", "signing", "bar", "foo"]),
            Some(
                "invalid bootstrap token usage string: bar,foo, valid usage options: signing,authentication"
                    .into()
            )
        );
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let t = token("abcdef.0123456789abcdef");
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        assert!(!format!("{t}").contains("0123456789abcdef"));
        assert_eq!(t.expose(), "abcdef.0123456789abcdef");
    }

    #[test]
    fn generated_tokens_are_valid_and_differ() {
        let a = TokenString::generate().map(|t| t.expose());
        let b = TokenString::generate().map(|t| t.expose());
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("OS random source failed");
        };
        assert!(TokenString::parse(&a).is_ok(), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn rejection_sampling_skips_biased_bytes() {
        // Only bytes >= 252 first, then 0 and 35: the high ones must be discarded,
        // not folded onto '0'..'3'.
        let mut calls = 0;
        let t = TokenString::generate_with(|buf: &mut [u8]| -> Result<(), ()> {
            calls += 1;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = if calls == 1 {
                    252 + (i % 4) as u8
                } else if i % 2 == 0 {
                    0
                } else {
                    35
                };
            }
            Ok(())
        });
        assert_eq!(t.map(|t| t.expose()), Ok("0z0z0z.0z0z0z0z0z0z0z0z".into()));
    }

    #[test]
    fn rejection_sampling_is_uniform_over_all_byte_values() {
        // Every byte value 0..=255 equally often must give every character exactly
        // the same count: 7 per 256 bytes. Plain `% 36` would give '0'..'3' 8.
        let mut next = 0u8;
        let drawn = random_chars(252 * 4, &mut |buf: &mut [u8]| -> Result<(), ()> {
            for b in buf.iter_mut() {
                *b = next;
                next = next.wrapping_add(1);
            }
            Ok(())
        });
        let Ok(drawn) = drawn else {
            panic!("infallible source")
        };
        let mut counts = [0usize; 36];
        for c in drawn.bytes() {
            if let Some(i) = ALPHABET.iter().position(|a| *a == c) {
                counts[i] += 1;
            }
        }
        assert_eq!(counts, [28; 36]);
    }

    #[test]
    fn random_source_errors_propagate() {
        let r = TokenString::generate_with(|_: &mut [u8]| Err("no entropy"));
        assert_eq!(r, Err("no entropy"));
    }

    fn spec() -> TokenSpec {
        TokenSpec {
            token: token("abcdef.0123456789abcdef"),
            description: "worker pool".into(),
            expires: gocompat::parse_rfc3339("2030-01-02T03:04:05Z").map(|t| t.timestamp),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![
                KUBEADM_DEFAULT_GROUP.into(),
                "system:bootstrappers:extra".into(),
            ],
        }
    }

    fn data_of(s: &Secret) -> BTreeMap<String, String> {
        s.data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect()
    }

    #[test]
    fn secret_matches_bootstrap_token_to_secret() {
        let s = spec().to_secret();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(s.type_.as_deref(), Some("bootstrap.kubernetes.io/token"));
        let want: BTreeMap<String, String> = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("description", "worker pool"),
            ("expiration", "2030-01-02T03:04:05Z"),
            ("usage-bootstrap-signing", "true"),
            ("usage-bootstrap-authentication", "true"),
            (
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token,system:bootstrappers:extra",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(data_of(&s), want);
    }

    #[test]
    fn secret_omits_empty_optional_keys() {
        let s = TokenSpec {
            description: String::new(),
            expires: None,
            usages: vec![],
            groups: vec![],
            ..spec()
        }
        .to_secret();
        let keys: Vec<String> = data_of(&s).into_keys().collect();
        assert_eq!(keys, vec!["token-id", "token-secret"]);
    }

    #[test]
    fn stored_token_round_trips() {
        let st = StoredToken::from_secret(&spec().to_secret());
        let Ok(st) = st else { panic!("{st:?}") };
        assert_eq!(st.token.expose(), "abcdef.0123456789abcdef");
        assert_eq!(st.description, "worker pool");
        assert_eq!(st.usages, vec!["authentication", "signing"]);
        assert_eq!(st.groups.len(), 2);
        assert_eq!(
            st.expires
                .map(|e| gocompat::format_rfc3339(e.timestamp, e.offset_seconds)),
            Some("2030-01-02T03:04:05Z".into())
        );
    }

    fn secret_with(name: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn malformed_secrets_give_kubeadms_errors() {
        let e = |s: &Secret| StoredToken::from_secret(s).err().unwrap_or_default();
        assert_eq!(
            e(&secret_with("bootstrap-token-abcdef", &[])),
            "bootstrap Token Secret has no token-id data: bootstrap-token-abcdef"
        );
        assert_eq!(
            e(&secret_with(
                "bootstrap-token-abcdef",
                &[("token-id", "abcdef")]
            )),
            "bootstrap Token Secret has no token-secret data: bootstrap-token-abcdef"
        );
        assert!(
            e(&secret_with(
                "bootstrap-token-abcdef",
                &[
                    ("token-id", "abcdef"),
                    ("token-secret", "0123456789abcdef"),
                    ("expiration", "tomorrow")
                ]
            ))
            .starts_with(
                r#"can't parse expiration time of bootstrap token "bootstrap-token-abcdef": parsing time "tomorrow""#
            )
        );
    }

    /// kubeadm quotes a malformed token-id or token-secret in its errors (and the expected
    /// Secret name, which holds the token-id); these errors never repeat any of those bytes.
    #[test]
    fn malformed_token_parts_are_described_without_their_bytes() {
        let e = |s: &Secret| StoredToken::from_secret(s).err().unwrap_or_default();
        type Data<'a> = &'a [(&'a str, &'a [u8])];
        let cases: [(&str, Data<'_>, &str); 8] = [
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"abcdef"),
                    ("token-secret", b"leakmarkerabcde"),
                ],
                "token-secret is 15 bytes, want 16",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"abcdef"),
                    ("token-secret", b"leakmarker0123456"),
                ],
                "token-secret is 17 bytes, want 16",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"abcdef"),
                    ("token-secret", b"LEAKMARKER012345"),
                ],
                "token-secret has bytes outside [a-z0-9]",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"abcdef"),
                    ("token-secret", b"leakmarker01234\xff"),
                ],
                "token-secret has bytes outside [a-z0-9]",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"abcdef.leakmarker012345"),
                    ("token-secret", b"leakmarker012345"),
                ],
                "token-id is 23 bytes, want 6",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"LEAKMA"),
                    ("token-secret", b"leakmarker012345"),
                ],
                "token-id has bytes outside [a-z0-9]",
            ),
            (
                "my-token",
                &[
                    ("token-id", b"leakma"),
                    ("token-secret", b"leakmarker012345"),
                ],
                "its name is not bootstrap-token- followed by its token-id",
            ),
            (
                "bootstrap-token-abcdef",
                &[
                    ("token-id", b"leakma"),
                    ("token-secret", b"leakmarker012345"),
                ],
                "its name is not bootstrap-token- followed by its token-id",
            ),
        ];
        for (name, data, defect) in cases {
            let secret = Secret {
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                        .collect(),
                ),
                ..secret_with(name, &[])
            };
            let got = e(&secret);
            assert_eq!(
                got,
                format!("bootstrap Token Secret \"{name}\" is invalid: {defect}")
            );
            assert!(!got.to_lowercase().contains("leakma"), "{got}");
        }
    }

    #[test]
    fn usages_only_count_when_exactly_true_and_groups_follow_upstream_split() {
        let s = secret_with(
            "bootstrap-token-abcdef",
            &[
                ("token-id", "abcdef"),
                ("token-secret", "0123456789abcdef"),
                ("usage-bootstrap-signing", "True"),
                ("usage-bootstrap-authentication", "true"),
                ("usage-bootstrap-custom", "true"),
                ("auth-extra-groups", ""),
            ],
        );
        let Ok(st) = StoredToken::from_secret(&s) else {
            panic!("valid")
        };
        assert_eq!(st.usages, vec!["authentication", "custom"]);
        assert!(st.groups.is_empty());
        assert_eq!(st.expires, None);
    }

    #[test]
    fn expiry_and_authentication_follow_the_authenticator() {
        let now = gocompat::parse_rfc3339("2030-01-01T00:00:00Z")
            .map(|t| t.timestamp)
            .unwrap_or_default();
        let base = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut d: Vec<(&str, &str)> = base.to_vec();
            d.extend_from_slice(extra);
            secret_with("bootstrap-token-abcdef", &d)
        };
        let never = with(&[]);
        assert_eq!(expiry(&never, now), Expiry::Never);
        assert_eq!(authenticates(&never, now), Ok(()));
        let live = with(&[("expiration", "2030-01-01T00:00:01Z")]);
        assert!(matches!(expiry(&live, now), Expiry::At(_)));
        assert_eq!(authenticates(&live, now), Ok(()));
        // Exactly at the expiration instant it is expired (remaining <= 0).
        let edge = with(&[("expiration", "2030-01-01T00:00:00Z")]);
        assert!(matches!(expiry(&edge, now), Expiry::Expired(_)));
        assert_eq!(authenticates(&edge, now), Err("expired"));
        let junk = with(&[("expiration", "soon")]);
        assert_eq!(expiry(&junk, now), Expiry::Unparseable);
        assert!(authenticates(&junk, now).is_err());
        let bad_group = with(&[("auth-extra-groups", "system:masters")]);
        assert_eq!(
            authenticates(&bad_group, now),
            Err("invalid auth-extra-groups")
        );
        let no_auth = secret_with("bootstrap-token-abcdef", &base[..2]);
        assert_eq!(authenticates(&no_auth, now), Err("no authentication usage"));
        let grouped = with(&[(
            "auth-extra-groups",
            "system:bootstrappers:b,system:bootstrappers:a",
        )]);
        assert_eq!(
            token_groups(&grouped),
            vec![
                "system:bootstrappers",
                "system:bootstrappers:a",
                "system:bootstrappers:b"
            ]
        );
    }
}
