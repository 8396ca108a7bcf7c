//! `tlsboot inspect FILE...`: decode CSRs from files and show every check's verdict, offline.
//!
//! Files hold `CertificateSigningRequest` objects (YAML or JSON; one object, a `List`, or several
//! YAML documents as `kubectl get csr -o yaml` prints them) or a raw PEM request, whose spec then
//! comes from the flags. One bad CSR never stops the others; a file that is neither an object
//! nor PEM is reported on stderr and makes the exit status non-zero after the rest is done.

use crate::policy::{
    self, CsrFacts, Decision, ParseError, ParsedCsr, SIGNER_KUBELET_CLIENT, Verdict,
    decide_with_parse, parse_csr, upstream::KUBELET_BOOTSTRAP_USAGES,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest input file read. Far above any real CSR list; it bounds memory for a mistaken path.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, clap::Args)]
pub struct InspectFileArgs {
    /// Files with CertificateSigningRequest objects (YAML or JSON: one object, a List, or
    /// `kubectl get csr -o yaml` output) or raw PEM requests. `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format: human-readable text, or a JSON/YAML array with one element per CSR.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Raw PEM files only: the signer the request is for.
    #[arg(long, value_name = "NAME", default_value = SIGNER_KUBELET_CLIENT)]
    pub signer_name: String,

    /// Raw PEM files only: the requesting user (spec.username), e.g. system:node:worker-1.
    #[arg(long, value_name = "USER", default_value = "")]
    pub username: String,

    /// Raw PEM files only: the requester's groups (spec.groups), comma-separated.
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    pub groups: Vec<String>,

    /// Raw PEM files only: the requested usages (spec.usages), comma-separated. Default: the
    /// kubelet's bootstrap usages.
    #[arg(
        long,
        value_name = "USAGE,...",
        value_delimiter = ',',
        default_values_t = KUBELET_BOOTSTRAP_USAGES.map(String::from)
    )]
    pub usages: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
    #[error("encoding output: {0}")]
    Encode(String),
}

/// Why a file (or one item in it) could not be read as CSRs.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("cannot read it: {0}")]
    Read(#[from] io::Error),
    #[error("file is empty")]
    Empty,
    #[error("file is larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge,
    #[error(
        "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE REQUEST: {0}"
    )]
    Unrecognised(String),
    #[error("{where_}not a CertificateSigningRequest (kind {kind:?})")]
    WrongKind { where_: String, kind: String },
    #[error("{where_}not a Kubernetes object: {what}")]
    NotAnObject { where_: String, what: String },
    #[error("{where_}not a valid certificates.k8s.io/v1 CertificateSigningRequest: {reason}")]
    InvalidObject { where_: String, reason: String },
}

/// One CSR read from a file, owned, with its request decoded (or the reason it could not be).
struct CsrInput {
    source: String,
    name: String,
    signer_name: String,
    request: Vec<u8>,
    request_error: Option<ParseError>,
    usages: Vec<String>,
    username: String,
    groups: Vec<String>,
    approved: bool,
    denied: bool,
    issued: bool,
}

impl CsrInput {
    fn facts(&self) -> CsrFacts<'_> {
        CsrFacts {
            name: &self.name,
            signer_name: &self.signer_name,
            request: &self.request,
            usages: &self.usages,
            username: &self.username,
            groups: &self.groups,
            approved: self.approved,
            denied: self.denied,
            issued: self.issued,
        }
    }
}

/// One element of `-o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    name: String,
    source: String,
    signer_name: String,
    class: policy::SignerClass,
    verdict: Verdict,
    subject_access_reviews: Vec<policy::SarSubresource>,
    violations: Vec<String>,
    checks: Vec<policy::Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_reason: Option<String>,
    username: String,
    groups: Vec<String>,
    usages: Vec<String>,
    /// The decoded request; shown for ignored CSRs too when it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<ParsedCsr>,
}

fn report(input: CsrInput) -> Report {
    let decision = match &input.request_error {
        Some(e) => decide_with_parse(&input.facts(), Err(e.clone())),
        None => policy::decide(&input.facts()),
    };
    let Decision {
        class,
        verdict,
        subject_access_reviews,
        violations,
        checks,
        ignore_reason,
        parsed,
    } = decision;
    // Ignored CSRs are not parsed by policy; a person still wants to see what they hold.
    let request = parsed.or_else(|| {
        (verdict == Verdict::Ignore && input.request_error.is_none())
            .then(|| parse_csr(&input.request).ok())
            .flatten()
    });
    Report {
        name: input.name,
        source: input.source,
        signer_name: input.signer_name,
        class,
        verdict,
        subject_access_reviews,
        violations,
        checks,
        ignore_reason,
        username: input.username,
        groups: input.groups,
        usages: input.usages,
        request,
    }
}

/// Entry point from `main`.
pub fn run(args: &InspectFileArgs) -> Result<ExitCode, InspectError> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let result = run_with(
        args,
        &mut io::stdin().lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    match result {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(InspectError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

/// [`run`] with its streams passed in (tests).
pub fn run_with(
    args: &InspectFileArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, InspectError> {
    let mut failed = false;
    let mut reports: Vec<Report> = Vec::new();
    let mut printed = 0usize;
    for path in &args.files {
        let display = if path.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let bytes = match read_input(path, stdin) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "error: {display}: {e}")?;
                failed = true;
                continue;
            }
        };
        let (inputs, errors) = parse_file(&display, &bytes, args);
        drop(bytes);
        for e in errors {
            writeln!(err, "error: {display}: {e}")?;
            failed = true;
        }
        for input in inputs {
            let r = report(input);
            if args.output == OutputFormat::Text {
                if printed > 0 {
                    writeln!(out)?;
                }
                write_text(out, &r)?;
                printed += 1;
            } else {
                reports.push(r);
            }
        }
    }
    match args.output {
        OutputFormat::Text => {}
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &reports)
                .map_err(|e| InspectError::Encode(e.to_string()))?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => {
            let text = serde_yaml_ng::to_string(&reports)
                .map_err(|e| InspectError::Encode(e.to_string()))?;
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(super::error::exit_code(failed))
}

fn read_input(path: &Path, stdin: &mut dyn Read) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        stdin.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(InputError::TooLarge);
    }
    Ok(bytes)
}

/// Splits a file into CSRs. Errors for single items do not stop the other items.
fn parse_file(
    source: &str,
    bytes: &[u8],
    args: &InspectFileArgs,
) -> (Vec<CsrInput>, Vec<InputError>) {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return (Vec::new(), vec![InputError::Empty]);
    }
    if trimmed.starts_with(b"-----BEGIN") {
        return (vec![pem_input(source, bytes, args)], Vec::new());
    }
    // PEM after other text (`openssl req -text` output) is still a request: the policy then
    // names the leading text. Object files never contain a PEM line: their request is base64.
    let has_pem = trimmed.windows(11).any(|w| w == b"-----BEGIN ");
    let documents = match parse_documents(trimmed) {
        Ok(docs) => docs,
        Err(_) if has_pem => return (vec![pem_input(source, bytes, args)], Vec::new()),
        Err(reason) => return (Vec::new(), vec![InputError::Unrecognised(reason)]),
    };
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut objects: Vec<(String, serde_json::Value)> = Vec::new();
    let multi = documents.len() > 1;
    for (d, doc) in documents.into_iter().enumerate() {
        // Error prefixes: empty for a single document, so messages read "FILE: not a …".
        let where_doc = if multi {
            format!("document {}: ", d + 1)
        } else {
            String::new()
        };
        match doc {
            serde_json::Value::Null => {}
            serde_json::Value::Array(items) => {
                objects.extend(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("{where_doc}item {}: ", i + 1), v)),
                );
            }
            serde_json::Value::Object(ref map) if is_list(map) => match map.get("items") {
                Some(serde_json::Value::Array(items)) => {
                    objects.extend(
                        items
                            .iter()
                            .cloned()
                            .enumerate()
                            .map(|(i, v)| (format!("{where_doc}item {}: ", i + 1), v)),
                    );
                }
                // An empty List is `kubectl get csr -o yaml` with nothing to show.
                None | Some(serde_json::Value::Null) => {}
                Some(other) => errors.push(InputError::Unrecognised(format!(
                    "{where_doc}the List's items is {}, not a list",
                    json_type(other)
                ))),
            },
            serde_json::Value::Object(_) => objects.push((where_doc, doc)),
            _ => errors.push(InputError::Unrecognised(format!(
                "{where_doc}a plain value, not an object"
            ))),
        }
    }
    if objects.is_empty() && has_pem {
        return (vec![pem_input(source, bytes, args)], Vec::new());
    }
    if objects.is_empty() && errors.is_empty() {
        errors.push(InputError::Unrecognised("no objects found".into()));
    }
    for (where_, value) in objects {
        match csr_input(source, &where_, value) {
            Ok(input) => inputs.push(input),
            Err(e) => errors.push(e),
        }
    }
    (inputs, errors)
}

/// A JSON/YAML value's type, for messages.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

fn is_list(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.get("kind")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
}

fn parse_documents(bytes: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    // Said up front: the YAML parser would call it "invalid leading UTF-8 octet", which reads as
    // a YAML syntax problem in a file that is not text at all.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(format!(
            "binary data, not text (invalid UTF-8 at byte {})",
            e.valid_up_to()
        ));
    }
    if bytes.starts_with(b"{") || bytes.starts_with(b"[") {
        return serde_json::from_slice(bytes)
            .map(|v| vec![v])
            .map_err(|e| format!("invalid JSON: {e}"));
    }
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_slice(bytes) {
        docs.push(serde_json::Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?);
    }
    Ok(docs)
}

fn csr_input(
    source: &str,
    where_: &str,
    mut value: serde_json::Value,
) -> Result<CsrInput, InputError> {
    let not_an_object = |what: String| InputError::NotAnObject {
        where_: where_.to_owned(),
        what,
    };
    if !value.is_object() {
        return Err(not_an_object(format!(
            "{}, not a mapping",
            json_type(&value)
        )));
    }
    let kind = match value.get("kind") {
        Some(serde_json::Value::String(k)) => k.as_str(),
        None | Some(serde_json::Value::Null) => {
            return Err(not_an_object("no kind field".into()));
        }
        Some(other) => {
            return Err(not_an_object(format!(
                "kind is {}, not a string",
                json_type(other)
            )));
        }
    };
    if kind != "CertificateSigningRequest" {
        return Err(InputError::WrongKind {
            where_: where_.to_owned(),
            kind: kind.to_owned(),
        });
    }
    // k8s-openapi fills in a default spec; the API server never stores a CSR without one, so
    // judging that empty spec would only show a confusing `signer "" is not handled`.
    match value.get("spec") {
        Some(serde_json::Value::Object(_)) => {}
        None | Some(serde_json::Value::Null) => {
            return Err(InputError::InvalidObject {
                where_: where_.to_owned(),
                reason: "spec is missing".into(),
            });
        }
        Some(other) => {
            return Err(InputError::InvalidObject {
                where_: where_.to_owned(),
                reason: format!("spec is {}, not a mapping", json_type(other)),
            });
        }
    }
    // Decode spec.request ourselves: a garbage request is a verdict about that CSR, not a reason
    // to refuse the whole object.
    let encoded = value
        .get_mut("spec")
        .and_then(|s| s.get_mut("request"))
        .map(|r| std::mem::replace(r, serde_json::Value::String(String::new())));
    let (request, request_error) = match encoded {
        Some(serde_json::Value::String(text)) => match policy::decode_base64(text.as_bytes()) {
            Ok(bytes) => (bytes, None),
            Err(e) => (Vec::new(), Some(ParseError::RequestEncoding(e))),
        },
        Some(_) => {
            return Err(InputError::InvalidObject {
                where_: where_.to_owned(),
                reason: "spec.request is not a string".into(),
            });
        }
        None => (Vec::new(), None),
    };
    let mut csr: CertificateSigningRequest =
        serde_json::from_value(value).map_err(|e| InputError::InvalidObject {
            where_: where_.to_owned(),
            reason: e.to_string(),
        })?;
    csr.spec.request.0 = request;
    let facts = CsrFacts::from_csr(&csr);
    let (approved, denied, issued) = (facts.approved, facts.denied, facts.issued);
    let name = csr
        .metadata
        .name
        .clone()
        .or_else(|| csr.metadata.generate_name.clone())
        .unwrap_or_default();
    let spec = csr.spec;
    Ok(CsrInput {
        source: source.to_owned(),
        name,
        signer_name: spec.signer_name,
        request: spec.request.0,
        request_error,
        usages: spec.usages.unwrap_or_default(),
        username: spec.username.unwrap_or_default(),
        groups: spec.groups.unwrap_or_default(),
        approved,
        denied,
        issued,
    })
}

fn pem_input(source: &str, bytes: &[u8], args: &InspectFileArgs) -> CsrInput {
    let name = if source == "<stdin>" {
        source.to_owned()
    } else {
        Path::new(source)
            .file_name()
            .map_or_else(|| source.to_owned(), |n| n.to_string_lossy().into_owned())
    };
    CsrInput {
        source: source.to_owned(),
        name,
        signer_name: args.signer_name.clone(),
        request: bytes.to_vec(),
        request_error: None,
        usages: args.usages.iter().map(|u| u.trim().to_owned()).collect(),
        username: args.username.clone(),
        groups: args.groups.iter().map(|g| g.trim().to_owned()).collect(),
        approved: false,
        denied: false,
        issued: false,
    }
}

/// Makes text from a CSR safe for a terminal: control characters and bidi overrides are
/// escaped, so a hostile subject cannot rewrite the screen a reviewer is reading.
pub(crate) fn clean(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|s| clean(s).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn write_text(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let name = if r.name.is_empty() {
        "(unnamed)"
    } else {
        &r.name
    };
    writeln!(out, "{}  ({})", clean(name), clean(&r.source))?;
    writeln!(
        out,
        "  signer:      {} ({})",
        clean(&r.signer_name),
        r.class_str()
    )?;
    let user = if r.username.is_empty() {
        "(not set)"
    } else {
        &r.username
    };
    writeln!(out, "  requester:   {}", clean(user))?;
    writeln!(out, "  groups:      {}", list(&r.groups))?;
    writeln!(out, "  usages:      {}", list(&r.usages))?;
    if let Some(p) = &r.request {
        writeln!(out, "  subject:     {}", clean(&p.subject))?;
        let mut sans: Vec<String> = Vec::new();
        sans.extend(p.dns_names.iter().map(|d| format!("DNS:{d}")));
        sans.extend(p.ip_addresses.iter().map(|i| format!("IP:{i}")));
        sans.extend(p.email_addresses.iter().map(|e| format!("email:{e}")));
        sans.extend(p.uris.iter().map(|u| format!("URI:{u}")));
        sans.extend(p.other_names.iter().cloned());
        writeln!(out, "  SANs:        {}", list(&sans))?;
        writeln!(
            out,
            "  key:         {}, signed {}",
            p.public_key, p.signature_algorithm
        )?;
        let exts: Vec<String> = p
            .requested_extensions
            .iter()
            .map(|e| {
                let mut s = e.name.clone().unwrap_or_else(|| e.oid.clone());
                if e.critical {
                    s.push_str(" (critical)");
                }
                if let Some(v) = &e.summary {
                    s.push_str(&format!(" [{v}]"));
                }
                s
            })
            .collect();
        writeln!(out, "  extensions:  {}", list(&exts))?;
    }
    if !r.checks.is_empty() {
        writeln!(out, "  checks:")?;
        for c in &r.checks {
            match &c.detail {
                None => writeln!(out, "    pass  {}", c.name)?,
                Some(d) => writeln!(out, "    FAIL  {}: {}", c.name, clean(d))?,
            }
        }
    }
    let why = match r.verdict {
        Verdict::Authorize => {
            let sars: Vec<&str> = r
                .subject_access_reviews
                .iter()
                .map(|s| s.as_str())
                .collect();
            format!(
                "content is valid; approve if a SubjectAccessReview allows {}",
                sars.join(", then ")
            )
        }
        Verdict::Reject => violation_count(r.violations.len()),
        // Failed checks do not change a serving verdict; they are what the person weighs.
        Verdict::Manual => match r.violations.len() {
            0 => {
                "kubelet-serving certificates are never auto-approved; a person decides".to_owned()
            }
            n => format!(
                "kubelet-serving certificates are never auto-approved; a person decides, \
                 weighing {}",
                violation_count(n)
            ),
        },
        Verdict::Ignore => r
            .ignore_reason
            .as_deref()
            .map_or_else(String::new, |s| clean(s).into_owned()),
    };
    writeln!(out, "  verdict:     {} ({why})", r.verdict.as_str())
}

fn violation_count(n: usize) -> String {
    match n {
        1 => "1 violation".to_owned(),
        n => format!("{n} violations"),
    }
}

impl Report {
    fn class_str(&self) -> &'static str {
        self.class.as_str()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use serde_json::{Value, json};

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: InspectFileArgs,
    }

    fn example(name: &str) -> String {
        format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    struct Outcome {
        code: ExitCode,
        out: String,
        err: String,
    }

    fn inspect(argv: &[&str], stdin: &[u8]) -> Outcome {
        let cmd =
            Cmd::try_parse_from(std::iter::once("inspect").chain(argv.iter().copied())).unwrap();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run_with(&cmd.args, &mut &stdin[..], &mut out, &mut err).unwrap();
        Outcome {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    fn json_reports(argv: &[&str], stdin: &[u8]) -> (Vec<Value>, Outcome) {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(argv);
        let o = inspect(&full, stdin);
        let v: Value = serde_json::from_str(&o.out).unwrap();
        (v.as_array().unwrap().clone(), o)
    }

    fn p256_csr_pem(cn: &str, sans: Vec<rcgen::SanType>) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr_object(name: &str, request: Vec<u8>) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(request),
                signer_name: SIGNER_KUBELET_CLIENT.into(),
                usages: Some(KUBELET_BOOTSTRAP_USAGES.map(String::from).to_vec()),
                username: Some("system:bootstrap:abcdef".into()),
                groups: Some(vec!["system:bootstrappers".into()]),
                ..Default::default()
            },
            status: None,
        }
    }

    fn write_temp(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents).unwrap();
        f
    }

    #[test]
    fn examples_get_the_right_verdicts_as_json() {
        let files = [
            example("kubelet-bootstrap-csr.yaml"),
            example("kubelet-renewal-csr.yaml"),
            example("kubelet-serving-csr.yaml"),
            example("hostile-csrs.yaml"),
        ];
        let argv: Vec<&str> = files.iter().map(String::as_str).collect();
        let (reports, o) = json_reports(&argv, b"");
        assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
        assert!(o.err.is_empty(), "{}", o.err);
        let summary: Vec<(String, String, String, Value)> = reports
            .iter()
            .map(|r| {
                for key in [
                    "name",
                    "signerName",
                    "class",
                    "verdict",
                    "subjectAccessReviews",
                    "violations",
                ] {
                    assert!(r.get(key).is_some(), "{key} missing in {r}");
                }
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["class"].as_str().unwrap().to_owned(),
                    r["verdict"].as_str().unwrap().to_owned(),
                    r["subjectAccessReviews"].clone(),
                )
            })
            .collect();
        let expected = [
            (
                "node-csr-Hn2V7kq3XoM1c8bJwZr5tLx0YdPfQaGuE4sR9vKiN6w",
                "kubelet-client",
                "authorize",
                json!(["nodeclient"]),
            ),
            (
                "csr-7xk2p",
                "kubelet-client",
                "authorize",
                json!(["selfnodeclient", "nodeclient"]),
            ),
            ("csr-9dq4m", "kubelet-serving", "manual", json!([])),
            ("csr-escalate", "kubelet-client", "reject", json!([])),
            // Serving CSRs go to a person even when checks fail; the violations stay listed.
            (
                "csr-impersonate-apiserver",
                "kubelet-serving",
                "manual",
                json!([]),
            ),
            ("csr-garbage", "kubelet-client", "reject", json!([])),
        ];
        let expected: Vec<(String, String, String, Value)> = expected
            .into_iter()
            .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d))
            .collect();
        assert_eq!(summary, expected);
        assert_eq!(
            reports[3]["violations"],
            json!([
                policy::upstream::ORGANIZATION_NOT_SYSTEM_NODES,
                policy::upstream::DNS_SAN_NOT_ALLOWED
            ])
        );
        assert!(
            reports[4]["violations"][0]
                .as_str()
                .unwrap()
                .contains("names the Kubernetes API server")
        );
        assert!(
            reports[5]["violations"][0]
                .as_str()
                .unwrap()
                .starts_with(policy::upstream::PEM_BLOCK_TYPE_MUST_BE_CSR)
        );
        assert_eq!(
            reports[0]["request"]["subject"],
            "O=system:nodes, CN=system:node:worker-1"
        );
        assert_eq!(reports[0]["signerName"], SIGNER_KUBELET_CLIENT);
    }

    #[test]
    fn human_output_shows_content_checks_and_verdict() {
        let o = inspect(
            &[
                &example("kubelet-bootstrap-csr.yaml"),
                &example("hostile-csrs.yaml"),
            ],
            b"",
        );
        assert_eq!(o.code, ExitCode::SUCCESS);
        let text = o.out;
        for needle in [
            "node-csr-Hn2V7kq3XoM1c8bJwZr5tLx0YdPfQaGuE4sR9vKiN6w  (",
            "  signer:      kubernetes.io/kube-apiserver-client-kubelet (kubelet-client)",
            "  requester:   system:bootstrap:abcdef",
            "  usages:      digital signature, key encipherment, client auth",
            "  subject:     O=system:nodes, CN=system:node:worker-1",
            "  SANs:        none",
            "  key:         ECDSA P-256, signed ECDSA-SHA256",
            "    pass  signature",
            "    pass  usages",
            "  verdict:     authorize (content is valid; approve if a SubjectAccessReview allows nodeclient)",
            "    FAIL  organization: subject organization is not system:nodes",
            "    FAIL  no-dns-sans: DNS subjectAltNames are not allowed",
            "  SANs:        DNS:worker-1, DNS:kubernetes.default.svc.cluster.local, IP:127.0.0.1",
            "  verdict:     reject (2 violations)",
            "  verdict:     reject (1 violation)",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let renewal = inspect(&[&example("kubelet-renewal-csr.yaml")], b"").out;
        assert!(
            renewal.contains("allows selfnodeclient, then nodeclient"),
            "{renewal}"
        );
        let serving = inspect(&[&example("kubelet-serving-csr.yaml")], b"").out;
        assert!(serving.contains("  verdict:     manual ("), "{serving}");
        assert!(
            serving.contains("  SANs:        DNS:worker-1, IP:10.0.0.11"),
            "{serving}"
        );
    }

    #[test]
    fn json_single_object_multi_document_yaml_and_stdin() {
        let yaml = std::fs::read_to_string(example("kubelet-renewal-csr.yaml")).unwrap();
        let value: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let json_file = write_temp(serde_json::to_string(&value).unwrap().as_bytes());
        let (r, o) = json_reports(&[json_file.path().to_str().unwrap()], b"");
        assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["verdict"], "authorize");

        let serving = std::fs::read_to_string(example("kubelet-serving-csr.yaml")).unwrap();
        let multi = format!("---\n{yaml}---\n{serving}---\n");
        let (r, o) = json_reports(&["-"], multi.as_bytes());
        assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
        let verdicts: Vec<&str> = r.iter().map(|x| x["verdict"].as_str().unwrap()).collect();
        assert_eq!(verdicts, ["authorize", "manual"]);
        assert_eq!(r[0]["source"], "<stdin>");

        // A JSON List, as `kubectl get csr -o json` prints it.
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [value.clone(), value]});
        let (r, _) = json_reports(&["-"], list.to_string().as_bytes());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn raw_pem_files_take_the_spec_from_flags() {
        let pem = p256_csr_pem("system:node:worker-1", vec![]);
        let file = write_temp(pem.as_bytes());
        let path = file.path().to_str().unwrap();
        let (r, o) = json_reports(&[path], b"");
        assert_eq!(o.code, ExitCode::SUCCESS);
        assert_eq!(r[0]["signerName"], SIGNER_KUBELET_CLIENT);
        assert_eq!(r[0]["usages"], json!(KUBELET_BOOTSTRAP_USAGES));
        assert_eq!(r[0]["verdict"], "authorize");
        assert_eq!(r[0]["subjectAccessReviews"], json!(["nodeclient"]));

        let (r, _) = json_reports(
            &[
                path,
                "--username",
                "system:node:worker-1",
                "--groups",
                "system:nodes,system:authenticated",
                "--usages",
                "digital signature, client auth",
            ],
            b"",
        );
        assert_eq!(
            r[0]["subjectAccessReviews"],
            json!(["selfnodeclient", "nodeclient"])
        );
        assert_eq!(
            r[0]["groups"],
            json!(["system:nodes", "system:authenticated"])
        );

        let (r, _) = json_reports(
            &[path, "--signer-name", policy::SIGNER_KUBELET_SERVING],
            b"",
        );
        assert_eq!(r[0]["class"], "kubelet-serving");
        // A client request sent to the serving signer fails its checks but is still a person's
        // call; the failures are listed for them.
        assert_eq!(r[0]["verdict"], "manual");
        assert!(
            r[0]["violations"]
                .as_array()
                .is_some_and(|v| v.contains(&json!(
                    policy::upstream::SERVING_USAGES_DID_NOT_MATCH
                ))),
            "{}",
            r[0]
        );

        let (r, _) = json_reports(&[path, "--signer-name", "example.com/other"], b"");
        assert_eq!(r[0]["verdict"], "ignore");
        // Ignored requests are still decoded for the reader.
        assert_eq!(
            r[0]["request"]["commonNames"],
            json!(["system:node:worker-1"])
        );
    }

    #[test]
    fn garbage_requests_are_rejected_and_the_rest_still_processed() {
        let mut big = vec![0u8; 3 * 1024 * 1024];
        for (i, b) in big.iter_mut().enumerate() {
            *b = (i * 7919 % 251) as u8;
        }
        let good = p256_csr_pem("system:node:worker-1", vec![]).into_bytes();
        let mut bad_b64 = serde_json::to_value(csr_object("csr-bad-base64", vec![])).unwrap();
        bad_b64["spec"]["request"] = json!("not base64!");
        let list = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                serde_json::to_value(csr_object("csr-huge", big)).unwrap(),
                bad_b64,
                serde_json::to_value(csr_object("csr-good", good)).unwrap(),
            ],
        });
        let file = write_temp(list.to_string().as_bytes());
        let (r, o) = json_reports(&[file.path().to_str().unwrap()], b"");
        assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0]["verdict"], "reject");
        assert_eq!(
            r[0]["violations"],
            json!(["request is 3145728 bytes, more than the 65536-byte limit"])
        );
        assert_eq!(r[1]["verdict"], "reject");
        assert_eq!(
            r[1]["violations"],
            json!(["spec.request is not valid base64: invalid character at offset 10"])
        );
        assert_eq!(r[2]["verdict"], "authorize");
    }

    #[test]
    fn unreadable_files_are_named_on_stderr_and_fail_the_run() {
        let garbage = write_temp(b"\x00\x01 this is: [not, a csr");
        let pod = write_temp(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n");
        let scalar = write_temp(b"just some words\n");
        let empty = write_temp(b"");
        let beta = write_temp(
            std::fs::read_to_string(example("kubelet-renewal-csr.yaml"))
                .unwrap()
                .replace("certificates.k8s.io/v1", "certificates.k8s.io/v1beta1")
                .as_bytes(),
        );
        let paths = [
            garbage.path().to_str().unwrap(),
            pod.path().to_str().unwrap(),
            "/nonexistent/csr.yaml",
            &example("kubelet-renewal-csr.yaml"),
            scalar.path().to_str().unwrap(),
            empty.path().to_str().unwrap(),
            beta.path().to_str().unwrap(),
        ];
        let (r, o) = json_reports(&paths, b"");
        assert_eq!(o.code, ExitCode::FAILURE);
        assert_eq!(r.len(), 1, "the good file is still reported");
        assert_eq!(r[0]["verdict"], "authorize");
        let lines: Vec<&str> = o.err.lines().collect();
        assert_eq!(lines.len(), 6, "{}", o.err);
        for (line, (path, reason)) in lines.iter().zip([
            (paths[0], "neither a CertificateSigningRequest object"),
            (paths[1], "not a CertificateSigningRequest (kind \"Pod\")"),
            (paths[2], "No such file"),
            (paths[4], "plain value"),
            (paths[5], "file is empty"),
            (
                paths[6],
                "not a valid certificates.k8s.io/v1 CertificateSigningRequest",
            ),
        ]) {
            assert!(line.starts_with(&format!("error: {path}: ")), "{line}");
            assert!(line.contains(reason), "{line}");
        }
    }

    #[test]
    fn pem_after_other_text_is_judged_not_refused() {
        let pem = p256_csr_pem("system:node:worker-1", vec![]);
        let text = format!("Certificate Request:\n    Data:\n        Version: 1 (0x0)\n{pem}");
        let file = write_temp(text.as_bytes());
        let (r, o) = json_reports(&[file.path().to_str().unwrap()], b"");
        assert_eq!(o.code, ExitCode::SUCCESS, "{}", o.err);
        assert_eq!(r[0]["verdict"], "reject");
        assert_eq!(
            r[0]["violations"],
            json!(["unexpected data before the CERTIFICATE REQUEST PEM block"])
        );
    }

    #[test]
    fn decided_csrs_are_ignored_but_still_decoded() {
        let mut csr = csr_object(
            "csr-done",
            p256_csr_pem("system:node:worker-1", vec![]).into_bytes(),
        );
        csr.status = Some(policy::test_status(&[("Approved", "True")], None));
        let file = write_temp(serde_json::to_string(&csr).unwrap().as_bytes());
        let (r, _) = json_reports(&[file.path().to_str().unwrap()], b"");
        assert_eq!(r[0]["verdict"], "ignore");
        assert_eq!(r[0]["ignoreReason"], "already has an Approved condition");
        assert_eq!(r[0]["request"]["organizations"], json!(["system:nodes"]));
        let human = inspect(&[file.path().to_str().unwrap()], b"").out;
        assert!(
            human.contains("  verdict:     ignore (already has an Approved condition)"),
            "{human}"
        );
    }

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        let evil = "system:node:\u{1b}[2J\u{1b}[32mworker-1\u{202e}";
        let csr = csr_object(
            "csr-\u{1b}[31mred",
            p256_csr_pem(
                evil,
                vec![rcgen::SanType::DnsName("a\u{7}b".try_into().unwrap())],
            )
            .into_bytes(),
        );
        let file = write_temp(serde_json::to_string(&csr).unwrap().as_bytes());
        let o = inspect(&[file.path().to_str().unwrap()], b"");
        assert!(
            !o.out.contains('\u{1b}') && !o.out.contains('\u{7}') && !o.out.contains('\u{202e}'),
            "{:?}",
            o.out
        );
        assert!(o.out.contains("\\u{1b}[2J"), "{}", o.out);
        assert!(o.out.contains("  verdict:     reject"), "{}", o.out);
        // JSON escapes control characters itself.
        let (r, o) = json_reports(&[file.path().to_str().unwrap()], b"");
        assert!(!o.out.contains('\u{1b}'));
        assert_eq!(r[0]["request"]["commonNames"][0], evil);
    }

    #[test]
    fn yaml_output_is_a_sequence() {
        let o = inspect(&["-o", "yaml", &example("kubelet-renewal-csr.yaml")], b"");
        let v: Value = serde_yaml_ng::from_str(&o.out).unwrap();
        assert_eq!(v[0]["verdict"], "authorize");
        assert_eq!(
            v[0]["subjectAccessReviews"],
            json!(["selfnodeclient", "nodeclient"])
        );
    }
}
