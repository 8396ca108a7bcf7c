//! Pure text forms shared by the review commands, each matching the kubectl form it imitates so
//! people (and scripts) reading both see the same thing.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cluster::csr_status::{has_failed, is_approved, is_denied, is_issued};

/// kubectl's `duration.HumanDuration` (apimachinery `pkg/util/duration`): about 2–3 significant
/// figures, `<invalid>` for a clock more than a second in the future. Takes nanoseconds so the
/// truncation points (`int(d.Seconds())`, `d / time.Minute`) are Go's.
pub fn human_duration_nanos(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    const MIN: i128 = 60 * SEC;
    const HOUR: i128 = 60 * MIN;
    // Go's int(d.Seconds()) truncates toward zero.
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 || nanos < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MIN;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// [`human_duration_nanos`] for whole seconds (`spec.expirationSeconds`).
pub fn human_duration_secs(secs: i64) -> String {
    human_duration_nanos(i128::from(secs) * 1_000_000_000)
}

/// kubectl's `translateTimestampSince`: the AGE column. `<unknown>` when the server sent none.
pub fn translate_timestamp_since(ts: Option<&Time>, now: jiff::Timestamp) -> String {
    match ts {
        Some(t) => human_duration_nanos(now.as_nanosecond() - t.0.as_nanosecond()),
        None => "<unknown>".into(),
    }
}

/// kubectl's CONDITION column (`extractCSRStatus`): Denied > Approved > Pending, then `,Failed`,
/// then `,Issued`.
pub fn condition_column(csr: &CertificateSigningRequest) -> String {
    let mut s = if is_denied(csr) {
        String::from("Denied")
    } else if is_approved(csr) {
        String::from("Approved")
    } else {
        String::from("Pending")
    };
    if has_failed(csr) {
        s.push_str(",Failed");
    }
    if is_issued(csr) {
        s.push_str(",Issued");
    }
    s
}

/// Text for a terminal: every line through the offline inspector's `clean` (control characters
/// and bidi overrides escaped), newlines kept. CSR strings (names, subjects, SANs, requesters,
/// condition messages) are attacker-controlled; this is applied where text leaves the program.
pub fn terminal_safe(text: &str) -> String {
    text.split('\n')
        .map(|l| super::inspect_file::clean(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A CSR as kubectl prints it with `-o json|yaml`: without `metadata.managedFields` (kubectl's
/// `--show-managed-fields=false` default).
pub fn for_output(csr: &CertificateSigningRequest) -> CertificateSigningRequest {
    let mut c = csr.clone();
    c.metadata.managed_fields = None;
    c
}

/// kubectl's `-o name` form.
pub fn resource_name(name: &str) -> String {
    format!("certificatesigningrequest.certificates.k8s.io/{name}")
}

/// kubectl's table layout (`printers.GetNewTabWriter`: Go tabwriter with min width 6, padding 3,
/// space padding): every column but the last is padded to `max(widest cell + 3, 6)` characters.
/// Widths only grow, so rows printed later (`--watch`) stay aligned with the header, as kubectl's
/// `RememberWidths`.
#[derive(Debug, Clone, Default)]
pub struct Table {
    widths: Vec<usize>,
}

const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

impl Table {
    /// Widths fitting all of `rows`.
    pub fn fit(rows: &[Vec<String>]) -> Self {
        let mut t = Table::default();
        for r in rows {
            t.grow(r);
        }
        t
    }

    fn grow(&mut self, row: &[String]) {
        if self.widths.len() < row.len() {
            self.widths.resize(row.len(), 0);
        }
        for (w, cell) in self.widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() + PADDING).max(MIN_WIDTH);
        }
    }

    /// One line (with `\n`), padded with this table's widths (grown first if the row is wider).
    pub fn line(&mut self, row: &[String]) -> String {
        self.grow(row);
        let mut out = String::new();
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = self.widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
        out
    }

    /// All rows, each through [`Table::line`].
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        rows.iter().map(|r| self.line(r)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::cluster::csr_status::awaits_decision;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestStatus;

    const S: i128 = 1_000_000_000;

    #[test]
    fn human_duration_matches_apimachinery_table() {
        // The cases of apimachinery's duration_test.go TestHumanDuration, plus the edges.
        let cases: &[(i128, &str)] = &[
            (-2 * S, "<invalid>"),
            (-S - 1, "0s"),
            (-1, "0s"),
            (0, "0s"),
            (S, "1s"),
            (59 * S, "59s"),
            (60 * S, "60s"),
            (119 * S, "119s"),
            (120 * S, "2m"),
            (121 * S, "2m1s"),
            (9 * 60 * S + 59 * S, "9m59s"),
            (10 * 60 * S, "10m"),
            (179 * 60 * S, "179m"),
            (180 * 60 * S, "3h"),
            (181 * 60 * S, "3h1m"),
            (8 * 3600 * S - 1, "7h59m"),
            (8 * 3600 * S, "8h"),
            (47 * 3600 * S + 59 * 60 * S, "47h"),
            (48 * 3600 * S, "2d"),
            (49 * 3600 * S, "2d1h"),
            (8 * 24 * 3600 * S - 1, "7d23h"),
            (8 * 24 * 3600 * S, "8d"),
            (2 * 365 * 24 * 3600 * S - 1, "729d"),
            (2 * 365 * 24 * 3600 * S, "2y"),
            (2 * 365 * 24 * 3600 * S + 24 * 3600 * S, "2y1d"),
            (8 * 365 * 24 * 3600 * S, "8y"),
            (9 * 365 * 24 * 3600 * S + 5 * 24 * 3600 * S, "9y"),
        ];
        for (nanos, want) in cases {
            assert_eq!(human_duration_nanos(*nanos), *want, "{nanos}ns");
        }
        assert_eq!(human_duration_secs(3600), "60m");
        assert_eq!(human_duration_secs(86400), "24h");
    }

    #[test]
    fn age_is_unknown_without_timestamp() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let created = Time("2026-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(translate_timestamp_since(Some(&created), now), "10m");
        assert_eq!(translate_timestamp_since(None, now), "<unknown>");
    }

    fn csr_with(conditions: &[&str], cert: bool) -> CertificateSigningRequest {
        let conditions: Vec<(&str, &str)> = conditions.iter().map(|t| (*t, "True")).collect();
        CertificateSigningRequest {
            status: Some(crate::policy::test_status(
                &conditions,
                cert.then_some(b"-----BEGIN CERTIFICATE-----".as_slice()),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn condition_column_follows_kubectl_precedence() {
        assert_eq!(
            condition_column(&CertificateSigningRequest::default()),
            "Pending"
        );
        assert_eq!(
            condition_column(&csr_with(&["Approved"], false)),
            "Approved"
        );
        assert_eq!(
            condition_column(&csr_with(&["Approved"], true)),
            "Approved,Issued"
        );
        // An object holding both is tolerated by the API; Denied wins.
        assert_eq!(
            condition_column(&csr_with(&["Approved", "Denied"], false)),
            "Denied"
        );
        assert_eq!(
            condition_column(&csr_with(&["Approved", "Failed"], false)),
            "Approved,Failed"
        );
        assert_eq!(
            condition_column(&csr_with(&["Failed"], true)),
            "Pending,Failed,Issued"
        );
        assert_eq!(
            condition_column(&csr_with(&["SomethingElse"], false)),
            "Pending"
        );
        let empty_cert = CertificateSigningRequest {
            status: Some(CertificateSigningRequestStatus {
                conditions: None,
                certificate: Some(ByteString(Vec::new())),
            }),
            ..Default::default()
        };
        assert_eq!(condition_column(&empty_cert), "Pending");
        assert!(awaits_decision(&csr_with(&["Failed"], false)));
        assert!(!awaits_decision(&csr_with(&["Denied"], false)));
    }

    #[test]
    fn hostile_text_is_escaped_but_lines_are_kept() {
        let t = terminal_safe("Name: csr-\u{1b}[2J\nSAN: evil\u{202e}txt.exe\n");
        assert_eq!(t, "Name: csr-\\u{1b}[2J\nSAN: evil\\u{202e}txt.exe\n");
        assert_eq!(terminal_safe("plain\n"), "plain\n");
    }

    #[test]
    fn table_pads_like_kubectl_tabwriter() {
        let rows = vec![
            vec!["NAME".into(), "AGE".into(), "CONDITION".into()],
            vec!["csr-abc".into(), "5m".into(), "Pending".into()],
        ];
        let out = Table::fit(&rows).render(&rows);
        // NAME column: widest "csr-abc" (7) + 3; AGE: max(3 + 3, 6); last column unpadded.
        assert_eq!(
            out,
            "NAME      AGE   CONDITION\n\
             csr-abc   5m    Pending\n"
        );
        // Minimum width applies to short columns.
        let mut t = Table::default();
        assert_eq!(t.line(&["a".into(), "b".into()]), "a     b\n");
        // Later, wider rows widen the column (and it stays wide).
        assert_eq!(t.line(&["abcdefgh".into(), "b".into()]), "abcdefgh   b\n");
        assert_eq!(t.line(&["a".into(), "b".into()]), "a          b\n");
    }
}
