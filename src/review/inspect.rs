//! `tlsboot inspect TARGET...`: one subcommand for files (offline, [`super::inspect_file`]) and
//! CSRs in the cluster (online, here). Each argument is decided on its own: `-`, an existing
//! path, or anything that cannot be a CSR name (it holds `/` or `%`, or is `.`/`..`: the API's
//! path-segment rule for CSR names) is a file; any other argument is a CSR name.
//! `--file` forces file mode for all of them (for a file whose name looks like a CSR name but
//! does not exist yet, or to make sure nothing is sent to a cluster).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::Serialize;

use super::assess::{Assessment, assess};
use super::error::{ReviewError, exit_code};
use super::format::{condition_column, terminal_safe, translate_timestamp_since};
use super::inspect_file::{InspectFileArgs, OutputFormat};
use super::render::{gc_info, inspect_view};
use super::session::Session;
use crate::cluster::Connection;

#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("files", |a| a
    .value_name("FILE|NAME")
    .help(
        "CSR files (YAML/JSON objects, a List, `kubectl get csr -o yaml` output, or raw PEM; \
         `-` reads stdin) or names of CSRs in the cluster. An existing path, `-`, or anything \
         with `/` is a file; any other argument is a CSR name (see --file)"
    )))]
pub struct InspectArgs {
    #[command(flatten)]
    pub target: InspectFileArgs,

    /// Treat every argument as a file; never look anything up in a cluster.
    #[arg(short = 'f', long = "file")]
    pub force_file: bool,
}

/// What one argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    CsrName(String),
}

/// The per-argument rule (see the module docs). `exists` is injected so the rule is testable.
pub fn classify(arg: &Path, force_file: bool, exists: impl Fn(&Path) -> bool) -> Target {
    let s = arg.to_string_lossy();
    // CSR names follow the path-segment rule, not DNS-1123: `node-csr-<base64url>` is valid.
    let cannot_be_a_name = s.is_empty() || s == "." || s == ".." || s.contains(['/', '%']);
    if force_file || s == "-" || exists(arg) || cannot_be_a_name {
        Target::File(arg.to_path_buf())
    } else {
        Target::CsrName(s.into_owned())
    }
}

impl InspectArgs {
    pub fn targets(&self) -> Vec<Target> {
        self.target
            .files
            .iter()
            .map(|f| classify(f, self.force_file, |p| p.exists()))
            .collect()
    }

    /// Whether any argument is a CSR name (so `main` knows to start the async runtime).
    pub fn needs_cluster(&self) -> bool {
        self.targets()
            .iter()
            .any(|t| matches!(t, Target::CsrName(_)))
    }
}

/// Offline only: every argument is a file.
pub fn run_offline(args: &InspectArgs) -> Result<ExitCode, ReviewError> {
    Ok(super::inspect_file::run(&args.target)?)
}

/// Files and CSR names, in argument order (consecutive files are passed to the file inspector
/// together, so their `-o json` array stays one array per run of files).
pub async fn run(conn: &Connection, args: &InspectArgs) -> Result<ExitCode, ReviewError> {
    // A mistyped file name is otherwise only answered with a cluster error ("no kubeconfig
    // found", "not found") that does not say the file was never read.
    let notes: Vec<String> = args
        .targets()
        .into_iter()
        .filter_map(|target| match target {
            Target::CsrName(name) if looks_like_a_file_name(&name) => Some(format!(
                "note: there is no file {}: it was looked up as a CSR name (--file reads \
                 arguments as files only)",
                terminal_safe(&format!("{name:?}"))
            )),
            _ => None,
        })
        .collect();
    match inspect(conn, args).await {
        Ok(code) => {
            if code != ExitCode::SUCCESS {
                for note in &notes {
                    eprintln!("{note}");
                }
            }
            Ok(code)
        }
        Err(error) if notes.is_empty() => Err(error),
        Err(error) => Err(ReviewError::Noted {
            error: Box::new(error),
            notes,
        }),
    }
}

/// CSR names the kubelet and kubectl make never contain a dot; file names usually do.
fn looks_like_a_file_name(arg: &str) -> bool {
    arg.contains('.')
}

/// One element of `-o json|yaml` for a CSR read from the cluster.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineReport<'a> {
    #[serde(flatten)]
    pub assessment: &'a Assessment,
    pub condition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
    /// When upstream's csrcleaner deletes it (RFC 3339), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garbage_collected_at: Option<String>,
    pub garbage_collection_rule: &'static str,
}

async fn inspect(conn: &Connection, args: &InspectArgs) -> Result<ExitCode, ReviewError> {
    let targets = args.targets();
    let mut failed = false;
    let mut session: Option<Session> = None;
    let mut printed = 0usize;
    let mut i = 0;
    while i < targets.len() {
        match &targets[i] {
            Target::File(_) => {
                let mut files = Vec::new();
                while let Some(Target::File(f)) = targets.get(i) {
                    files.push(f.clone());
                    i += 1;
                }
                let mut sub = args.target.clone();
                sub.files = files;
                if printed > 0 && args.target.output == OutputFormat::Text {
                    println!();
                }
                if super::inspect_file::run(&sub)? != ExitCode::SUCCESS {
                    failed = true;
                }
                printed += 1;
            }
            Target::CsrName(_) => {
                let mut names = Vec::new();
                while let Some(Target::CsrName(n)) = targets.get(i) {
                    names.push(n.clone());
                    i += 1;
                }
                let s = match &session {
                    Some(s) => s.clone(),
                    None => {
                        let s = Session::connect(conn).await?;
                        session = Some(s.clone());
                        s
                    }
                };
                if !online(&s, &names, args.target.output, &mut printed).await? {
                    failed = true;
                }
            }
        }
    }
    Ok(exit_code(failed))
}

/// Fetches, assesses and prints `names`; `false` when any could not be shown.
async fn online(
    session: &Session,
    names: &[String],
    output: OutputFormat,
    printed: &mut usize,
) -> Result<bool, ReviewError> {
    let (csrs, ok) = session.get_csrs(names).await?;
    if csrs.is_empty() {
        return Ok(ok);
    }
    let facts = session.cluster_facts(&csrs).await?;
    let now = jiff::Timestamp::now();
    let assessed: Vec<(CertificateSigningRequest, Assessment)> = csrs
        .into_iter()
        .map(|c| {
            let a = assess(&c, &facts);
            (c, a)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    match output {
        OutputFormat::Text => {
            for (c, a) in &assessed {
                if *printed > 0 {
                    writeln!(out)?;
                }
                out.write_all(terminal_safe(&inspect_view(c, a, now)).as_bytes())?;
                *printed += 1;
            }
        }
        OutputFormat::Json | OutputFormat::Yaml => {
            let reports: Vec<OnlineReport<'_>> = assessed
                .iter()
                .map(|(c, a)| {
                    let gc = gc_info(c);
                    OnlineReport {
                        assessment: a,
                        condition: condition_column(c),
                        age: c
                            .metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|t| translate_timestamp_since(Some(t), now)),
                        garbage_collected_at: gc.deadline.map(|d| d.to_string()),
                        garbage_collection_rule: gc.rule,
                    }
                })
                .collect();
            if output == OutputFormat::Json {
                // Encoded first, so a closed pipe is an io error (handled) not an encoding one.
                writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
            } else {
                out.write_all(serde_yaml_ng::to_string(&reports)?.as_bytes())?;
            }
            *printed += 1;
        }
    }
    out.flush()?;
    Ok(ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_files_or_names_one_by_one() {
        let exists = |p: &Path| p == Path::new("csr-on-disk") || p == Path::new("a.yaml");
        let c = |s: &str, force| classify(Path::new(s), force, exists);
        assert_eq!(c("-", false), Target::File("-".into()));
        assert_eq!(c("a.yaml", false), Target::File("a.yaml".into()));
        // An existing file wins over the CSR of the same name.
        assert_eq!(c("csr-on-disk", false), Target::File("csr-on-disk".into()));
        assert_eq!(c("csr-abc12", false), Target::CsrName("csr-abc12".into()));
        // The kubelet's bootstrap CSR names are base64url: upper case and `_` are fine.
        assert_eq!(
            c("node-csr-Xy_z-Q", false),
            Target::CsrName("node-csr-Xy_z-Q".into())
        );
        assert_eq!(c("..", false), Target::File("..".into()));
        assert_eq!(
            c("dir/missing.pem", false),
            Target::File("dir/missing.pem".into())
        );
        assert_eq!(c("csr-abc12", true), Target::File("csr-abc12".into()));
    }
}
