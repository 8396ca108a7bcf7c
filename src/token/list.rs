//! `token list` output, as `kubeadm token list` prints it: the text table (one
//! tabwriter per token, header with the first), or `output.kubeadm.k8s.io/v1alpha3`
//! `BootstrapToken` objects as JSON (one indented object per token) or YAML
//! (documents separated by `---`).

use jiff::Timestamp;
use serde::Serialize;

use super::bootstrap::StoredToken;
use super::gocompat::{format_rfc3339, format_rfc3339_utc, short_human_duration, tabwrite};

pub const OUTPUT_API_VERSION: &str = "output.kubeadm.k8s.io/v1alpha3";
pub const OUTPUT_KIND: &str = "BootstrapToken";
const HEADER: &str = "TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
    Yaml,
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// One row of kubeadm's `formatBootstrapToken`, fixed-width padding included.
fn text_row(t: &StoredToken, now: Timestamp) -> String {
    let (ttl, expires) = match t.expires {
        None => ("<forever>".to_string(), "<never>".to_string()),
        Some(e) => (
            short_human_duration(e.timestamp.as_nanosecond() - now.as_nanosecond()),
            format_rfc3339(e.timestamp, e.offset_seconds),
        ),
    };
    format!(
        "{}\t{ttl:<9}\t{expires}\t{:<22}\t{:<56}\t{}\n",
        t.token.expose(),
        or_none(t.usages.join(",")),
        or_none(t.description.clone()),
        or_none(t.groups.join(",")),
    )
}

/// The text table. Nothing at all (not even the header) when there are no tokens,
/// like kubeadm, whose header is printed together with the first token.
pub fn format_text(tokens: &[StoredToken], now: Timestamp) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let mut block = String::new();
        if i == 0 {
            block.push_str(HEADER);
            block.push('\n');
        }
        block.push_str(&text_row(t, now));
        // kubeadm: tabwriter.NewWriter(out, 10, 4, 3, ' ', 0) (tabwidth is unused with ' ').
        out.push_str(&tabwrite(&block, 10, 3));
    }
    out
}

/// Field order is Go's struct order (TypeMeta inline first), which is what kubeadm's
/// JSON printer emits.
#[derive(Serialize)]
struct JsonToken<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    token: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    usages: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
}

/// Go's encoder escapes these even inside strings (they only occur inside strings
/// in JSON text, so replacing them everywhere is safe).
fn go_json_escapes(s: String) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn json_token(t: &StoredToken) -> JsonToken<'_> {
    JsonToken {
        kind: OUTPUT_KIND,
        api_version: OUTPUT_API_VERSION,
        token: t.token.expose(),
        description: &t.description,
        // metav1.Time marshals as UTC RFC 3339.
        expires: t.expires.map(|e| format_rfc3339_utc(e.timestamp)),
        usages: &t.usages,
        groups: &t.groups,
    }
}

/// `json.MarshalIndent(obj, "", "    ")` + "\n" per token.
pub fn format_json(tokens: &[StoredToken]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for t in tokens {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        json_token(t).serialize(&mut ser)?;
        out.push_str(&go_json_escapes(String::from_utf8_lossy(&buf).into_owned()));
        out.push('\n');
    }
    Ok(out)
}

/// sigs.k8s.io/yaml sorts keys (it goes through a JSON map), hence this order.
#[derive(Serialize)]
struct YamlToken<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    kind: &'static str,
    token: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    usages: &'a [String],
}

/// YAML documents, `---` before every one but the first (kubectl's YAMLPrinter).
pub fn format_yaml(tokens: &[StoredToken]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let expires = t.expires.map(|e| format_rfc3339_utc(e.timestamp));
        let doc = serde_yaml_ng::to_string(&YamlToken {
            api_version: OUTPUT_API_VERSION,
            description: &t.description,
            expires: expires.clone(),
            groups: &t.groups,
            kind: OUTPUT_KIND,
            token: t.token.expose(),
            usages: &t.usages,
        })?;
        // go-yaml quotes strings that would read back as timestamps; serde_yaml does
        // not know that rule, and the value is always our own RFC 3339 text.
        let doc = match &expires {
            Some(e) => doc.replace(&format!("expires: {e}\n"), &format!("expires: \"{e}\"\n")),
            None => doc,
        };
        out.push_str(&doc);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::token::bootstrap::TokenString;
    use crate::token::gocompat::parse_rfc3339;

    fn ts(s: &str) -> Timestamp {
        parse_rfc3339(s).map(|t| t.timestamp).unwrap_or_default()
    }

    fn stored(token: &str, expires: Option<&str>, description: &str) -> StoredToken {
        StoredToken {
            token: match TokenString::parse(token) {
                Ok(t) => t,
                Err(e) => panic!("{e}"),
            },
            description: description.into(),
            expires: expires.and_then(parse_rfc3339),
            usages: vec!["authentication".into(), "signing".into()],
            groups: vec!["system:bootstrappers:kubeadm:default-node-token".into()],
        }
    }

    #[test]
    fn text_matches_kubeadm_layout() {
        let now = ts("2030-01-01T00:00:00Z");
        let tokens = [
            stored("abcdef.0123456789abcdef", Some("2030-01-01T23:30:00Z"), ""),
            stored("ghijkl.0123456789abcdef", None, "forever token"),
        ];
        let got = format_text(&tokens, now);
        // Widths worked out by hand from Go's tabwriter rules (minwidth 10, padding 3)
        // over kubeadm's %-9s / %-22s / %-56s cells. The second token gets its own
        // tabwriter, so its EXPIRES column is only as wide as "<never>" needs.
        let groups = "system:bootstrappers:kubeadm:default-node-token";
        let want = [
            format!(
                "{:<26}{:<12}{:<23}{:<25}{:<59}{}\n",
                "TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"
            ),
            format!(
                "{:<26}{:<12}{:<23}{:<25}{:<59}{groups}\n",
                "abcdef.0123456789abcdef",
                "23h",
                "2030-01-01T23:30:00Z",
                "authentication,signing",
                "<none>"
            ),
            format!(
                "{:<26}{:<12}{:<10}{:<25}{:<59}{groups}\n",
                "ghijkl.0123456789abcdef",
                "<forever>",
                "<never>",
                "authentication,signing",
                "forever token"
            ),
        ]
        .concat();
        assert_eq!(got, want);
    }

    #[test]
    fn text_shows_none_and_invalid_like_kubeadm() {
        let now = ts("2030-01-01T00:00:00Z");
        let mut t = stored("abcdef.0123456789abcdef", Some("2029-12-31T00:00:00Z"), "");
        t.usages.clear();
        t.groups.clear();
        let got = format_text(&[t], now);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "abcdef.0123456789abcdef",
                "<invalid>",
                "2029-12-31T00:00:00Z",
                "<none>",
                "<none>",
                "<none>"
            ]
        );
    }

    #[test]
    fn text_keeps_the_offset_the_secret_was_written_with() {
        let now = ts("2030-01-01T00:00:00Z");
        let t = stored(
            "abcdef.0123456789abcdef",
            Some("2030-01-01T02:00:00+01:00"),
            "",
        );
        let got = format_text(std::slice::from_ref(&t), now);
        assert!(got.contains("2030-01-01T02:00:00+01:00"), "{got}");
        assert!(got.contains(" 1h "), "{got}");
        // JSON goes through metav1.Time: UTC.
        let json = format_json(&[t]).unwrap_or_default();
        assert!(
            json.contains("\"expires\": \"2030-01-01T01:00:00Z\""),
            "{json}"
        );
    }

    #[test]
    fn no_tokens_prints_nothing() {
        assert_eq!(format_text(&[], Timestamp::now()), "");
        assert_eq!(format_json(&[]).unwrap_or_default(), "");
        assert_eq!(format_yaml(&[]).unwrap_or_default(), "");
    }

    #[test]
    fn json_matches_kubeadm_printer() {
        let t = stored(
            "abcdef.0123456789abcdef",
            Some("2030-01-02T03:04:05Z"),
            "a <b> & c",
        );
        let got = format_json(&[t.clone(), t]).unwrap_or_default();
        let one = concat!(
            "{\n",
            "    \"kind\": \"BootstrapToken\",\n",
            "    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n",
            "    \"token\": \"abcdef.0123456789abcdef\",\n",
            "    \"description\": \"a \\u003cb\\u003e \\u0026 c\",\n",
            "    \"expires\": \"2030-01-02T03:04:05Z\",\n",
            "    \"usages\": [\n",
            "        \"authentication\",\n",
            "        \"signing\"\n",
            "    ],\n",
            "    \"groups\": [\n",
            "        \"system:bootstrappers:kubeadm:default-node-token\"\n",
            "    ]\n",
            "}\n",
        );
        assert_eq!(got, format!("{one}{one}"));
    }

    #[test]
    fn yaml_matches_kubeadm_printer() {
        let t = stored("abcdef.0123456789abcdef", Some("2030-01-02T03:04:05Z"), "");
        let mut forever = stored("ghijkl.0123456789abcdef", None, "x");
        forever.groups.clear();
        let got = format_yaml(&[t, forever]).unwrap_or_default();
        let want = concat!(
            "apiVersion: output.kubeadm.k8s.io/v1alpha3\n",
            "expires: \"2030-01-02T03:04:05Z\"\n",
            "groups:\n",
            "- system:bootstrappers:kubeadm:default-node-token\n",
            "kind: BootstrapToken\n",
            "token: abcdef.0123456789abcdef\n",
            "usages:\n",
            "- authentication\n",
            "- signing\n",
            "---\n",
            "apiVersion: output.kubeadm.k8s.io/v1alpha3\n",
            "description: x\n",
            "kind: BootstrapToken\n",
            "token: ghijkl.0123456789abcdef\n",
            "usages:\n",
            "- authentication\n",
            "- signing\n",
        );
        assert_eq!(got, want);
    }
}
