//! The human inspect view of one CSR (used by `inspect NAME` and by `review` before each
//! question). Pure: the CSR, its [`Assessment`] and the clock in, text out.

use std::fmt::Write as _;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::assess::{Assessment, CheckStatus, ReviewCheck};
use super::format::{
    condition_column, human_duration_nanos, human_duration_secs, translate_timestamp_since,
};
use crate::cluster::csr_status::{is_approved, is_issued};
use crate::policy::SanMatch;

/// Upstream csrcleaner's limits (`pkg/controller/certificates/cleaner/cleaner.go`).
const PENDING_EXPIRATION_SECS: i64 = 24 * 3600;
const DECIDED_EXPIRATION_SECS: i64 = 3600;

/// When upstream's csrcleaner will delete this CSR, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcInfo {
    pub deadline: Option<jiff::Timestamp>,
    pub rule: &'static str,
}

fn condition_time(csr: &CertificateSigningRequest, type_: &str) -> Option<jiff::Timestamp> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .and_then(|c| c.last_update_time.as_ref())
        .map(|t| t.0)
}

fn plus_secs(t: jiff::Timestamp, secs: i64) -> Option<jiff::Timestamp> {
    t.checked_add(jiff::SignedDuration::from_secs(secs)).ok()
}

/// Mirrors the cleaner's rules: zero conditions → 24 h after creation; Denied or Failed → 1 h
/// after that condition's lastUpdateTime; Approved with a certificate → 1 h after approval;
/// Approved, not issued, not failed → never.
pub fn gc_info(csr: &CertificateSigningRequest) -> GcInfo {
    let no_conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_none_or(|c| c.is_empty());
    if no_conditions {
        return GcInfo {
            deadline: csr
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| plus_secs(t.0, PENDING_EXPIRATION_SECS)),
            rule: "pending CSRs are deleted 24h after creation",
        };
    }
    let denied = condition_time(csr, "Denied");
    let failed = condition_time(csr, "Failed");
    let approved_issued = if is_issued(csr) {
        condition_time(csr, "Approved")
    } else {
        None
    };
    // The earliest matching rule wins: the cleaner deletes on the first that holds.
    let candidates = [
        (
            denied,
            "denied CSRs are deleted 1h after the Denied condition",
        ),
        (
            failed,
            "failed CSRs are deleted 1h after the Failed condition",
        ),
        (
            approved_issued,
            "issued CSRs are deleted 1h after the Approved condition",
        ),
    ];
    let best = candidates
        .iter()
        .filter_map(|(t, rule)| {
            t.and_then(|t| plus_secs(t, DECIDED_EXPIRATION_SECS))
                .map(|d| (d, *rule))
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, rule)) => GcInfo {
            deadline: Some(d),
            rule,
        },
        None if is_approved(csr) && !is_issued(csr) => GcInfo {
            deadline: None,
            rule: "approved but not issued: never deleted",
        },
        None => GcInfo {
            deadline: None,
            rule: "no deadline (no timestamps on its conditions)",
        },
    }
}

fn gc_line(csr: &CertificateSigningRequest, now: jiff::Timestamp) -> String {
    let info = gc_info(csr);
    match info.deadline {
        Some(d) => {
            let left = d.as_nanosecond() - now.as_nanosecond();
            if left > 0 {
                format!("in {} ({})", human_duration_nanos(left), info.rule)
            } else {
                format!(
                    "due {} ago, at the cleaner's next hourly pass ({})",
                    human_duration_nanos(-left),
                    info.rule
                )
            }
        }
        None => info.rule.to_owned(),
    }
}

fn san_verdict(m: SanMatch, node: Option<&str>) -> String {
    let node = node.unwrap_or("<none>");
    match m {
        SanMatch::Matches => format!("match (Node {node})"),
        SanMatch::NotOnNode => format!("NOT ON NODE {node}"),
        SanMatch::NodeNotFound => "node not found".to_owned(),
    }
}

/// `PASS`/`FAIL`/`????` lines, one per check.
pub fn check_lines(checks: &[ReviewCheck]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = match c.status {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Unknown => "????",
        };
        let _ = match &c.detail {
            Some(d) => writeln!(out, "  {mark}  {:<width$}  {d}", c.name),
            None => writeln!(out, "  {mark}  {}", c.name),
        };
    }
    out
}

/// Failed and unknown checks one per line, the passing ones folded into wrapped `PASS` lines
/// (the interactive view, where 20 passing lines per CSR would bury the one that matters).
pub fn compact_check_lines(checks: &[ReviewCheck]) -> String {
    let notable: Vec<ReviewCheck> = checks
        .iter()
        .filter(|c| c.status != CheckStatus::Pass)
        .cloned()
        .collect();
    let mut out = check_lines(&notable);
    let mut line = String::new();
    for c in checks.iter().filter(|c| c.status == CheckStatus::Pass) {
        if !line.is_empty() && line.len() + c.name.len() + 2 > 90 {
            let _ = writeln!(out, "  PASS  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(c.name);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "  PASS  {line}");
    }
    out
}

/// The full human view.
pub fn inspect_view(
    csr: &CertificateSigningRequest,
    a: &Assessment,
    now: jiff::Timestamp,
) -> String {
    view(csr, a, now, false)
}

/// [`inspect_view`] with the passing checks folded (for `tlsboot review`).
pub fn review_view(
    csr: &CertificateSigningRequest,
    a: &Assessment,
    now: jiff::Timestamp,
) -> String {
    view(csr, a, now, true)
}

fn view(
    csr: &CertificateSigningRequest,
    a: &Assessment,
    now: jiff::Timestamp,
    compact: bool,
) -> String {
    let mut o = String::new();
    let spec = &csr.spec;
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(o, "{:<20}{value}", format!("{label}:"));
    };
    field("Name", &a.name);
    field("Signer", &a.signer_name);
    field("Requestor", &a.requestor);
    field(
        "Groups",
        &spec
            .groups
            .as_ref()
            .filter(|g| !g.is_empty())
            .map(|g| g.join(", "))
            .unwrap_or_else(|| "<none>".into()),
    );
    if let Some(uid) = spec.uid.as_deref().filter(|u| !u.is_empty()) {
        field("Requestor UID", uid);
    }
    field("Node", a.node_name.as_deref().unwrap_or("<none>"));
    let created = csr.metadata.creation_timestamp.as_ref();
    field(
        "Created",
        &match created {
            Some(t) => format!(
                "{} ({} ago)",
                t.0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                translate_timestamp_since(Some(t), now)
            ),
            None => "<unknown>".into(),
        },
    );
    field("Condition", &condition_column(csr));
    field("Garbage collection", &gc_line(csr, now));
    field(
        "Requested duration",
        &match spec.expiration_seconds {
            Some(s) => format!(
                "{} (spec.expirationSeconds={s}; the signer may cap it)",
                human_duration_secs(i64::from(s))
            ),
            None => "<none> (the signer's default)".into(),
        },
    );
    field(
        "Usages",
        &spec
            .usages
            .as_ref()
            .filter(|u| !u.is_empty())
            .map(|u| u.join(", "))
            .unwrap_or_else(|| "<none>".into()),
    );
    match &a.decision.parsed {
        Some(p) => {
            field("Subject", &p.subject);
            field("Key", &p.public_key.to_string());
            field("Signature", &p.signature_algorithm);
        }
        None => {
            let why = a
                .checks
                .iter()
                .find(|c| c.status == CheckStatus::Fail)
                .and_then(|c| c.detail.clone())
                .unwrap_or_else(|| "not decoded".into());
            field("Request", &format!("CANNOT BE DECODED: {why}"));
        }
    }

    if let Some(conds) = csr.status.as_ref().and_then(|s| s.conditions.as_ref())
        && !conds.is_empty()
    {
        let _ = writeln!(o, "Conditions:");
        for c in conds {
            let when = c
                .last_update_time
                .as_ref()
                .map(|t| format!(" {} ago", translate_timestamp_since(Some(t), now)))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} ({}){when}: {}",
                c.type_,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            );
        }
    }

    if !a.sans.is_empty() {
        let header = match a.node_status.as_deref() {
            Some("found") | None => format!(
                "Subject alternative names (against Node {} status.addresses):",
                a.node_name.as_deref().unwrap_or("<none>")
            ),
            Some(other) => format!(
                "Subject alternative names (Node {}: {other}):",
                a.node_name.as_deref().unwrap_or("<none>")
            ),
        };
        let _ = writeln!(o, "{header}");
        let width = a.sans.iter().map(|s| s.san.len()).max().unwrap_or(0);
        for s in &a.sans {
            let mut v = san_verdict(s.on_node, a.node_name.as_deref());
            if !s.other_nodes.is_empty() {
                let _ = write!(v, "; also an address of Node {}", s.other_nodes.join(", "));
            }
            for f in &s.flags {
                let _ = write!(v, "; FLAGGED: {f}");
            }
            let _ = writeln!(o, "  {:<width$}  {v}", s.san);
        }
    } else if a.decision.parsed.is_some() {
        let _ = writeln!(o, "Subject alternative names: <none>");
    }

    let _ = writeln!(o, "Checks: {}", a.checks_summary());
    o.push_str(&if compact {
        compact_check_lines(&a.checks)
    } else {
        check_lines(&a.checks)
    });
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let verdict = match (a.failed().count(), a.unknown().count()) {
        (0, 0) => "all checks pass: `tlsboot approve` will approve it".to_owned(),
        (f, 0) => format!(
            "{f} check{} failed: `tlsboot approve` refuses it without --force",
            plural(f)
        ),
        (0, u) => format!(
            "{u} check{} could not be evaluated: `tlsboot approve` refuses it without --force",
            plural(u)
        ),
        (f, u) => format!(
            "{f} check{} failed and {u} could not be evaluated: `tlsboot approve` refuses it \
             without --force",
            plural(f)
        ),
    };
    let _ = writeln!(o, "Verdict: {verdict}");
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::review::assess::assess;
    use crate::review::assess::tests::node_facts;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn csr(created: &str, conds: &[(&str, &str)], cert: bool) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some("csr-x".into()),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec::default(),
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conds
                        .iter()
                        .map(|(t, at)| CertificateSigningRequestCondition {
                            type_: (*t).into(),
                            status: "True".into(),
                            last_update_time: Some(Time(ts(at))),
                            ..Default::default()
                        })
                        .collect(),
                ),
                certificate: cert.then(|| ByteString(b"x".to_vec())),
            }),
        }
    }

    #[test]
    fn gc_follows_the_cleaner_rules() {
        let c = csr("2026-01-01T00:00:00Z", &[], false);
        assert_eq!(gc_info(&c).deadline, Some(ts("2026-01-02T00:00:00Z")));
        assert_eq!(
            gc_line(&c, ts("2026-01-01T01:00:00Z")),
            "in 23h (pending CSRs are deleted 24h after creation)"
        );
        assert!(gc_line(&c, ts("2026-01-02T00:30:00Z")).starts_with("due 30m ago"));

        let denied = csr(
            "2026-01-01T00:00:00Z",
            &[("Denied", "2026-01-01T05:00:00Z")],
            false,
        );
        assert_eq!(gc_info(&denied).deadline, Some(ts("2026-01-01T06:00:00Z")));

        let issued = csr(
            "2026-01-01T00:00:00Z",
            &[("Approved", "2026-01-01T02:00:00Z")],
            true,
        );
        assert_eq!(gc_info(&issued).deadline, Some(ts("2026-01-01T03:00:00Z")));

        let stuck = csr(
            "2026-01-01T00:00:00Z",
            &[("Approved", "2026-01-01T02:00:00Z")],
            false,
        );
        assert_eq!(gc_info(&stuck).deadline, None);
        assert!(gc_info(&stuck).rule.contains("never"));

        let failed = csr(
            "2026-01-01T00:00:00Z",
            &[
                ("Approved", "2026-01-01T02:00:00Z"),
                ("Failed", "2026-01-01T02:10:00Z"),
            ],
            false,
        );
        assert_eq!(gc_info(&failed).deadline, Some(ts("2026-01-01T03:10:00Z")));
    }

    #[test]
    fn inspect_view_shows_san_comparison_and_refusal() {
        let mut c = crate::review::assess::tests::serving_csr(
            "csr-v",
            "system:node:n1",
            "n1",
            &["n1", "10.1.0.2", "kubernetes.default.svc"],
        );
        c.metadata.creation_timestamp = Some(Time(ts("2026-01-01T00:00:00Z")));
        c.spec.expiration_seconds = Some(3600);
        let facts = node_facts(&[
            ("n1", &[("InternalIP", "10.1.0.1"), ("Hostname", "n1")][..]),
            ("n2", &[("InternalIP", "10.1.0.2")]),
        ]);
        let a = assess(&c, &facts);
        let v = inspect_view(&c, &a, ts("2026-01-01T00:05:00Z"));
        assert!(v.contains("Requestor:          system:node:n1\n"), "{v}");
        assert!(v.contains("Created:            2026-01-01T00:00:00Z (5m ago)"));
        assert!(
            v.contains("Garbage collection: in 23h (pending CSRs"),
            "{v}"
        );
        assert!(v.contains("Requested duration: 60m (spec.expirationSeconds=3600"));
        assert!(v.contains("Key:                ECDSA P-256"));
        assert!(
            v.contains("DNS:n1                      match (Node n1)"),
            "{v}"
        );
        assert!(
            v.contains("IP:10.1.0.2                 NOT ON NODE n1; also an address of Node n2"),
            "{v}"
        );
        assert!(
            v.contains("DNS:kubernetes.default.svc  NOT ON NODE n1; FLAGGED: names the Kubernetes API server"),
            "{v}"
        );
        assert!(v.contains("  FAIL  sans-on-node"), "{v}");
        assert!(v.contains("  PASS  signature\n"), "{v}");
        assert!(v.contains("Verdict: 3 checks failed"), "{v}");
    }

    #[test]
    fn compact_lines_fold_passes_and_keep_failures() {
        let mut checks: Vec<ReviewCheck> = (0..30)
            .map(|i| ReviewCheck {
                name: ["request-size", "pem", "signature", "organization", "usages"][i % 5],
                status: CheckStatus::Pass,
                detail: None,
            })
            .collect();
        checks.insert(
            3,
            ReviewCheck {
                name: "sans-on-node",
                status: CheckStatus::Fail,
                detail: Some("not addresses of Node n1: IP:10.0.0.9".into()),
            },
        );
        let out = compact_check_lines(&checks);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "  FAIL  sans-on-node  not addresses of Node n1: IP:10.0.0.9"
        );
        assert!(lines.len() > 2, "passes wrap: {out}");
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with("  PASS  ") && l.len() <= 100),
            "{out}"
        );
        let folded: usize = lines[1..].iter().map(|l| l.matches(", ").count() + 1).sum();
        assert_eq!(folded, 30, "every passing check is named once: {out}");
    }

    #[test]
    fn check_lines_align_details() {
        let lines = check_lines(&[
            ReviewCheck {
                name: "a",
                status: CheckStatus::Pass,
                detail: None,
            },
            ReviewCheck {
                name: "longer",
                status: CheckStatus::Unknown,
                detail: Some("why".into()),
            },
            ReviewCheck {
                name: "b",
                status: CheckStatus::Fail,
                detail: Some("bad".into()),
            },
        ]);
        assert_eq!(
            lines,
            "  PASS  a\n  ????  longer  why\n  FAIL  b       bad\n"
        );
    }
}
