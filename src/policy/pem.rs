//! Strict PEM framing and base64 for `spec.request`.
//!
//! Go's `pem.Decode` (used by upstream `ParseCSR`) takes the *first* block and ignores whatever
//! surrounds it, and allows RFC 1421 headers. tlsboot accepts exactly one `CERTIFICATE REQUEST`
//! block with nothing but whitespace around it: extra blocks or text are never produced by a
//! kubelet, and a reviewer looking at the object must see the same thing the policy judged.

use super::upstream::PEM_LABEL_CSR;

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
/// Longest label we echo back in an error; a hostile label could be megabytes.
const MAX_LABEL_ECHO: usize = 64;

/// What is wrong with the PEM framing. Display strings are shown to people as violations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("{}: no PEM block found", super::upstream::PEM_BLOCK_TYPE_MUST_BE_CSR)]
    NoBlock,
    #[error(
        "{}: found a {label:?} block",
        super::upstream::PEM_BLOCK_TYPE_MUST_BE_CSR
    )]
    WrongLabel { label: String },
    #[error("unexpected data before the CERTIFICATE REQUEST PEM block")]
    LeadingData,
    #[error("more than one PEM block; exactly one CERTIFICATE REQUEST block is allowed")]
    MultipleBlocks,
    #[error("unexpected data after the CERTIFICATE REQUEST PEM block")]
    TrailingData,
    #[error("the CERTIFICATE REQUEST PEM block has no END line")]
    Unterminated,
    #[error("the PEM END line does not match \"-----END CERTIFICATE REQUEST-----\"")]
    MismatchedEnd,
    #[error("PEM headers are not allowed in a CERTIFICATE REQUEST block")]
    Headers,
    #[error("the CERTIFICATE REQUEST PEM block is empty")]
    EmptyBody,
    #[error("the CERTIFICATE REQUEST PEM body is not valid base64: {0}")]
    Base64(Base64Error),
}

/// Why a base64 text did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("invalid character at offset {0}")]
    InvalidCharacter(usize),
    #[error("length is not a multiple of 4")]
    BadLength,
    #[error("misplaced padding at offset {0}")]
    BadPadding(usize),
    #[error("non-canonical trailing bits")]
    NonCanonical,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let Some((&first, rest)) = s.split_first() {
        if !is_ws(first) {
            break;
        }
        s = rest;
    }
    while let Some((&last, rest)) = s.split_last() {
        if !is_ws(last) {
            break;
        }
        s = rest;
    }
    s
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Splits off the first line (without its `\n`); the remainder starts after the `\n`.
fn split_line(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b'\n') {
        Some(i) => (s.get(..i).unwrap_or(&[]), s.get(i + 1..).unwrap_or(&[])),
        None => (s, &[]),
    }
}

/// `label` as text for a message, cut at [`MAX_LABEL_ECHO`] bytes.
pub fn printable_label(label: &[u8]) -> String {
    let shown = label.get(..MAX_LABEL_ECHO).unwrap_or(label);
    let mut s = String::from_utf8_lossy(shown).into_owned();
    if label.len() > MAX_LABEL_ECHO {
        s.push('…');
    }
    s
}

/// Returns the DER inside the single `CERTIFICATE REQUEST` block of `input`.
pub(crate) fn decode_csr_pem(input: &[u8]) -> Result<Vec<u8>, PemError> {
    let text = trim(input);
    if !text.starts_with(BEGIN) {
        return Err(if contains(text, BEGIN) {
            PemError::LeadingData
        } else {
            PemError::NoBlock
        });
    }
    let (begin_line, mut rest) = split_line(text);
    let begin_line = trim(begin_line);
    let label = begin_line
        .strip_prefix(BEGIN)
        .and_then(|l| l.strip_suffix(DASHES))
        .ok_or(PemError::NoBlock)?;
    if label != PEM_LABEL_CSR.as_bytes() {
        return Err(PemError::WrongLabel {
            label: printable_label(label),
        });
    }

    let body_start = rest;
    let (body, end_line) = loop {
        if rest.is_empty() {
            return Err(PemError::Unterminated);
        }
        let (line, next) = split_line(rest);
        let line_t = trim(line);
        if line_t.starts_with(END) {
            let body_len = body_start.len() - rest.len();
            let body = body_start.get(..body_len).unwrap_or(&[]);
            rest = next;
            break (body, line_t);
        }
        if line_t.starts_with(BEGIN) {
            return Err(PemError::Unterminated);
        }
        if line_t.contains(&b':') {
            return Err(PemError::Headers);
        }
        rest = next;
    };
    let end_expected_len = END.len() + PEM_LABEL_CSR.len() + DASHES.len();
    let end_ok = end_line.len() == end_expected_len
        && end_line
            .strip_prefix(END)
            .and_then(|l| l.strip_suffix(DASHES))
            == Some(PEM_LABEL_CSR.as_bytes());
    if !end_ok {
        return Err(PemError::MismatchedEnd);
    }
    if !trim(rest).is_empty() {
        return Err(if contains(rest, BEGIN) {
            PemError::MultipleBlocks
        } else {
            PemError::TrailingData
        });
    }
    let der = decode_base64(body).map_err(PemError::Base64)?;
    if der.is_empty() {
        return Err(PemError::EmptyBody);
    }
    Ok(der)
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 with padding (RFC 4648 §4), the encoding Kubernetes uses for `[]byte` fields
/// and PEM bodies. ASCII whitespace is skipped (PEM line breaks, wrapped YAML); anything else that
/// is not in the alphabet, misplaced padding, or non-zero trailing bits is an error.
pub fn decode_base64(input: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut quad = [0u8; 4];
    let mut n = 0usize;
    let mut padding = 0usize;
    let mut done = false;
    for (offset, &b) in input.iter().enumerate() {
        if is_ws(b) {
            continue;
        }
        if b == b'=' {
            // Padding may only fill the last one or two positions of the final quantum.
            if n < 2 {
                return Err(Base64Error::BadPadding(offset));
            }
            padding += 1;
            if padding > 2 {
                return Err(Base64Error::BadPadding(offset));
            }
            n += 1;
            if n == 4 {
                done = true;
                n = 0;
            }
            continue;
        }
        if padding > 0 || done {
            return Err(Base64Error::BadPadding(offset));
        }
        let v = sextet(b).ok_or(Base64Error::InvalidCharacter(offset))?;
        if let Some(slot) = quad.get_mut(n) {
            *slot = v;
        }
        n += 1;
        if n == 4 {
            out.push((quad[0] << 2) | (quad[1] >> 4));
            out.push((quad[1] << 4) | (quad[2] >> 2));
            out.push((quad[2] << 6) | quad[3]);
            n = 0;
        }
    }
    if n != 0 {
        return Err(Base64Error::BadLength);
    }
    match padding {
        0 => {}
        1 => {
            // xyz= → two bytes from three sextets; the low 2 bits of the third must be zero.
            if quad[2] & 0x03 != 0 {
                return Err(Base64Error::NonCanonical);
            }
            out.push((quad[0] << 2) | (quad[1] >> 4));
            out.push((quad[1] << 4) | (quad[2] >> 2));
        }
        _ => {
            if quad[1] & 0x0f != 0 {
                return Err(Base64Error::NonCanonical);
            }
            out.push((quad[0] << 2) | (quad[1] >> 4));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn wrap(body: &str) -> String {
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
    }

    #[test]
    fn base64_round_trips_all_padding_cases() {
        assert_eq!(decode_base64(b"").unwrap(), b"");
        assert_eq!(decode_base64(b"Zg==").unwrap(), b"f");
        assert_eq!(decode_base64(b"Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64(b"Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64(b"Zm9v\r\nYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn base64_rejects_malformed_input() {
        assert_eq!(decode_base64(b"Zm9"), Err(Base64Error::BadLength));
        assert_eq!(decode_base64(b"Zg=a"), Err(Base64Error::BadPadding(3)));
        assert_eq!(decode_base64(b"Z==="), Err(Base64Error::BadPadding(1)));
        assert_eq!(decode_base64(b"Zg==Zg=="), Err(Base64Error::BadPadding(4)));
        assert_eq!(
            decode_base64(b"Zm9v!"),
            Err(Base64Error::InvalidCharacter(4))
        );
        assert_eq!(decode_base64(b"Zh=="), Err(Base64Error::NonCanonical));
        assert_eq!(decode_base64(b"Zm9="), Err(Base64Error::NonCanonical));
        assert_eq!(
            decode_base64(b"Zm-_"),
            Err(Base64Error::InvalidCharacter(2))
        );
    }

    #[test]
    fn accepts_one_block_with_surrounding_whitespace() {
        let pem = format!("\n  \r\n{}\n\n", wrap("Zm9v\nYmFy"));
        assert_eq!(decode_csr_pem(pem.as_bytes()).unwrap(), b"foobar");
        let crlf = wrap("Zm9v").replace('\n', "\r\n");
        assert_eq!(decode_csr_pem(crlf.as_bytes()).unwrap(), b"foo");
    }

    #[test]
    fn rejects_framing_problems() {
        assert_eq!(decode_csr_pem(b""), Err(PemError::NoBlock));
        assert_eq!(decode_csr_pem(b"garbage"), Err(PemError::NoBlock));
        let new = "-----BEGIN NEW CERTIFICATE REQUEST-----\nZm9v\n-----END NEW CERTIFICATE REQUEST-----\n";
        assert_eq!(
            decode_csr_pem(new.as_bytes()),
            Err(PemError::WrongLabel {
                label: "NEW CERTIFICATE REQUEST".into()
            })
        );
        assert_eq!(
            decode_csr_pem(format!("junk\n{}", wrap("Zm9v")).as_bytes()),
            Err(PemError::LeadingData)
        );
        assert_eq!(
            decode_csr_pem(format!("{}junk", wrap("Zm9v")).as_bytes()),
            Err(PemError::TrailingData)
        );
        assert_eq!(
            decode_csr_pem(format!("{}{}", wrap("Zm9v"), wrap("YmFy")).as_bytes()),
            Err(PemError::MultipleBlocks)
        );
        assert_eq!(
            decode_csr_pem(b"-----BEGIN CERTIFICATE REQUEST-----\nZm9v\n"),
            Err(PemError::Unterminated)
        );
        assert_eq!(
            decode_csr_pem(b"-----BEGIN CERTIFICATE REQUEST-----\nZm9v\n-----END CERTIFICATE-----"),
            Err(PemError::MismatchedEnd)
        );
        assert_eq!(
            decode_csr_pem(wrap("Proc-Type: 4,ENCRYPTED\n\nZm9v").as_bytes()),
            Err(PemError::Headers)
        );
        assert_eq!(
            decode_csr_pem(wrap("").as_bytes()),
            Err(PemError::EmptyBody)
        );
        assert_eq!(
            decode_csr_pem(wrap("Zm9v!").as_bytes()),
            Err(PemError::Base64(Base64Error::InvalidCharacter(4)))
        );
    }

    #[test]
    fn long_labels_are_truncated_in_errors() {
        let label = "X".repeat(10_000);
        let pem = format!("-----BEGIN {label}-----\nZm9v\n-----END {label}-----\n");
        match decode_csr_pem(pem.as_bytes()) {
            Err(PemError::WrongLabel { label }) => {
                assert!(label.chars().count() <= MAX_LABEL_ECHO + 1)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
