//! `tlsboot list`: the review queue, as a kubectl-style table with the checks' verdict.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::runtime::{WatchStreamExt as _, watcher};

use super::assess::{Assessment, ClusterFacts, NodeLookup, assess};
use super::error::ReviewError;
use super::format::{
    Table, condition_column, for_output, human_duration_secs, resource_name, terminal_safe,
    translate_timestamp_since,
};
use super::session::Session;
use crate::cluster::csr_status::awaits_decision;
use crate::cluster::{ApiError, Connection, watch_error_text};
use crate::policy::{SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListOutput {
    /// More columns: REQUESTEDDURATION, KEY, USAGES, FAILEDCHECKS.
    Wide,
    /// A kubectl-style `List` of the CSR objects.
    Json,
    Yaml,
    /// `certificatesigningrequest.certificates.k8s.io/NAME` per line.
    Name,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Include decided CSRs (Approved or Denied), not only pending ones.
    #[arg(long)]
    pub all: bool,

    /// Only CSRs of this signer; repeatable. `kubelet-serving` and `kubelet-client` are short
    /// for the two kubelet signers. Default: both kubelet signers.
    #[arg(long = "signer", value_name = "SIGNER")]
    pub signers: Vec<String>,

    /// Output format (default: a table).
    #[arg(short, long, value_enum)]
    pub output: Option<ListOutput>,

    /// After listing, keep printing CSRs as they are created or change.
    #[arg(short, long)]
    pub watch: bool,

    /// Leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
}

/// `kubelet-serving` → `kubernetes.io/kubelet-serving`, etc.; anything else is taken verbatim.
pub fn resolve_signer(s: &str) -> String {
    match s {
        "kubelet-serving" => SIGNER_KUBELET_SERVING.to_owned(),
        "kubelet-client" | "kube-apiserver-client-kubelet" => SIGNER_KUBELET_CLIENT.to_owned(),
        other => other.to_owned(),
    }
}

pub fn resolve_signers(list: &[String]) -> Vec<String> {
    if list.is_empty() {
        return vec![
            SIGNER_KUBELET_SERVING.to_owned(),
            SIGNER_KUBELET_CLIENT.to_owned(),
        ];
    }
    let mut out: Vec<String> = list.iter().map(|s| resolve_signer(s)).collect();
    out.dedup();
    out
}

/// Oldest first (the queue's order), then by name.
pub fn sort_queue(csrs: &mut [CertificateSigningRequest]) {
    csrs.sort_by(|a, b| {
        let ka = (&a.metadata.creation_timestamp, &a.metadata.name);
        let kb = (&b.metadata.creation_timestamp, &b.metadata.name);
        ka.cmp(&kb)
    });
}

pub fn header(wide: bool) -> Vec<String> {
    let mut h: Vec<String> = [
        "NAME",
        "AGE",
        "SIGNERNAME",
        "REQUESTOR",
        "NODE",
        "SANS",
        "CHECKS",
        "CONDITION",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if wide {
        h.extend(
            ["REQUESTEDDURATION", "KEY", "USAGES", "FAILEDCHECKS"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
    }
    h
}

/// One table row. `age` is separate so `--watch` can tell a real change from time passing.
pub fn row(
    csr: &CertificateSigningRequest,
    a: &Assessment,
    age: String,
    wide: bool,
) -> Vec<String> {
    let none = || "<none>".to_owned();
    let mut r = vec![
        a.name.clone(),
        age,
        if a.signer_name.is_empty() {
            none()
        } else {
            a.signer_name.clone()
        },
        a.requestor.clone(),
        a.node_name.clone().unwrap_or_else(none),
        a.sans_column(),
        a.checks_summary(),
        condition_column(csr),
    ];
    if wide {
        // Unknown checks block approval too: listed with a marker.
        let failed: Vec<String> = a
            .failed()
            .map(|c| c.name.to_owned())
            .chain(a.unknown().map(|c| format!("{}(unknown)", c.name)))
            .collect();
        r.push(
            csr.spec
                .expiration_seconds
                .map(|s| human_duration_secs(i64::from(s)))
                .unwrap_or_else(none),
        );
        r.push(
            a.decision
                .parsed
                .as_ref()
                .map(|p| p.public_key.to_string().replace(' ', "-"))
                .unwrap_or_else(|| "<malformed>".into()),
        );
        r.push(
            csr.spec
                .usages
                .as_ref()
                .filter(|u| !u.is_empty())
                .map(|u| u.join(","))
                .unwrap_or_else(none),
        );
        r.push(if failed.is_empty() {
            none()
        } else {
            failed.join(",")
        });
    }
    r
}

/// JSON the way kubectl prints it (4-space indent).
pub fn to_json_pretty(v: &impl serde::Serialize) -> Result<String, ReviewError> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    String::from_utf8(buf).map_err(|e| ReviewError::Encode(e.to_string()))
}

fn list_object(csrs: &[CertificateSigningRequest]) -> serde_json::Value {
    let items: Vec<CertificateSigningRequest> = csrs.iter().map(for_output).collect();
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": { "resourceVersion": "" }
    })
}

/// `--watch` prints this on stderr once its watch is established: every CSR created or changed
/// afterwards is printed. Scripts can wait for it before they act.
pub const WATCHING: &str = "Watching for changes (Ctrl-C to stop)...";

pub async fn run(conn: &Connection, args: &ListArgs) -> Result<ExitCode, ReviewError> {
    list(conn, args).await
}

async fn list(conn: &Connection, args: &ListArgs) -> Result<ExitCode, ReviewError> {
    let session = Session::connect(conn).await?;
    let signers = resolve_signers(&args.signers);
    let mut csrs = session.list_csrs(&signers).await?;
    if !args.all {
        csrs.retain(awaits_decision);
    }
    sort_queue(&mut csrs);
    let mut facts = session.cluster_facts(&csrs).await?;
    let now = jiff::Timestamp::now();
    let wide = args.output == Some(ListOutput::Wide);
    let mut out = std::io::stdout().lock();

    let mut table = Table::default();
    let mut printed = Printed::default();
    match args.output {
        None | Some(ListOutput::Wide) => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            if !args.no_headers {
                rows.push(header(wide));
            }
            for c in &csrs {
                let a = assess(c, &facts);
                let age = translate_timestamp_since(c.metadata.creation_timestamp.as_ref(), now);
                let r = row(c, &a, age, wide);
                printed.record(c, shown_key(args.output, c, &r));
                rows.push(r);
            }
            table = Table::fit(&rows);
            if csrs.is_empty() && !args.watch {
                eprintln!("No resources found");
            } else if !csrs.is_empty() || !args.no_headers {
                out.write_all(terminal_safe(&table.render(&rows)).as_bytes())?;
            }
        }
        Some(ListOutput::Name) => {
            for c in &csrs {
                let name = c.metadata.name.clone().unwrap_or_default();
                writeln!(out, "{}", terminal_safe(&resource_name(&name)))?;
                printed.record(c, shown_key(args.output, c, &[]));
            }
        }
        Some(ListOutput::Json) | Some(ListOutput::Yaml) => {
            let list = list_object(&csrs);
            if args.output == Some(ListOutput::Json) {
                writeln!(out, "{}", to_json_pretty(&list)?)?;
            } else {
                out.write_all(serde_yaml_ng::to_string(&list)?.as_bytes())?;
            }
            for c in &csrs {
                printed.record(c, shown_key(args.output, c, &[]));
            }
        }
    }
    out.flush()?;
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    drop(out);
    watch(&session, args, &signers, &mut facts, &mut table, printed).await
}

/// What `--watch` compares to decide whether a CSR it is told about again (the watch's initial
/// list repeats every CSR already listed; a relist after an interrupted watch repeats them all)
/// shows anything new. Per output: the table row without AGE (the only cell that changes by
/// itself); the object's resourceVersion for JSON/YAML (they print the whole object); nothing
/// for `-o name`, whose line never changes, so each name is printed once.
fn shown_key(
    output: Option<ListOutput>,
    csr: &CertificateSigningRequest,
    row: &[String],
) -> Vec<String> {
    match output {
        None | Some(ListOutput::Wide) => without_age(row),
        Some(ListOutput::Json) | Some(ListOutput::Yaml) => {
            vec![csr.metadata.resource_version.clone().unwrap_or_default()]
        }
        Some(ListOutput::Name) => Vec::new(),
    }
}

/// The CSRs printed so far, each with the key of its last printed form.
#[derive(Debug, Default)]
struct Printed(HashMap<String, Vec<String>>);

impl Printed {
    fn record(&mut self, csr: &CertificateSigningRequest, key: Vec<String>) {
        self.0
            .insert(csr.metadata.name.clone().unwrap_or_default(), key);
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Whether `key` is what was last printed for `name` (printing it again would repeat it).
    fn is_unchanged(&self, name: &str, key: &[String]) -> bool {
        self.0.get(name).is_some_and(|k| k == key)
    }
}

fn without_age(r: &[String]) -> Vec<String> {
    r.iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, c)| c.clone())
        .collect()
}

async fn watch(
    session: &Session,
    args: &ListArgs,
    signers: &[String],
    facts: &mut ClusterFacts,
    table: &mut Table,
    mut printed: Printed,
) -> Result<ExitCode, ReviewError> {
    let wide = args.output == Some(ListOutput::Wide);
    let mut cfg = watcher::Config::default();
    if let [only] = signers {
        cfg = cfg.fields(&format!("spec.signerName={only}"));
    }
    let mut stream = watcher(session.csrs(), cfg).default_backoff().boxed();
    let mut announced = false;
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(ExitCode::SUCCESS),
            Err(
                watcher::Error::WatchFailed(e)
                | watcher::Error::WatchStartFailed(e)
                | watcher::Error::InitialListFailed(e),
            ) if ApiError::of(&e).is(403) => {
                return Err(ReviewError::Forbidden(format!(
                    "forbidden: cannot watch certificate signing requests: needs `watch` on \
                     `certificatesigningrequests` (API group certificates.k8s.io)\nserver said: {}",
                    ApiError::of(&e)
                )));
            }
            Err(e) => {
                // The watcher backs off and resumes by itself; say so once per failure.
                eprintln!(
                    "warning: watch interrupted, retrying: {}",
                    watch_error_text(&e)
                );
                continue;
            }
        };
        let csr = match event {
            watcher::Event::Apply(c) | watcher::Event::InitApply(c) => c,
            watcher::Event::InitDone if !announced => {
                // From here on every change reaches us: the watch resumes at the list's
                // resourceVersion. Said once, on stderr, so that stdout stays pure data.
                announced = true;
                eprintln!("{WATCHING}");
                continue;
            }
            _ => continue,
        };
        if !signers.contains(&csr.spec.signer_name) {
            continue;
        }
        let name = csr.metadata.name.clone().unwrap_or_default();
        if !(args.all || awaits_decision(&csr) || printed.contains(&name)) {
            continue;
        }
        // A client CSR from a requester not seen yet: its SubjectAccessReviews.
        session.ask_sars(facts, std::slice::from_ref(&csr)).await;
        let mut a = assess(&csr, facts);
        // A node that registered after our first read: look it up once more.
        if let Some(node) = a.node_name.clone()
            && a.node_status.as_deref() == Some("not-found")
        {
            let lookup = session.lookup_node(&node).await?;
            if matches!(lookup, NodeLookup::Found(_)) {
                facts.node.insert(node, lookup);
                a = assess(&csr, facts);
            }
        }
        let age = translate_timestamp_since(
            csr.metadata.creation_timestamp.as_ref(),
            jiff::Timestamp::now(),
        );
        let r = row(&csr, &a, age, wide);
        let key = shown_key(args.output, &csr, &r);
        if printed.is_unchanged(&name, &key) {
            continue;
        }
        let mut out = std::io::stdout().lock();
        match args.output {
            None | Some(ListOutput::Wide) => {
                out.write_all(terminal_safe(&table.line(&r)).as_bytes())?
            }
            Some(ListOutput::Name) => writeln!(out, "{}", terminal_safe(&resource_name(&name)))?,
            Some(ListOutput::Json) => writeln!(out, "{}", to_json_pretty(&for_output(&csr))?)?,
            Some(ListOutput::Yaml) => {
                writeln!(out, "---")?;
                out.write_all(serde_yaml_ng::to_string(&for_output(&csr))?.as_bytes())?;
            }
        }
        out.flush()?;
        printed.record(&csr, key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::review::assess::tests::node_facts;
    use crate::review::assess::tests::serving_csr;

    #[test]
    fn signers_resolve_aliases_and_default_to_both_kubelet_signers() {
        assert_eq!(
            resolve_signers(&[]),
            vec![
                "kubernetes.io/kubelet-serving".to_string(),
                "kubernetes.io/kube-apiserver-client-kubelet".to_string()
            ]
        );
        assert_eq!(
            resolve_signers(&["kubelet-serving".into(), "example.com/x".into()]),
            vec![
                "kubernetes.io/kubelet-serving".to_string(),
                "example.com/x".to_string()
            ]
        );
    }

    #[test]
    fn rows_show_node_sans_checks_and_condition() {
        let csr = serving_csr("csr-a", "system:node:n1", "n1", &["n1", "10.1.0.7"]);
        let facts = node_facts(&[("n1", &[("InternalIP", "10.1.0.7")])]);
        let a = assess(&csr, &facts);
        // DNS:n1 is not reported by the Node (no Hostname address): one failed check.
        let r = row(&csr, &a, "3m".into(), false);
        assert_eq!(
            r,
            vec![
                "csr-a",
                "3m",
                "kubernetes.io/kubelet-serving",
                "system:node:n1",
                "n1",
                "n1,10.1.0.7",
                "1 failed",
                "Pending"
            ]
        );
        let w = row(&csr, &a, "3m".into(), true);
        assert_eq!(
            &w[8..],
            &[
                "<none>",
                "ECDSA-P-256",
                "digital signature,server auth",
                "sans-on-node"
            ]
        );
        assert_eq!(header(true).len(), w.len());
        assert_eq!(without_age(&r).len(), r.len() - 1);
    }

    #[test]
    fn queue_is_oldest_first() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let mut a = serving_csr("b-new", "system:node:n1", "n1", &["n1"]);
        a.metadata.creation_timestamp = Some(Time("2026-01-01T00:10:00Z".parse().unwrap()));
        let mut b = serving_csr("z-old", "system:node:n1", "n1", &["n1"]);
        b.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        let mut v = vec![a, b];
        sort_queue(&mut v);
        assert_eq!(v[0].metadata.name.as_deref(), Some("z-old"));
    }

    /// The list records a CSR without a row for `-o name|json|yaml` (it builds none); the watch,
    /// told about the same CSR again, computes its key from a row. Both must agree, or every
    /// listed CSR is printed a second time when the watch starts.
    #[test]
    fn the_watch_recognises_what_the_list_printed() {
        let mut csr = serving_csr("csr-a", "system:node:n1", "n1", &["n1"]);
        csr.metadata.resource_version = Some("41".into());
        let a = assess(&csr, &ClusterFacts::default());
        let listed_row = row(&csr, &a, "3m".into(), true);
        let watched_row = row(&csr, &a, "4m".into(), true);
        for output in [
            None,
            Some(ListOutput::Wide),
            Some(ListOutput::Name),
            Some(ListOutput::Json),
            Some(ListOutput::Yaml),
        ] {
            let mut printed = Printed::default();
            let listed = match output {
                None | Some(ListOutput::Wide) => listed_row.as_slice(),
                _ => &[],
            };
            printed.record(&csr, shown_key(output, &csr, listed));
            assert!(
                printed.is_unchanged("csr-a", &shown_key(output, &csr, &watched_row)),
                "{output:?}: the watch would print csr-a again"
            );
        }
        // A change that shows is printed again, except under -o name (its line is the same).
        let mut approved = csr.clone();
        approved.metadata.resource_version = Some("42".into());
        approved.status = Some(crate::policy::test_status(&[("Approved", "True")], None));
        let approved_row = row(
            &approved,
            &assess(&approved, &ClusterFacts::default()),
            "5m".into(),
            true,
        );
        for (output, again) in [
            (None, true),
            (Some(ListOutput::Json), true),
            (Some(ListOutput::Name), false),
        ] {
            let mut printed = Printed::default();
            printed.record(&csr, shown_key(output, &csr, &listed_row));
            assert_eq!(
                !printed.is_unchanged("csr-a", &shown_key(output, &approved, &approved_row)),
                again,
                "{output:?}"
            );
        }
    }

    #[test]
    fn json_uses_kubectls_indent() {
        let s = to_json_pretty(&serde_json::json!({"a": {"b": 1}})).unwrap();
        assert_eq!(s, "{\n    \"a\": {\n        \"b\": 1\n    }\n}");
    }
}
