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
