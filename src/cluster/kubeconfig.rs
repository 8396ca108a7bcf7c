//! Checks a kubeconfig file before kube-rs loads it, so a broken one is reported as what is
//! wrong with which entry of which file. kube-rs alone says "failed to determine current
//! context" for an empty file or a Secret, accepts a CA that is not a certificate (the failure
//! then surfaces as a TLS error at connect time), and reports a truncated client key as a
//! rustls error that names neither the file nor the user.
//!
//! The checks only look for what would certainly fail; anything they pass is still loaded and
//! judged by kube-rs, whose errors are then attributed to the file too.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;

/// Far above any real kubeconfig; bounds memory for a mistaken path (a disk image, /dev/zero).
const MAX_KUBECONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// Same bound for the certificate and key files a kubeconfig points to.
const MAX_PEM_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What is wrong with a kubeconfig file. Shown after "kubeconfig FILE: ".
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigProblem {
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    #[error("file is larger than {} MiB", MAX_KUBECONFIG_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("binary data, not a YAML kubeconfig (invalid UTF-8 at byte {0})")]
    NotText(usize),
    #[error("the file is empty")]
    Empty,
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("not a kubeconfig: {0}")]
    NotAKubeconfig(String),
    /// An entry that kube-rs would refuse, or that could never connect; the text names it.
    #[error("{0}")]
    Invalid(String),
}

/// What a PEM file or field should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// One or more X.509 certificates (a CA bundle, a client certificate).
    Certificates,
    /// One private key (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
    PrivateKey,
}

impl PemKind {
    fn expected(self) -> &'static str {
        match self {
            PemKind::Certificates => "CERTIFICATE",
            PemKind::PrivateKey => "PRIVATE KEY",
        }
    }
}

/// Why PEM data is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemProblem {
    #[error("empty (expected a PEM {0} block)")]
    Empty(&'static str),
    #[error("no PEM block found (expected -----BEGIN {0}-----)")]
    NoBlock(&'static str),
    #[error("truncated PEM: the {0} block has no END line")]
    Truncated(String),
    #[error("the PEM block {begin:?} ends with {end:?}")]
    MismatchedEnd { begin: String, end: String },
    #[error("expected a PEM {expected} block, found {found:?}")]
    WrongLabel {
        expected: &'static str,
        found: String,
    },
    #[error("invalid base64 in the {label} PEM block: {reason}")]
    Base64 { label: String, reason: String },
    #[error("the {0} PEM block is empty")]
    EmptyBlock(String),
    #[error("certificate {n} does not parse: {reason}")]
    Certificate { n: usize, reason: String },
    #[error("more than one private key")]
    SeveralKeys,
}

/// Checks that `data` holds complete, decodable PEM blocks of `kind` (text around the blocks is
/// allowed, as `openssl x509 -text` output has it and TLS libraries skip it). Returns the number
/// of blocks.
pub fn check_pem(data: &[u8], kind: PemKind) -> Result<usize, PemProblem> {
    if data.trim_ascii().is_empty() {
        return Err(PemProblem::Empty(kind.expected()));
    }
    let text = String::from_utf8_lossy(data);
    let mut open: Option<(String, String)> = None;
    let mut blocks = 0usize;
    for line in text.lines() {
        let line = line.trim();
        match open.take() {
            None => {
                let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                else {
                    continue;
                };
                let label_ok = match kind {
                    PemKind::Certificates => label == "CERTIFICATE",
                    PemKind::PrivateKey => label.ends_with("PRIVATE KEY"),
                };
                if !label_ok {
                    return Err(PemProblem::WrongLabel {
                        expected: kind.expected(),
                        found: crate::policy::printable_label(label.as_bytes()),
                    });
                }
                open = Some((label.to_owned(), String::new()));
            }
            Some((label, mut body)) => {
                if let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    if end != label {
                        return Err(PemProblem::MismatchedEnd {
                            begin: label,
                            end: crate::policy::printable_label(end.as_bytes()),
                        });
                    }
                    blocks += 1;
                    check_block(&label, &body, kind, blocks)?;
                } else if line.starts_with("-----BEGIN ") {
                    return Err(PemProblem::Truncated(label));
                } else {
                    // RFC 1421 headers (`Proc-Type: …` of an encrypted key) are not base64.
                    if !line.contains(':') {
                        body.push_str(line);
                    }
                    open = Some((label, body));
                }
            }
        }
    }
    if let Some((label, _)) = open {
        return Err(PemProblem::Truncated(label));
    }
    match blocks {
        0 => Err(PemProblem::NoBlock(kind.expected())),
        n if n > 1 && kind == PemKind::PrivateKey => Err(PemProblem::SeveralKeys),
        n => Ok(n),
    }
}

fn check_block(label: &str, body: &str, kind: PemKind, n: usize) -> Result<(), PemProblem> {
    let der = crate::policy::decode_base64(body.as_bytes()).map_err(|e| PemProblem::Base64 {
        label: label.to_owned(),
        reason: e.to_string(),
    })?;
    if der.is_empty() {
        return Err(PemProblem::EmptyBlock(label.to_owned()));
    }
    if kind == PemKind::Certificates {
        x509_parser::parse_x509_certificate(&der).map_err(|e| PemProblem::Certificate {
            n,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, std::io::Error> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads a certificate or key file, refusing one over 16 MiB (a mistaken `/dev/zero` or disk
/// image would otherwise be read whole into memory).
pub fn read_pem_file(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let bytes = read_capped(path, MAX_PEM_FILE_BYTES)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "file is larger than {} MiB",
                MAX_PEM_FILE_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(bytes)
}

/// Checks the kubeconfig at `path` for the context that would be used (`context`, else its
/// current-context).
pub fn check_file(path: &Path, context: Option<&str>) -> Result<(), KubeconfigProblem> {
    let bytes = read_capped(path, MAX_KUBECONFIG_BYTES).map_err(KubeconfigProblem::Read)?;
    if bytes.len() as u64 > MAX_KUBECONFIG_BYTES {
        return Err(KubeconfigProblem::TooLarge);
    }
    // kube-rs reads UTF-16 files (Windows editors write them); leave those to it.
    if bytes.starts_with(&[0xFF, 0xFE]) {
        return Ok(());
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|e| KubeconfigProblem::NotText(e.valid_up_to()))?;
    if text.trim().is_empty() {
        return Err(KubeconfigProblem::Empty);
    }
    let mut documents = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| KubeconfigProblem::Yaml(e.to_string()))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    // Several documents are merged by kube-rs; judging them one by one would be wrong.
    match documents.as_slice() {
        [] => Err(KubeconfigProblem::Empty),
        [one] => {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            check_document(one, context, &dir)
        }
        _ => Ok(()),
    }
}

fn yaml_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

/// The `name`d entries of a top-level list (`clusters`, `contexts`, `users`).
fn entries<'a>(doc: &'a Value, key: &str) -> Result<Vec<(&'a str, &'a Value)>, KubeconfigProblem> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = item.get("name").and_then(Value::as_str).ok_or_else(|| {
                    KubeconfigProblem::Invalid(format!("{key} entry {} has no name", i + 1))
                })?;
                Ok((name, item))
            })
            .collect(),
        Some(other) => Err(KubeconfigProblem::Invalid(format!(
            "{key} is a {}, not a list",
            yaml_type(other)
        ))),
    }
}

fn names(list: &[(&str, &Value)]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|(n, _)| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_document(doc: &Value, context: Option<&str>, dir: &Path) -> Result<(), KubeconfigProblem> {
    let Value::Object(map) = doc else {
        return Err(KubeconfigProblem::NotAKubeconfig(format!(
            "a YAML {}, not a mapping",
            yaml_type(doc)
        )));
    };
    if let Some(kind) = map.get("kind").and_then(Value::as_str)
        && kind != "Config"
    {
        return Err(KubeconfigProblem::NotAKubeconfig(format!(
            "kind is {kind} (a kubeconfig has kind: Config)"
        )));
    }
    let clusters = entries(doc, "clusters")?;
    let contexts = entries(doc, "contexts")?;
    let users = entries(doc, "users")?;
    if clusters.is_empty() && contexts.is_empty() && users.is_empty() {
        return Err(KubeconfigProblem::NotAKubeconfig(
            "it has no clusters, contexts or users".into(),
        ));
    }
    let current = map
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    let Some(ctx_name) = context.or(current) else {
        return Err(KubeconfigProblem::Invalid(format!(
            "no current-context is set and --context was not given (contexts: {})",
            names(&contexts)
        )));
    };
    let (_, ctx) = contexts
        .iter()
        .find(|(n, _)| *n == ctx_name)
        .ok_or_else(|| {
            KubeconfigProblem::Invalid(format!(
                "context {ctx_name:?} is not in the file (contexts: {})",
                names(&contexts)
            ))
        })?;
    let ctx = ctx.get("context").unwrap_or(&Value::Null);
    let cluster_name = ctx
        .get("cluster")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            KubeconfigProblem::Invalid(format!("context {ctx_name:?} names no cluster"))
        })?;
    let (_, cluster) = clusters
        .iter()
        .find(|(n, _)| *n == cluster_name)
        .ok_or_else(|| {
            KubeconfigProblem::Invalid(format!(
                "context {ctx_name:?} names cluster {cluster_name:?}, which is not in the file \
                 (clusters: {})",
                names(&clusters)
            ))
        })?;
    check_cluster(
        cluster_name,
        cluster.get("cluster").unwrap_or(&Value::Null),
        dir,
    )?;
    if let Some(user_name) = ctx
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        let (_, user) = users.iter().find(|(n, _)| *n == user_name).ok_or_else(|| {
            KubeconfigProblem::Invalid(format!(
                "context {ctx_name:?} names user {user_name:?}, which is not in the file \
                     (users: {})",
                names(&users)
            ))
        })?;
        check_user(user_name, user.get("user").unwrap_or(&Value::Null), dir)?;
    }
    Ok(())
}

/// A string field, or an error naming `owner` and the field when it is another type.
fn string_field<'a>(
    entry: &'a Value,
    field: &str,
    owner: &str,
) -> Result<Option<&'a str>, KubeconfigProblem> {
    match entry.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(KubeconfigProblem::Invalid(format!(
            "{owner}: {field} is a {}, not a string",
            yaml_type(other)
        ))),
    }
}

fn check_cluster(name: &str, cluster: &Value, dir: &Path) -> Result<(), KubeconfigProblem> {
    let owner = format!("cluster {name:?}");
    let server = string_field(cluster, "server", &owner)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| KubeconfigProblem::Invalid(format!("{owner} has no server")))?;
    if let Some(why) = server_problem(server) {
        return Err(KubeconfigProblem::Invalid(format!(
            "{owner}: server {server:?} {why}"
        )));
    }
    check_pem_source(
        cluster,
        &owner,
        ("certificate-authority-data", "certificate-authority"),
        PemKind::Certificates,
        dir,
    )
}

fn check_user(name: &str, user: &Value, dir: &Path) -> Result<(), KubeconfigProblem> {
    let owner = format!("user {name:?}");
    check_pem_source(
        user,
        &owner,
        ("client-certificate-data", "client-certificate"),
        PemKind::Certificates,
        dir,
    )?;
    check_pem_source(
        user,
        &owner,
        ("client-key-data", "client-key"),
        PemKind::PrivateKey,
        dir,
    )
}

/// Why `server` cannot be an API server URL, if it cannot.
pub fn server_problem(server: &str) -> Option<&'static str> {
    let rest = match server.split_once("://") {
        Some(("https" | "http", rest)) => rest,
        Some(_) => return Some("is not an http:// or https:// URL"),
        None => return Some("is not a URL (expected https://HOST[:PORT])"),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Some("has no host");
    }
    if server
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\'))
    {
        return Some("is not a valid URL (it contains spaces or characters URLs cannot hold)");
    }
    None
}

/// Checks the inline (`…-data`, base64) or file form of a PEM field; the inline one wins, as in
/// kube-rs and client-go.
fn check_pem_source(
    entry: &Value,
    owner: &str,
    (data_field, file_field): (&str, &str),
    kind: PemKind,
    dir: &Path,
) -> Result<(), KubeconfigProblem> {
    let invalid = |what: String| KubeconfigProblem::Invalid(format!("{owner}: {what}"));
    if let Some(data) = string_field(entry, data_field, owner)? {
        let pem = crate::policy::decode_base64(data.as_bytes())
            .map_err(|e| invalid(format!("{data_field} is not valid base64: {e}")))?;
        check_pem(&pem, kind).map_err(|e| invalid(format!("{data_field}: {e}")))?;
        return Ok(());
    }
    if let Some(file) = string_field(entry, file_field, owner)? {
        let path = dir.join(file);
        let shown = PathBuf::from(file);
        let pem = read_pem_file(&path).map_err(|e| {
            invalid(format!(
                "{file_field} {}: cannot read it: {e}",
                shown.display()
            ))
        })?;
        check_pem(&pem, kind)
            .map_err(|e| invalid(format!("{file_field} {}: {e}", shown.display())))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cert_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["ca".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    #[test]
    fn pem_problems_are_named() {
        let cert = cert_pem();
        assert_eq!(check_pem(cert.as_bytes(), PemKind::Certificates), Ok(1));
        let two = format!("subject=CN=ca\n{cert}{cert}");
        assert_eq!(check_pem(two.as_bytes(), PemKind::Certificates), Ok(2));
        assert_eq!(
            check_pem(b" \n", PemKind::Certificates),
            Err(PemProblem::Empty("CERTIFICATE"))
        );
        assert_eq!(
            check_pem(b"hello", PemKind::PrivateKey),
            Err(PemProblem::NoBlock("PRIVATE KEY"))
        );
        let lines: Vec<&str> = cert.lines().collect();
        let cut = lines[..lines.len() / 2].join("\n");
        assert_eq!(
            check_pem(cut.as_bytes(), PemKind::Certificates),
            Err(PemProblem::Truncated("CERTIFICATE".into()))
        );
        let csr = cert.replace("CERTIFICATE", "CERTIFICATE REQUEST");
        assert_eq!(
            check_pem(csr.as_bytes(), PemKind::Certificates),
            Err(PemProblem::WrongLabel {
                expected: "CERTIFICATE",
                found: "CERTIFICATE REQUEST".into()
            })
        );
        let bad = "-----BEGIN EC PRIVATE KEY-----\nnot*base64\n-----END EC PRIVATE KEY-----\n";
        assert!(matches!(
            check_pem(bad.as_bytes(), PemKind::PrivateKey),
            Err(PemProblem::Base64 { .. })
        ));
        let mismatched = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            check_pem(mismatched.as_bytes(), PemKind::PrivateKey),
            Err(PemProblem::MismatchedEnd { .. })
        ));
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            check_pem(not_der.as_bytes(), PemKind::Certificates),
            Err(PemProblem::Certificate { n: 1, .. })
        ));
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert_eq!(check_pem(key.as_bytes(), PemKind::PrivateKey), Ok(1));
        let keys = format!("{key}{key}");
        assert_eq!(
            check_pem(keys.as_bytes(), PemKind::PrivateKey),
            Err(PemProblem::SeveralKeys)
        );
    }

    #[test]
    fn server_urls() {
        assert_eq!(server_problem("https://10.0.0.1:6443"), None);
        assert_eq!(server_problem("http://localhost:8080/prefix"), None);
        assert!(server_problem("10.0.0.1:6443").is_some());
        assert!(server_problem("ftp://x").is_some());
        assert!(server_problem("https://").is_some());
        assert!(server_problem("https://a b").is_some());
    }

    #[test]
    fn documents_are_judged_for_the_context_in_use() {
        let dir = Path::new("/nonexistent");
        let check = |yaml: &str, ctx: Option<&str>| {
            let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
            check_document(&v, ctx, dir).map_err(|e| e.to_string())
        };
        let base = "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n\
                    contexts:\n- name: x\n  context: {cluster: c, user: u}\n\
                    users:\n- name: u\n  user: {token: t}\n";
        assert_eq!(check(base, Some("x")), Ok(()));
        assert_eq!(
            check(base, None).unwrap_err(),
            "no current-context is set and --context was not given (contexts: \"x\")"
        );
        assert_eq!(
            check(base, Some("y")).unwrap_err(),
            "context \"y\" is not in the file (contexts: \"x\")"
        );
        assert_eq!(
            check("kind: Secret\n", None).unwrap_err(),
            "not a kubeconfig: kind is Secret (a kubeconfig has kind: Config)"
        );
        assert_eq!(
            check("[1]", None).unwrap_err(),
            "not a kubeconfig: a YAML sequence, not a mapping"
        );
        assert_eq!(
            check(&base.replace("user: u}", "user: v}"), Some("x")).unwrap_err(),
            "context \"x\" names user \"v\", which is not in the file (users: \"u\")"
        );
        assert_eq!(
            check(&base.replace("'https://h:1'", "5"), Some("x")).unwrap_err(),
            "cluster \"c\": server is a number, not a string"
        );
    }
}
