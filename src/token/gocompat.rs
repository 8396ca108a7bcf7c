//! The few pieces of Go's standard library whose exact output kubeadm users see:
//! `time.ParseDuration` (and its error strings), `%q` quoting, `time.RFC3339`
//! parsing/formatting, apimachinery's `ShortHumanDuration` and `text/tabwriter`.
//! Reimplemented from their documented behaviour so `tlsboot token` prints what
//! `kubeadm token` prints, byte for byte.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};

/// Go's `%q` for strings (`strconv.Quote`): printable runes verbatim, `"` and `\`
/// escaped, control characters as Go escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The quoting `time.ParseDuration` uses in its errors (not `%q`): every byte of a
/// non-ASCII or control rune becomes `\xNN`.
fn duration_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

const NANOS_PER_UNIT: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000), // U+00B5 micro sign
    ("\u{03bc}s", 1_000), // U+03BC Greek mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// `time.ParseDuration`: nanoseconds, or Go's exact error text
/// (`time: invalid duration "x"`, `time: missing unit in duration "1"`,
/// `time: unknown unit "d" in duration "1d"`).
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", duration_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u64 = 0;
        for b in s[..digits].bytes() {
            if whole > LIMIT / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(b - b'0');
            if whole > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        let pre = digits > 0;

        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in rest[..n].bytes() {
                if overflow {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = frac * 10 + u64::from(b - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            post = n > 0;
            s = &rest[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }

        // The unit runs up to the next digit or '.', both ASCII, so the split is
        // always on a char boundary.
        let unit_len = s
            .bytes()
            .take_while(|b| !(*b == b'.' || b.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                duration_quote(orig)
            ));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit)) = NANOS_PER_UNIT.iter().find(|(u, _)| *u == unit_str) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                duration_quote(unit_str),
                duration_quote(orig)
            ));
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if frac > 0 {
            // Go computes the fraction in float64 as well; truncation matches it.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let extra = (frac as f64 * (unit as f64 / scale)) as u64;
            value = value.saturating_add(extra);
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total = total.saturating_add(value);
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // -(1<<63) is representable; anything else fits after negation.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// apimachinery's `duration.ShortHumanDuration` (what `kubeadm token list` shows as TTL),
/// for a signed duration in nanoseconds.
pub fn short_human_duration(nanos: i128) -> String {
    const NS: i128 = 1_000_000_000;
    let seconds = nanos / NS;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = nanos / (60 * NS);
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = nanos / (3600 * NS);
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", nanos / (24 * 365 * 3600 * NS))
}

/// A time parsed by Go's `time.Parse(time.RFC3339, s)`: the instant and the offset it
/// was written with (Go keeps the offset, and `Format` prints it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339 {
    pub timestamp: Timestamp,
    pub offset_seconds: i32,
}

fn two_digits(b: &[u8], at: usize) -> Option<i8> {
    let hi = *b.get(at)?;
    let lo = *b.get(at + 1)?;
    if !hi.is_ascii_digit() || !lo.is_ascii_digit() {
        return None;
    }
    i8::try_from((hi - b'0') * 10 + (lo - b'0')).ok()
}

/// Go's RFC 3339 parsing, as strict as Go is: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`,
/// upper-case `T` and `Z` only, hour < 24, second < 60, day valid for the month.
pub fn parse_rfc3339(s: &str) -> Option<Rfc3339> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year_digits = &b[0..4];
    if !year_digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = year_digits
        .iter()
        .fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'));
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let month = two_digits(b, 5)?;
    let day = two_digits(b, 8)?;
    let hour = two_digits(b, 11)?;
    let minute = two_digits(b, 14)?;
    let second = two_digits(b, 17)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut subsec_nanos: i32 = 0;
    if let Some((&sep, tail)) = rest.split_first()
        && (sep == b'.' || sep == b',')
        && tail.first().is_some_and(u8::is_ascii_digit)
    {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut scale = 100_000_000;
        for d in &tail[..n] {
            subsec_nanos += i32::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = &tail[n..];
    }
    let offset_seconds = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = two_digits(&[*h1, *h2], 0)?;
            let om = two_digits(&[*m1, *m2], 0)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i32::from(oh) * 3600 + i32::from(om) * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let date = Date::new(year, month, day).ok()?;
    let time = Time::new(hour, minute, second, subsec_nanos).ok()?;
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    let timestamp = offset.to_timestamp(DateTime::from_parts(date, time)).ok()?;
    Some(Rfc3339 {
        timestamp,
        offset_seconds,
    })
}

/// Go's `t.Format(time.RFC3339)`: whole seconds, `Z` for UTC, else `±hh:mm`.
pub fn format_rfc3339(ts: Timestamp, offset_seconds: i32) -> String {
    let offset = Offset::from_seconds(offset_seconds).unwrap_or(Offset::UTC);
    let dt = ts.to_zoned(TimeZone::fixed(offset)).datetime();
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let off = offset.seconds();
    if off == 0 {
        return format!("{base}Z");
    }
    let sign = if off < 0 { '-' } else { '+' };
    let abs = off.unsigned_abs();
    format!("{base}{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

/// `t.UTC().Format(time.RFC3339)`: how the token Secret's `expiration` is written.
pub fn format_rfc3339_utc(ts: Timestamp) -> String {
    format_rfc3339(ts, 0)
}

/// Go's `text/tabwriter` with flags 0 and padchar `' '`: tab-terminated cells are
/// aligned in column blocks (consecutive lines that have that column), each column
/// `max(minwidth, widest cell + padding)` wide; the text after a line's last tab is
/// not part of any column.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    out
}

fn width_of(cell: &str) -> usize {
    cell.chars().count()
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(width_of(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j)
                && j + 1 < line.len()
            {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(width_of(cell))));
            }
        }
        // The final segment after the last '\n' is unterminated text, not a line.
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parse_duration_accepts_go_forms() {
        for (input, want) in [
            ("0", 0),
            ("24h", 24 * 3600 * S),
            ("1h30m", 5400 * S),
            ("1.5h", 5400 * S),
            ("300ms", 300_000_000),
            ("-2s", -2 * S),
            ("+5s", 5 * S),
            ("1us", 1_000),
            ("1\u{00b5}s", 1_000),
            ("1\u{03bc}s", 1_000),
            ("7ns", 7),
            (".5s", S / 2),
            ("1.s", S),
            ("0s", 0),
            ("-0", 0),
            ("2h45m10.5s", (2 * 3600 + 45 * 60 + 10) * S + S / 2),
        ] {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn parse_duration_errors_read_like_go() {
        for (input, want) in [
            ("", r#"time: invalid duration """#),
            ("abc", r#"time: invalid duration "abc""#),
            ("10", r#"time: missing unit in duration "10""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("5x", r#"time: unknown unit "x" in duration "5x""#),
            ("1..5s", r#"time: missing unit in duration "1..5s""#),
            (".s", r#"time: invalid duration ".s""#),
            ("-", r#"time: invalid duration "-""#),
            ("1h ", r#"time: unknown unit "h " in duration "1h ""#),
            ("\u{0663}s", r#"time: invalid duration "\xd9\xa3s""#),
            (
                "5\u{00b5}x",
                r#"time: unknown unit "\xc2\xb5x" in duration "5\xc2\xb5x""#,
            ),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            ("9999999999h", r#"time: invalid duration "9999999999h""#),
        ] {
            assert_eq!(parse_duration(input), Err(want.to_string()), "{input:?}");
        }
    }

    #[test]
    fn parse_duration_extremes() {
        assert_eq!(parse_duration("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(parse_duration("-9223372036854775808ns"), Ok(i64::MIN));
    }

    #[test]
    fn quote_matches_go_percent_q() {
        assert_eq!(quote("abc"), r#""abc""#);
        assert_eq!(
            quote(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z"),
            r#""\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z""#
        );
        assert_eq!(quote("a\"b\n\t\x01"), r#""a\"b\n\t\x01""#);
        assert_eq!(quote("héllo"), "\"héllo\"");
        assert_eq!(quote("\u{0085}"), r#""\u0085""#);
    }

    #[test]
    fn short_human_duration_matches_apimachinery() {
        let s = |n: i128| n * 1_000_000_000;
        for (d, want) in [
            (s(-3), "<invalid>"),
            (s(-2), "<invalid>"),
            (s(-1), "0s"),
            (-500_000_000, "0s"),
            (0, "0s"),
            (s(59), "59s"),
            (s(60), "1m"),
            (s(3599), "59m"),
            (s(3600), "1h"),
            (s(23 * 3600 + 3599), "23h"),
            (s(24 * 3600), "1d"),
            (s(364 * 24 * 3600 + 23 * 3600), "364d"),
            (s(365 * 24 * 3600), "1y"),
            (s(3 * 365 * 24 * 3600), "3y"),
        ] {
            assert_eq!(short_human_duration(d), want, "{d}");
        }
    }

    #[test]
    fn rfc3339_parse_is_as_strict_as_go() {
        let ok = parse_rfc3339("2024-02-29T23:59:59Z").map(|t| t.timestamp.as_second());
        assert_eq!(ok, Some(1_709_251_199));
        let off = parse_rfc3339("2024-01-01T02:00:00+02:00");
        assert_eq!(off.map(|t| t.timestamp.as_second()), Some(1_704_067_200));
        assert_eq!(off.map(|t| t.offset_seconds), Some(7200));
        let frac = parse_rfc3339("2024-01-01T00:00:00.5Z");
        assert_eq!(
            frac.map(|t| t.timestamp.as_nanosecond()),
            Some(1_704_067_200_500_000_000)
        );
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00+24:00",
            "24-01-01T00:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "not a time",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_format_round_trips_like_go() {
        for s in [
            "2024-01-01T00:00:00Z",
            "2030-12-31T23:59:59+05:30",
            "1999-06-15T12:00:00-07:00",
        ] {
            let Some(t) = parse_rfc3339(s) else {
                panic!("{s} must parse");
            };
            assert_eq!(format_rfc3339(t.timestamp, t.offset_seconds), s);
        }
        let Some(frac) = parse_rfc3339("2024-01-01T00:00:00.999Z") else {
            panic!("fraction must parse");
        };
        // Go's RFC3339 layout has no fraction: it is dropped, not rounded.
        assert_eq!(format_rfc3339_utc(frac.timestamp), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn tabwriter_aligns_like_go() {
        let text = "TOKEN\tTTL\tEXPIRES\tX\nabcdef.0123456789abcdef\t23h\t2024\tgroups\n";
        // Each column is max(minwidth 10, widest cell + padding 3).
        let want = "TOKEN                     TTL       EXPIRES   X\n\
                    abcdef.0123456789abcdef   23h       2024      groups\n";
        assert_eq!(tabwrite(text, 10, 3), want);
    }

    #[test]
    fn tabwriter_column_blocks_end_at_short_lines() {
        // The second line has no tab: it ends the block, so lines 1 and 3 are aligned
        // independently, as in Go.
        let text = "a\tb\nplain\nlonger-cell\tc\n";
        assert_eq!(tabwrite(text, 0, 1), "a b\nplain\nlonger-cell c\n");
        // Cell widths are counted in runes, not bytes.
        assert_eq!(tabwrite("é\tx\nab\ty\n", 0, 1), "é  x\nab y\n");
        // Empty input and text without a trailing newline pass through.
        assert_eq!(tabwrite("", 10, 3), "");
        assert_eq!(tabwrite("a\tb", 0, 1), "a b");
    }
}
