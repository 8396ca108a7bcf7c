//! A minimal, strict DER TLV walker.
//!
//! x509-parser decodes the fields we read, but it is lenient in places that matter for an
//! approver: it accepts BER inside attributes, reads only the first value of an attribute's
//! `SET`, and discards bytes after an extension's value. This walker checks the *shape* of the
//! request independently (definite minimal lengths, exact element counts, nothing trailing), so a
//! second SAN list or a smuggled value cannot hide where x509-parser does not look.

/// One decoded element: its identifier octet and its content octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole element, identifier and length octets included.
    pub raw: &'a [u8],
}

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
/// `[0]` constructed, context-specific: the PKCS#10 attributes.
pub(crate) const TAG_CONTEXT_0_CONSTRUCTED: u8 = 0xa0;

/// The ASN.1 string types a certificate request can carry, by universal tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringType {
    Utf8,
    Numeric,
    Printable,
    T61,
    Ia5,
    Bmp,
}

impl StringType {
    pub(crate) fn from_tag(tag: u8) -> Option<StringType> {
        Some(match tag {
            0x0c => StringType::Utf8,
            0x12 => StringType::Numeric,
            0x13 => StringType::Printable,
            0x14 => StringType::T61,
            0x16 => StringType::Ia5,
            0x1e => StringType::Bmp,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StringType::Utf8 => "UTF8String",
            StringType::Numeric => "NumericString",
            StringType::Printable => "PrintableString",
            StringType::T61 => "T61String",
            StringType::Ia5 => "IA5String",
            StringType::Bmp => "BMPString",
        }
    }
}

/// A byte as a reason shows it: hex, plus the character when it is visible ASCII (the rest
/// could be terminal control sequences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShownByte(pub u8);

impl std::fmt::Display for ShownByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "0x{:02x} ({:?})", self.0, char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// Why a string value's content is not what Go's `encoding/asn1` accepts for its type (the
/// parser kube-apiserver runs on every CSR's subject at create time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StringError {
    #[error(
        "byte {byte} at offset {offset} is outside the PrintableString set (A-Z a-z 0-9, space and ' ( ) + , - . / : = ?, plus the * and & Go also allows)"
    )]
    NotPrintable { byte: ShownByte, offset: usize },
    #[error("byte {byte} at offset {offset} is not a digit or a space")]
    NotNumeric { byte: ShownByte, offset: usize },
    #[error("byte {byte} at offset {offset} is not ASCII")]
    NotAscii { byte: ShownByte, offset: usize },
    #[error("the bytes from offset {offset} are not valid UTF-8")]
    NotUtf8 { offset: usize },
    #[error("its length, {0} bytes, is odd")]
    BmpOddLength(usize),
    #[error("code unit 0x{unit:04x} at offset {offset} is a surrogate or a noncharacter")]
    BmpBadUnit { unit: u16, offset: usize },
}

fn first_bad(content: &[u8], ok: impl Fn(u8) -> bool) -> Option<(ShownByte, usize)> {
    content
        .iter()
        .position(|&b| !ok(b))
        .and_then(|offset| content.get(offset).map(|&b| (ShownByte(b), offset)))
}

/// Go's `isPrintable(b, allowAsterisk, allowAmpersand)` (encoding/asn1): the X.680
/// PrintableString set plus `*` and `&`, which Go accepts because real certificates use them.
pub(crate) fn is_go_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
        )
        || b == b'*'
        || b == b'&'
}

/// Checks a string value's content the way Go 1.26's `encoding/asn1` does when it decodes an
/// `any` (every subject attribute value of a CSR): PrintableString [`is_go_printable`],
/// NumericString digits and space, IA5String bytes below 0x80, UTF8String valid UTF-8,
/// BMPString an even length without surrogates or noncharacters (after Go strips one trailing
/// NUL), T61String anything (Go reads it as Latin-1).
pub(crate) fn check_go_string(ty: StringType, content: &[u8]) -> Result<(), StringError> {
    match ty {
        StringType::Printable => match first_bad(content, is_go_printable) {
            Some((byte, offset)) => Err(StringError::NotPrintable { byte, offset }),
            None => Ok(()),
        },
        StringType::Numeric => match first_bad(content, |b| b.is_ascii_digit() || b == b' ') {
            Some((byte, offset)) => Err(StringError::NotNumeric { byte, offset }),
            None => Ok(()),
        },
        StringType::Ia5 => match first_bad(content, |b| b.is_ascii()) {
            Some((byte, offset)) => Err(StringError::NotAscii { byte, offset }),
            None => Ok(()),
        },
        StringType::Utf8 => {
            std::str::from_utf8(content)
                .map(|_| ())
                .map_err(|e| StringError::NotUtf8 {
                    offset: e.valid_up_to(),
                })
        }
        StringType::Bmp => {
            if !content.len().is_multiple_of(2) {
                return Err(StringError::BmpOddLength(content.len()));
            }
            let body = content.strip_suffix(&[0, 0]).unwrap_or(content);
            for (i, pair) in body.chunks_exact(2).enumerate() {
                let &[hi, lo] = pair else {
                    return Err(StringError::BmpOddLength(content.len()));
                };
                let unit = u16::from_be_bytes([hi, lo]);
                if unit == 0xfffe
                    || unit == 0xffff
                    || (0xfdd0..=0xfdef).contains(&unit)
                    || (0xd800..=0xdfff).contains(&unit)
                {
                    return Err(StringError::BmpBadUnit {
                        unit,
                        offset: i * 2,
                    });
                }
            }
            Ok(())
        }
        StringType::T61 => Ok(()),
    }
}

/// Why the bytes are not the DER we expect. Kept small: callers wrap it with where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DerError {
    #[error("truncated element")]
    Truncated,
    #[error("high-tag-number identifiers are not used in a CSR")]
    HighTagNumber,
    #[error("indefinite length is not DER")]
    IndefiniteLength,
    #[error("length is not minimally encoded")]
    NonMinimalLength,
    #[error("length does not fit")]
    LengthTooLarge,
    #[error("expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("{0} unexpected byte(s) after the last element")]
    TrailingBytes(usize),
    #[error("missing element")]
    Missing,
}

/// Reads one element from the front of `input`; returns it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber);
    }
    let (&first_len, mut rest) = after_tag.split_first().ok_or(DerError::Truncated)?;
    let len = if first_len < 0x80 {
        usize::from(first_len)
    } else if first_len == 0x80 {
        return Err(DerError::IndefiniteLength);
    } else {
        let n = usize::from(first_len & 0x7f);
        // 4 length octets cover anything a 64 KiB request can hold; more is hostile.
        if n > 4 {
            return Err(DerError::LengthTooLarge);
        }
        let (len_bytes, after_len) = rest.split_at_checked(n).ok_or(DerError::Truncated)?;
        rest = after_len;
        let mut len: usize = 0;
        for &b in len_bytes {
            len = (len << 8) | usize::from(b);
        }
        // DER: the long form only when the short form cannot express it, without leading zeros.
        if len < 0x80 || len_bytes.first() == Some(&0) {
            return Err(DerError::NonMinimalLength);
        }
        len
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(DerError::Truncated)?;
    let header_len = input.len() - rest.len() - len;
    let raw = input.get(..header_len + len).ok_or(DerError::Truncated)?;
    Ok((Tlv { tag, content, raw }, rest))
}

/// Reads one element and requires its tag.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(DerError::UnexpectedTag {
            expected: tag,
            found: tlv.tag,
        });
    }
    Ok((tlv, rest))
}

/// Requires `input` to be exactly one element (nothing before or after).
pub(crate) fn exactly_one(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    if input.is_empty() {
        return Err(DerError::Missing);
    }
    let (tlv, rest) = read_tlv(input)?;
    if !rest.is_empty() {
        return Err(DerError::TrailingBytes(rest.len()));
    }
    Ok(tlv)
}

/// Iterates the elements of a constructed value's content, failing on the first malformed one.
pub(crate) struct Elements<'a> {
    rest: &'a [u8],
}

impl<'a> Elements<'a> {
    pub(crate) fn new(content: &'a [u8]) -> Self {
        Self { rest: content }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Tlv<'a>, DerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match read_tlv(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                // Stop after the first error: the remaining bytes have no reliable framing.
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_forms() {
        let (tlv, rest) = read_tlv(&[0x30, 0x02, 0x05, 0x00, 0xff]).unwrap();
        assert_eq!(tlv.tag, 0x30);
        assert_eq!(tlv.content, &[0x05, 0x00]);
        assert_eq!(tlv.raw, &[0x30, 0x02, 0x05, 0x00]);
        assert_eq!(rest, &[0xff]);

        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let (tlv, rest) = read_tlv(&long).unwrap();
        assert_eq!(tlv.content.len(), 0x80);
        assert!(rest.is_empty());
    }

    #[test]
    fn rejects_non_der_lengths() {
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0, 0]),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x81, 0x05]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x82, 0x00, 0x90]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLarge)
        );
        assert_eq!(read_tlv(&[0x30, 0x05, 0x00]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), Err(DerError::HighTagNumber));
        assert_eq!(read_tlv(&[]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x30]), Err(DerError::Truncated));
    }

    #[test]
    fn exactly_one_rejects_trailing_bytes() {
        assert_eq!(
            exactly_one(&[0x05, 0x00, 0x05, 0x00]),
            Err(DerError::TrailingBytes(2))
        );
        assert_eq!(exactly_one(&[]), Err(DerError::Missing));
        assert!(exactly_one(&[0x05, 0x00]).is_ok());
    }

    #[test]
    fn elements_stop_after_an_error() {
        let items: Vec<_> = Elements::new(&[0x05, 0x00, 0x30, 0x05]).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(DerError::Truncated));
    }
}
