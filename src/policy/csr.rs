//! `spec.request` → [`ParsedCsr`]: strict PEM, strict DER shape, every PKCS#10 attribute, and a
//! signature verified against tlsboot's own algorithm allow-list.
//!
//! The parse runs in stages; the first failing stage names the reason ([`ParseError`]) and
//! [`ParseError::stage`] tells `decide` which check failed, so a person sees which stages passed.

use super::der::{self, Elements, Tlv};
use super::pem::{self, PemError};
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use x509_parser::asn1_rs::{BitString, Class};
use x509_parser::cri_attributes::{ParsedCriAttribute, X509CriAttribute};
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::oid_registry::{self, OID_PKCS9_CHALLENGE_PASSWORD, Oid};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{
    AlgorithmIdentifier, AttributeTypeAndValue, SubjectPublicKeyInfo, X509Name, X509Version,
};

/// Largest `spec.request` we look at. A kubelet CSR is well under 1 KiB and an RSA-8192 request
/// with a few SANs stays below 4 KiB; anything near this limit is not a kubelet. Refusing before
/// decoding keeps a flood of megabyte requests from costing more than a length comparison.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted (ring's verification limit).
pub const MAX_RSA_BITS: u32 = 8192;

/// The parse stages, in order; each is a [`super::Check`] name in a [`super::Decision`].
pub mod stage {
    pub const REQUEST_SIZE: &str = "request-size";
    pub const PEM: &str = "pem";
    pub const DER: &str = "der";
    pub const ATTRIBUTES: &str = "attributes";
    pub const SUBJECT_AND_SANS: &str = "subject-and-sans";
    pub const PUBLIC_KEY: &str = "public-key";
    pub const SIGNATURE_ALGORITHM: &str = "signature-algorithm";
    pub const SIGNATURE: &str = "signature";
    /// All stages in the order they run.
    pub const ALL: [&str; 8] = [
        REQUEST_SIZE,
        PEM,
        DER,
        ATTRIBUTES,
        SUBJECT_AND_SANS,
        PUBLIC_KEY,
        SIGNATURE_ALGORITHM,
        SIGNATURE,
    ];
}

/// Why `spec.request` was refused. One variant per named reason; the Display text is what people
/// and logs see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("request is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// Only produced by callers that decode `spec.request` from base64 themselves (files).
    #[error("spec.request is not valid base64: {0}")]
    RequestEncoding(pem::Base64Error),
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("request is not a DER PKCS#10 CertificationRequest: {0}")]
    Der(String),
    #[error("unsupported CertificationRequest version {0}; only v1 (0) exists")]
    Version(String),
    #[error("PKCS#10 attribute {oid} appears more than once")]
    DuplicateAttribute { oid: String },
    #[error("PKCS#10 attribute {oid} must have exactly one value, has {count}")]
    AttributeValueCount { oid: String, count: usize },
    #[error(
        "PKCS#10 attribute challengePassword (1.2.840.113549.1.9.7) is not accepted: nothing in Kubernetes reads it, and a CSR object is readable by everyone who may list CSRs"
    )]
    ChallengePassword,
    #[error("extension {oid} is requested more than once")]
    DuplicateExtension { oid: String },
    #[error("requested extension {oid} is malformed: {reason}")]
    InvalidExtension { oid: String, reason: String },
    #[error(
        "subject attribute {oid} is not a PrintableString, UTF8String, IA5String or NumericString"
    )]
    InvalidSubjectString { oid: String },
    #[error("subject attribute {oid} is not a valid {string_type}: {reason}")]
    SubjectStringContent {
        oid: String,
        string_type: &'static str,
        reason: String,
    },
    #[error(
        "subject attribute {oid} holds a value of type {value_type}; only string values are accepted in the subject"
    )]
    SubjectValueType {
        oid: String,
        value_type: &'static str,
    },
    #[error("subjectAltName entry is malformed: {0}")]
    InvalidSan(String),
    #[error(
        "unsupported public key algorithm {oid}; RSA, ECDSA P-256/P-384 and Ed25519 are accepted"
    )]
    UnsupportedKeyAlgorithm { oid: String },
    #[error("unsupported elliptic curve {curve}; only P-256 and P-384 are accepted")]
    UnsupportedCurve { curve: String },
    #[error("RSA key is {bits} bits; at least {MIN_RSA_BITS} are required")]
    RsaKeyTooSmall { bits: u32 },
    #[error("RSA key is {bits} bits; at most {MAX_RSA_BITS} are supported")]
    RsaKeyTooLarge { bits: u32 },
    #[error("malformed public key: {0}")]
    InvalidPublicKey(String),
    #[error("{algorithm} signatures are not accepted: the hash is broken; use SHA-256 or stronger")]
    WeakSignatureAlgorithm { algorithm: String },
    #[error("unsupported signature algorithm {algorithm}")]
    UnsupportedSignatureAlgorithm { algorithm: String },
    #[error("signature algorithm {signature} does not match the {key} public key")]
    SignatureKeyMismatch { signature: String, key: String },
    #[error("unsupported RSA-PSS parameters: {0}")]
    UnsupportedPssParameters(String),
    #[error("the signature does not verify with the request's own public key")]
    BadSignature,
}

impl ParseError {
    /// The parse stage (and so the check name) this error belongs to.
    pub fn stage(&self) -> &'static str {
        use ParseError::*;
        match self {
            TooLarge { .. } => stage::REQUEST_SIZE,
            RequestEncoding(_) | Pem(_) => stage::PEM,
            Der(_) | Version(_) => stage::DER,
            DuplicateAttribute { .. }
            | AttributeValueCount { .. }
            | ChallengePassword
            | DuplicateExtension { .. }
            | InvalidExtension { .. } => stage::ATTRIBUTES,
            InvalidSubjectString { .. }
            | SubjectStringContent { .. }
            | SubjectValueType { .. }
            | InvalidSan(_) => stage::SUBJECT_AND_SANS,
            UnsupportedKeyAlgorithm { .. }
            | UnsupportedCurve { .. }
            | RsaKeyTooSmall { .. }
            | RsaKeyTooLarge { .. }
            | InvalidPublicKey(_) => stage::PUBLIC_KEY,
            WeakSignatureAlgorithm { .. }
            | UnsupportedSignatureAlgorithm { .. }
            | SignatureKeyMismatch { .. }
            | UnsupportedPssParameters(_) => stage::SIGNATURE_ALGORITHM,
            BadSignature => stage::SIGNATURE,
        }
    }
}

/// The request's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyInfo {
    pub algorithm: KeyAlgorithm,
    /// Modulus bits for RSA, curve size for ECDSA, 256 for Ed25519.
    pub bits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyAlgorithm {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    #[serde(rename = "ECDSA-P384")]
    EcdsaP384,
    #[serde(rename = "Ed25519")]
    Ed25519,
}

impl fmt::Display for PublicKeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            KeyAlgorithm::Rsa => write!(f, "RSA {}-bit", self.bits),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// One extension from the extensionRequest attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedExtension {
    /// Dotted OID.
    pub oid: String,
    /// Short name when the OID is well known (`subjectAltName`, `keyUsage`, …).
    pub name: Option<String>,
    pub critical: bool,
    /// Decoded value for the extensions a reviewer cares about (key usage, EKU, CA flag).
    pub summary: Option<String>,
}

/// Owned, decoded view of a verified PKCS#10 request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParsedCsr {
    /// The whole subject, RDNs in encoded order (`O=system:nodes, CN=system:node:n1`).
    pub subject: String,
    /// Every CN in encoded order. Go keeps only the last one; tlsboot requires exactly one.
    pub common_names: Vec<String>,
    /// Every O in encoded order, like Go's `Subject.Organization`.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub email_addresses: Vec<String>,
    pub uris: Vec<String>,
    /// SAN entries Go's CSR parser drops (otherName, directoryName, registeredID, …).
    pub other_names: Vec<String>,
    pub public_key: PublicKeyInfo,
    /// Go's name for it (`ECDSA-SHA256`, `SHA256-RSA`, `SHA256-RSAPSS`, `Ed25519`).
    pub signature_algorithm: String,
    pub requested_extensions: Vec<RequestedExtension>,
    /// Dotted OIDs of every PKCS#10 attribute, in order.
    pub attributes: Vec<String>,
}

impl ParsedCsr {
    /// The CN when there is exactly one; `None` for zero or several.
    pub fn common_name(&self) -> Option<&str> {
        match self.common_names.as_slice() {
            [cn] => Some(cn.as_str()),
            _ => None,
        }
    }

    /// The CN the way Go's `pkix.Name` reports it: the last one, or empty.
    pub fn go_common_name(&self) -> &str {
        self.common_names.last().map_or("", String::as_str)
    }
}

/// Parses and verifies `spec.request` (PEM bytes). See the module docs for what is enforced.
pub fn parse_csr(request: &[u8]) -> Result<ParsedCsr, ParseError> {
    if request.len() > MAX_REQUEST_BYTES {
        return Err(ParseError::TooLarge {
            len: request.len(),
            max: MAX_REQUEST_BYTES,
        });
    }
    let der = pem::decode_csr_pem(request)?;
    parse_der(&der)
}

fn der_err(what: &str, e: der::DerError) -> ParseError {
    ParseError::Der(format!("{what}: {e}"))
}

/// What the independent DER walk found: every element of the request, framed exactly. x509-parser
/// then reads each one from exactly these bytes.
struct Shape<'a> {
    tbs: &'a [u8],
    version: &'a [u8],
    subject: &'a [u8],
    spki: &'a [u8],
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
    attributes: Vec<ShapeAttribute<'a>>,
}

struct ShapeAttribute<'a> {
    /// OID content bytes.
    oid: &'a [u8],
    /// Number of values in the attribute's SET.
    values: usize,
    /// The whole `Attribute` SEQUENCE.
    raw: &'a [u8],
}

fn walk_shape(input: &[u8]) -> Result<Shape<'_>, ParseError> {
    let outer = der::exactly_one(input).map_err(|e| der_err("CertificationRequest", e))?;
    if outer.tag != der::TAG_SEQUENCE {
        return Err(ParseError::Der(
            "CertificationRequest is not a SEQUENCE".into(),
        ));
    }
    let (tbs, rest) = der::expect(outer.content, der::TAG_SEQUENCE)
        .map_err(|e| der_err("certificationRequestInfo", e))?;
    let (alg, rest) =
        der::expect(rest, der::TAG_SEQUENCE).map_err(|e| der_err("signatureAlgorithm", e))?;
    let sig = der::exactly_one(rest).map_err(|e| der_err("signature", e))?;
    if sig.tag != der::TAG_BIT_STRING {
        return Err(ParseError::Der("signature is not a BIT STRING".into()));
    }

    let (version, rest) =
        der::expect(tbs.content, der::TAG_INTEGER).map_err(|e| der_err("version", e))?;
    let (subject, rest) =
        der::expect(rest, der::TAG_SEQUENCE).map_err(|e| der_err("subject", e))?;
    let (spki, rest) =
        der::expect(rest, der::TAG_SEQUENCE).map_err(|e| der_err("subjectPKInfo", e))?;
    let attrs = der::exactly_one(rest).map_err(|e| der_err("attributes", e))?;
    if attrs.tag != der::TAG_CONTEXT_0_CONSTRUCTED {
        return Err(ParseError::Der(
            "attributes are not [0] IMPLICIT SET".into(),
        ));
    }

    check_name_shape(subject.content)?;
    check_spki_shape(spki.content)?;
    check_algorithm_identifier(alg.content, "signatureAlgorithm")?;

    let mut attributes = Vec::new();
    for attr in Elements::new(attrs.content) {
        let attr = attr.map_err(|e| der_err("attribute", e))?;
        if attr.tag != der::TAG_SEQUENCE {
            return Err(ParseError::Der("attribute is not a SEQUENCE".into()));
        }
        let (oid, rest) =
            der::expect(attr.content, der::TAG_OID).map_err(|e| der_err("attribute type", e))?;
        let values: Tlv<'_> = der::exactly_one(rest).map_err(|e| der_err("attribute values", e))?;
        if values.tag != der::TAG_SET {
            return Err(ParseError::Der("attribute values are not a SET".into()));
        }
        let mut count = 0usize;
        for value in Elements::new(values.content) {
            let value = value.map_err(|e| der_err("attribute value", e))?;
            if oid.content == OID_EXTENSION_REQUEST {
                check_extensions_shape(value)?;
            }
            count += 1;
        }
        attributes.push(ShapeAttribute {
            oid: oid.content,
            values: count,
            raw: attr.raw,
        });
    }
    Ok(Shape {
        tbs: tbs.raw,
        version: version.raw,
        subject: subject.raw,
        spki: spki.raw,
        signature_algorithm: alg.raw,
        signature: sig.raw,
        attributes,
    })
}

// x509-parser does not check every identifier octet it reads: it took a context-specific
// `[16]` (0xb0) for an AttributeTypeAndValue SEQUENCE, and a BOOLEAN for the MGF1 OID of
// RSASSA-PSS parameters. Go's encoding/asn1 refuses both. So every element of the subject,
// the key and the algorithm identifiers is checked here, tag by tag, before x509-parser reads
// it. Found by fuzzing with an independent oracle (fuzz/, docs/security.md "Hardening: tags").

/// `Name`: SEQUENCE OF (non-empty SET OF SEQUENCE { OID, one value }).
fn check_name_shape(content: &[u8]) -> Result<(), ParseError> {
    let bad = |what: &str| ParseError::Der(format!("subject: {what}"));
    for rdn in Elements::new(content) {
        let rdn = rdn.map_err(|e| der_err("subject", e))?;
        if rdn.tag != der::TAG_SET || rdn.content.is_empty() {
            return Err(bad("a RelativeDistinguishedName is not a non-empty SET"));
        }
        for atv in Elements::new(rdn.content) {
            let atv = atv.map_err(|e| der_err("subject", e))?;
            if atv.tag != der::TAG_SEQUENCE {
                return Err(bad("an AttributeTypeAndValue is not a SEQUENCE"));
            }
            let (_, value) =
                der::expect(atv.content, der::TAG_OID).map_err(|e| der_err("subject", e))?;
            der::exactly_one(value).map_err(|e| der_err("subject attribute value", e))?;
        }
    }
    Ok(())
}

/// `SubjectPublicKeyInfo`: SEQUENCE { AlgorithmIdentifier, BIT STRING }.
fn check_spki_shape(content: &[u8]) -> Result<(), ParseError> {
    let (alg, rest) =
        der::expect(content, der::TAG_SEQUENCE).map_err(|e| der_err("subjectPKInfo", e))?;
    check_algorithm_identifier(alg.content, "subjectPKInfo algorithm")?;
    // x509-parser's `as_oid` reads an EC key's named curve whatever its tag.
    let (oid, params) = der::expect(alg.content, der::TAG_OID)
        .map_err(|e| der_err("subjectPKInfo algorithm", e))?;
    if oid.content == OID_EC_PUBLIC_KEY {
        der::expect(params, der::TAG_OID).map_err(|e| der_err("EC named curve", e))?;
    }
    let key = der::exactly_one(rest).map_err(|e| der_err("subjectPublicKey", e))?;
    if key.tag != der::TAG_BIT_STRING {
        return Err(ParseError::Der(
            "subjectPublicKey is not a BIT STRING".into(),
        ));
    }
    Ok(())
}

const OID_EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/// An extensionRequest value: SEQUENCE OF Extension, each SEQUENCE { OID, optional BOOLEAN,
/// OCTET STRING }.
fn check_extensions_shape(value: Tlv<'_>) -> Result<(), ParseError> {
    let bad = |what: &str| ParseError::Der(format!("extensionRequest: {what}"));
    if value.tag != der::TAG_SEQUENCE {
        return Err(bad("not a SEQUENCE of extensions"));
    }
    for ext in Elements::new(value.content) {
        let ext = ext.map_err(|e| der_err("extension", e))?;
        if ext.tag != der::TAG_SEQUENCE {
            return Err(bad("an Extension is not a SEQUENCE"));
        }
        let (_, mut rest) =
            der::expect(ext.content, der::TAG_OID).map_err(|e| der_err("extension id", e))?;
        if rest.first() == Some(&TAG_BOOLEAN) {
            rest = der::expect(rest, TAG_BOOLEAN)
                .map_err(|e| der_err("extension critical", e))?
                .1;
        }
        let v = der::exactly_one(rest).map_err(|e| der_err("extension value", e))?;
        if v.tag != TAG_OCTET_STRING {
            return Err(bad("an extension value is not an OCTET STRING"));
        }
    }
    Ok(())
}

const TAG_BOOLEAN: u8 = 0x01;
const TAG_OCTET_STRING: u8 = 0x04;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

/// `AlgorithmIdentifier` content: an OID and at most one parameters element; for RSASSA-PSS the
/// parameters' own structure too (RFC 4055).
fn check_algorithm_identifier(content: &[u8], what: &str) -> Result<(), ParseError> {
    let (oid, params) = der::expect(content, der::TAG_OID).map_err(|e| der_err(what, e))?;
    if params.is_empty() {
        return Ok(());
    }
    let params = der::exactly_one(params).map_err(|e| der_err(what, e))?;
    if oid.content == OID_RSASSA_PSS {
        check_pss_params_shape(params)?;
    }
    Ok(())
}

/// RSASSA-PSS-params: SEQUENCE { [0] hash AlgorithmIdentifier, [1] mask generation
/// AlgorithmIdentifier whose parameters are the MGF1 hash AlgorithmIdentifier, [2] INTEGER,
/// [3] INTEGER }, each optional, in this order, each explicit tag holding exactly one element.
fn check_pss_params_shape(params: Tlv<'_>) -> Result<(), ParseError> {
    // A DER error like every other shape error: the later stages have not run yet.
    let bad = |what: &str| ParseError::Der(format!("RSASSA-PSS parameters: {what}"));
    if params.tag != der::TAG_SEQUENCE {
        return Err(bad("not a SEQUENCE"));
    }
    let mut last = None;
    for field in Elements::new(params.content) {
        let field = field.map_err(|e| bad(&e.to_string()))?;
        let number = field.tag ^ 0xa0;
        if field.tag & 0xe0 != 0xa0 || number > 3 || last.is_some_and(|l| number <= l) {
            return Err(bad("unexpected field"));
        }
        last = Some(number);
        let inner = der::exactly_one(field.content).map_err(|e| bad(&e.to_string()))?;
        let want = if number < 2 {
            der::TAG_SEQUENCE
        } else {
            der::TAG_INTEGER
        };
        if inner.tag != want {
            return Err(bad("a field has the wrong type"));
        }
        if number < 2 {
            check_algorithm_identifier(inner.content, "RSASSA-PSS parameters")?;
        }
        if number == 0 {
            check_hash_parameters(inner.content)?;
        }
        if number == 1 {
            // MGF1's parameter is itself a hash AlgorithmIdentifier.
            let (_, mgf_params) =
                der::expect(inner.content, der::TAG_OID).map_err(|e| bad(&e.to_string()))?;
            let hash = der::exactly_one(mgf_params).map_err(|e| bad(&e.to_string()))?;
            if hash.tag != der::TAG_SEQUENCE {
                return Err(bad(
                    "the mask generation hash is not an AlgorithmIdentifier",
                ));
            }
            check_algorithm_identifier(hash.content, "RSASSA-PSS parameters")?;
            check_hash_parameters(hash.content)?;
        }
    }
    Ok(())
}

/// Go's rule for the hash AlgorithmIdentifiers inside RSASSA-PSS parameters (crypto/x509
/// `getSignatureAlgorithmFromAI`): no parameters, or NULL. x509-parser ignores them.
fn check_hash_parameters(content: &[u8]) -> Result<(), ParseError> {
    let (_, params) =
        der::expect(content, der::TAG_OID).map_err(|e| der_err("RSASSA-PSS parameters", e))?;
    if params.is_empty() || params == [0x05, 0x00] {
        return Ok(());
    }
    Err(ParseError::Der(
        "RSASSA-PSS parameters: a hash's parameters are neither absent nor NULL".into(),
    ))
}

/// Reads `T` with x509-parser from exactly `bytes` (one element our walk framed).
fn read_exactly<'a, T, E>(bytes: &'a [u8], what: &str) -> Result<T, ParseError>
where
    T: FromDer<'a, E>,
    E: fmt::Debug,
{
    match T::from_der(bytes) {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(ParseError::Der(format!(
            "{what}: {} unexpected byte(s) after it",
            rest.len()
        ))),
        Err(e) => Err(ParseError::Der(format!("{what}: {e}"))),
    }
}

fn oid_string(oid: &Oid<'_>) -> String {
    oid.to_id_string()
}

fn oid_bytes_string(content: &[u8]) -> String {
    Oid::new(std::borrow::Cow::Borrowed(content)).to_id_string()
}

fn parse_der(der: &[u8]) -> Result<ParsedCsr, ParseError> {
    let shape = walk_shape(der)?;
    // Piece by piece rather than X509CertificationRequest::from_der: x509-parser fails the
    // whole request on a challengePassword it cannot read (an IA5String one, which Go ignores),
    // and that attribute gets its own reason in the attributes stage, not a DER error.
    let version: X509Version = read_exactly(shape.version, "version")?;
    let subject: X509Name<'_> = read_exactly(shape.subject, "subject")?;
    let spki: SubjectPublicKeyInfo<'_> = read_exactly(shape.spki, "subjectPKInfo")?;
    let signature_algorithm: AlgorithmIdentifier<'_> =
        read_exactly(shape.signature_algorithm, "signatureAlgorithm")?;
    let signature_value: BitString<'_> = read_exactly(shape.signature, "signature")?;
    let mut attributes = Vec::with_capacity(shape.attributes.len());
    for attr in &shape.attributes {
        if attr.oid != OID_PKCS9_CHALLENGE_PASSWORD.as_bytes() {
            let parsed: X509CriAttribute<'_> = read_exactly(attr.raw, "attribute")?;
            attributes.push(parsed);
        }
    }
    if version.0 != 0 {
        return Err(ParseError::Version(version.0.to_string()));
    }

    let extensions = check_attributes(&shape, &attributes)?;
    let (subject, common_names, organizations) = read_subject(&subject)?;
    let mut sans = Sans::default();
    let mut requested_extensions = Vec::with_capacity(extensions.len());
    for ext in &extensions {
        requested_extensions.push(read_extension(ext, &mut sans)?);
    }

    let key = read_public_key(&spki)?;
    let sig = self::signature_algorithm(&signature_algorithm, &key)?;
    if signature_value.unused_bits != 0 {
        return Err(ParseError::BadSignature);
    }
    ring::signature::UnparsedPublicKey::new(sig.verify, key.bytes)
        .verify(shape.tbs, &signature_value.data)
        .map_err(|_| ParseError::BadSignature)?;

    Ok(ParsedCsr {
        subject,
        common_names,
        organizations,
        dns_names: sans.dns,
        ip_addresses: sans.ip,
        email_addresses: sans.email,
        uris: sans.uri,
        other_names: sans.other,
        public_key: key.info,
        signature_algorithm: sig.go_name.to_owned(),
        requested_extensions,
        attributes: shape
            .attributes
            .iter()
            .map(|a| oid_bytes_string(a.oid))
            .collect(),
    })
}

/// SANs collected across the request's SAN extension.
#[derive(Default)]
struct Sans {
    dns: Vec<String>,
    ip: Vec<IpAddr>,
    email: Vec<String>,
    uri: Vec<String>,
    other: Vec<String>,
}

/// Enforces unique attributes with exactly one value each, no challengePassword, and unique
/// extension OIDs across the (single) extensionRequest. Returns the requested extensions.
/// `attributes` is x509-parser's reading of every attribute except a challengePassword.
fn check_attributes<'a, 'b>(
    shape: &Shape<'_>,
    attributes: &'b [X509CriAttribute<'a>],
) -> Result<Vec<&'b X509Extension<'a>>, ParseError> {
    // Sorted, not pairwise: a 64 KiB request can carry thousands of tiny attributes.
    let mut oids: Vec<&[u8]> = shape.attributes.iter().map(|a| a.oid).collect();
    oids.sort_unstable();
    if let Some(dup) = oids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ParseError::DuplicateAttribute {
            oid: oid_bytes_string(dup[0]),
        });
    }
    if let Some(a) = shape.attributes.iter().find(|a| a.values != 1) {
        return Err(ParseError::AttributeValueCount {
            oid: oid_bytes_string(a.oid),
            count: a.values,
        });
    }
    // Refused whatever its string type, see docs/security.md.
    if shape
        .attributes
        .iter()
        .any(|a| a.oid == OID_PKCS9_CHALLENGE_PASSWORD.as_bytes())
    {
        return Err(ParseError::ChallengePassword);
    }
    if attributes.len() != shape.attributes.len() {
        return Err(ParseError::Der(
            "attribute list framing is inconsistent".into(),
        ));
    }

    let mut extensions: Vec<&X509Extension<'a>> = Vec::new();
    for attr in attributes {
        if let ParsedCriAttribute::ExtensionRequest(request) = attr.parsed_attribute() {
            extensions.extend(request.extensions.iter());
        }
    }
    let mut oids: Vec<&[u8]> = extensions.iter().map(|e| e.oid.as_bytes()).collect();
    oids.sort_unstable();
    if let Some(dup) = oids.windows(2).find(|w| w[0] == w[1]) {
        return Err(ParseError::DuplicateExtension {
            oid: oid_bytes_string(dup[0]),
        });
    }
    for ext in &extensions {
        // x509-parser drops bytes after an extension's value; Go refuses them.
        der::exactly_one(ext.value).map_err(|e| ParseError::InvalidExtension {
            oid: oid_string(&ext.oid),
            reason: e.to_string(),
        })?;
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(ParseError::InvalidExtension {
                oid: oid_string(&ext.oid),
                reason: error.to_string(),
            });
        }
    }
    Ok(extensions)
}

fn short_attr_name(oid: &Oid<'_>) -> Option<&'static str> {
    use oid_registry::*;
    let table: [(&Oid<'static>, &'static str); 8] = [
        (&OID_X509_COMMON_NAME, "CN"),
        (&OID_X509_ORGANIZATION_NAME, "O"),
        (&OID_X509_ORGANIZATIONAL_UNIT, "OU"),
        (&OID_X509_COUNTRY_NAME, "C"),
        (&OID_X509_LOCALITY_NAME, "L"),
        (&OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        (&OID_X509_SERIALNUMBER, "SERIALNUMBER"),
        (&OID_PKCS9_EMAIL_ADDRESS, "emailAddress"),
    ];
    table.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n)
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

type Subject = (String, Vec<String>, Vec<String>);

/// What a subject attribute value is, judged the way Go's `encoding/asn1` decodes it into an
/// `any` when kube-apiserver parses a CSR (`asn1.Unmarshal` into `pkix.RDNSequence`).
enum SubjectValue<'a> {
    /// One of the four string types x509-parser reads, with content Go accepts.
    Text(&'a str),
    /// A value Go decodes without any check (T61String, OCTET STRING, a type Go does not know,
    /// a constructed or non-universal value) or a BMPString Go accepts: shown in hex.
    Opaque,
}

fn subject_value<'a>(atv: &AttributeTypeAndValue<'a>) -> Result<SubjectValue<'a>, ParseError> {
    let value = atv.attr_value();
    let oid = || oid_string(atv.attr_type());
    if value.class() != Class::Universal || value.header.constructed() {
        return Ok(SubjectValue::Opaque);
    }
    let tag = u8::try_from(value.tag().0).unwrap_or(u8::MAX);
    if let Some(ty) = der::StringType::from_tag(tag) {
        der::check_go_string(ty, value.data).map_err(|e| ParseError::SubjectStringContent {
            oid: oid(),
            string_type: ty.name(),
            reason: e.to_string(),
        })?;
        return Ok(match ty {
            der::StringType::Utf8
            | der::StringType::Numeric
            | der::StringType::Printable
            | der::StringType::Ia5 => match std::str::from_utf8(value.data) {
                Ok(s) => SubjectValue::Text(s),
                // Unreachable after the Go check (ASCII or valid UTF-8); refuse, never guess.
                Err(_) => {
                    return Err(ParseError::SubjectStringContent {
                        oid: oid(),
                        string_type: ty.name(),
                        reason: "not UTF-8".into(),
                    });
                }
            },
            der::StringType::T61 | der::StringType::Bmp => SubjectValue::Opaque,
        });
    }
    // Types Go decodes and validates (and would refuse when malformed); rather than copy each
    // of its parsers, tlsboot refuses them outright. No encoder puts them in a CSR subject.
    let validated_by_go = match tag {
        0x01 => Some("BOOLEAN"),
        0x02 => Some("INTEGER"),
        0x03 => Some("BIT STRING"),
        0x06 => Some("OBJECT IDENTIFIER"),
        0x17 => Some("UTCTime"),
        0x18 => Some("GeneralizedTime"),
        _ => None,
    };
    match validated_by_go {
        Some(value_type) => Err(ParseError::SubjectValueType {
            oid: oid(),
            value_type,
        }),
        None => Ok(SubjectValue::Opaque),
    }
}

fn read_subject(name: &X509Name<'_>) -> Result<Subject, ParseError> {
    let mut text = String::new();
    let mut cns = Vec::new();
    let mut orgs = Vec::new();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                text.push('+');
            }
            let oid = atv.attr_type();
            let is_cn = *oid == oid_registry::OID_X509_COMMON_NAME;
            let is_o = *oid == oid_registry::OID_X509_ORGANIZATION_NAME;
            // Every value is checked, not only CN and O: Go refuses the whole request when any
            // subject value is malformed for its type.
            let value = match subject_value(atv)? {
                SubjectValue::Text(s) => Some(s),
                // Go skips values that are not strings (and reads T61String and BMPString);
                // for the two attributes policy reads, anything but the four string types is
                // refused rather than skipped or decoded differently.
                SubjectValue::Opaque if is_cn || is_o => {
                    return Err(ParseError::InvalidSubjectString {
                        oid: oid_string(oid),
                    });
                }
                SubjectValue::Opaque => None,
            };
            match short_attr_name(oid) {
                Some(n) => text.push_str(n),
                None => text.push_str(&oid_string(oid)),
            }
            text.push('=');
            match value {
                Some(v) => text.push_str(v),
                None => {
                    text.push('#');
                    text.push_str(&hex(atv.as_slice()));
                }
            }
            if let Some(v) = value {
                if is_cn {
                    cns.push(v.to_owned());
                } else if is_o {
                    orgs.push(v.to_owned());
                }
            }
        }
    }
    Ok((text, cns, orgs))
}

fn read_extension(
    ext: &X509Extension<'_>,
    sans: &mut Sans,
) -> Result<RequestedExtension, ParseError> {
    let oid = oid_string(&ext.oid);
    let name = x509_parser::objects::oid2sn(&ext.oid, x509_parser::objects::oid_registry())
        .ok()
        .map(str::to_owned);
    let summary = match ext.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            check_san_encoding(ext.value)?;
            for gn in &san.general_names {
                read_general_name(gn, sans)?;
            }
            None
        }
        ParsedExtension::KeyUsage(ku) => Some(ku.to_string()),
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let mut parts: Vec<String> = Vec::new();
            for (set, label) in [
                (eku.any, "any"),
                (eku.server_auth, "server auth"),
                (eku.client_auth, "client auth"),
                (eku.code_signing, "code signing"),
                (eku.email_protection, "email protection"),
                (eku.time_stamping, "timestamping"),
                (eku.ocsp_signing, "ocsp signing"),
            ] {
                if set {
                    parts.push(label.to_owned());
                }
            }
            parts.extend(eku.other.iter().map(oid_string));
            Some(parts.join(", "))
        }
        ParsedExtension::BasicConstraints(bc) => Some(match bc.path_len_constraint {
            Some(n) => format!("CA:{}, pathlen:{n}", bc.ca),
            None => format!("CA:{}", bc.ca),
        }),
        _ => None,
    };
    Ok(RequestedExtension {
        oid,
        name,
        critical: ext.critical,
        summary,
    })
}

/// Go's `parseSANExtension` check for the three IA5String name types (`isIA5String`): every
/// character ASCII. x509-parser accepts any UTF-8 there.
fn ia5_san(kind: &str, value: &str) -> Result<String, ParseError> {
    match der::check_go_string(der::StringType::Ia5, value.as_bytes()) {
        Ok(()) => Ok(value.to_owned()),
        Err(e) => Err(ParseError::InvalidSan(format!(
            "{kind} is not an IA5String: {e}"
        ))),
    }
}

/// DER form of each GeneralName choice: `[1]`, `[2]`, `[6]` (IA5String), `[7]` (OCTET STRING)
/// and `[8]` (OID) are primitive; `[0]`, `[3]`, `[4]` (explicit Name) and `[5]` are
/// constructed. Go reads a name by its whole identifier octet (`tag ^ 0x80`), so it ignores a
/// constructed `[2]`, while x509-parser reads it as a dNSName: refused, so both see the same
/// names.
fn check_san_encoding(value: &[u8]) -> Result<(), ParseError> {
    let bad = |what: String| ParseError::InvalidSan(what);
    let seq = der::exactly_one(value).map_err(|e| bad(e.to_string()))?;
    if seq.tag != der::TAG_SEQUENCE {
        return Err(bad("GeneralNames is not a SEQUENCE".into()));
    }
    for entry in Elements::new(seq.content) {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let number = entry.tag & 0x1f;
        let constructed = entry.tag & 0x20 != 0;
        if entry.tag & 0xc0 != 0x80 {
            return Err(bad(format!(
                "entry with tag 0x{:02x} is not context-specific",
                entry.tag
            )));
        }
        let want_constructed = match number {
            0 | 3 | 4 | 5 => true,
            1 | 2 | 6 | 7 | 8 => false,
            _ => {
                return Err(bad(format!(
                    "entry with tag [{number}] is not a GeneralName"
                )));
            }
        };
        if constructed != want_constructed {
            return Err(bad(format!(
                "entry [{number}] is {}; DER encodes it {}",
                if constructed {
                    "constructed"
                } else {
                    "primitive"
                },
                if want_constructed {
                    "constructed"
                } else {
                    "primitive"
                },
            )));
        }
    }
    Ok(())
}

fn read_general_name(gn: &GeneralName<'_>, sans: &mut Sans) -> Result<(), ParseError> {
    match gn {
        GeneralName::DNSName(s) => sans.dns.push(ia5_san("dNSName", s)?),
        GeneralName::RFC822Name(s) => sans.email.push(ia5_san("rfc822Name", s)?),
        GeneralName::URI(s) => {
            let uri = ia5_san("uniformResourceIdentifier", s)?;
            // Go then runs url.Parse, whose first check is this one. The rest of its URL
            // grammar is not copied: every URI SAN fails `no-uri-sans` for both signers anyway.
            if let Some(offset) = uri.bytes().position(|b| b < 0x20 || b == 0x7f) {
                return Err(ParseError::InvalidSan(format!(
                    "uniformResourceIdentifier has a control character at offset {offset}"
                )));
            }
            sans.uri.push(uri);
        }
        GeneralName::IPAddress(bytes) => {
            let ip = if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                IpAddr::V4(Ipv4Addr::from(v4))
            } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                IpAddr::V6(Ipv6Addr::from(v6))
            } else {
                return Err(ParseError::InvalidSan(format!(
                    "IP address of length {}",
                    bytes.len()
                )));
            };
            sans.ip.push(ip);
        }
        GeneralName::OtherName(oid, _) => sans.other.push(format!("otherName:{}", oid_string(oid))),
        GeneralName::DirectoryName(name) => sans.other.push(format!("dirName:{name}")),
        GeneralName::RegisteredID(oid) => {
            sans.other.push(format!("registeredID:{}", oid_string(oid)))
        }
        GeneralName::X400Address(_) => sans.other.push("x400Address".to_owned()),
        GeneralName::EDIPartyName(_) => sans.other.push("ediPartyName".to_owned()),
        GeneralName::Invalid(tag, _) => {
            return Err(ParseError::InvalidSan(format!(
                "entry with tag [{}] does not decode",
                tag.0
            )));
        }
    }
    Ok(())
}

/// The key as ring wants it, plus what we report.
struct Key<'a> {
    info: PublicKeyInfo,
    /// RSAPublicKey DER, uncompressed EC point, or the raw Ed25519 key.
    bytes: &'a [u8],
}

fn read_public_key<'a>(spki: &'a SubjectPublicKeyInfo<'_>) -> Result<Key<'a>, ParseError> {
    use oid_registry::*;
    let alg = &spki.algorithm;
    if spki.subject_public_key.unused_bits != 0 {
        return Err(ParseError::InvalidPublicKey(
            "key BIT STRING has unused bits".into(),
        ));
    }
    let bytes: &[u8] = &spki.subject_public_key.data;
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        // Go requires the NULL parameters (x509: RSA key missing NULL parameters).
        let null_params = alg
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag() == x509_parser::asn1_rs::Tag::Null && p.data.is_empty());
        if !null_params {
            return Err(ParseError::InvalidPublicKey(
                "RSA key parameters must be NULL".into(),
            ));
        }
        let bits = rsa_modulus_bits(bytes)?;
        if bits < MIN_RSA_BITS {
            return Err(ParseError::RsaKeyTooSmall { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(ParseError::RsaKeyTooLarge { bits });
        }
        Ok(Key {
            info: PublicKeyInfo {
                algorithm: KeyAlgorithm::Rsa,
                bits,
            },
            bytes,
        })
    } else if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| ParseError::InvalidPublicKey("EC key without a named curve".into()))?;
        let (algorithm, bits, point_len) = if curve == OID_EC_P256 {
            (KeyAlgorithm::EcdsaP256, 256, 65)
        } else if curve == OID_NIST_EC_P384 {
            (KeyAlgorithm::EcdsaP384, 384, 97)
        } else if curve == OID_NIST_EC_P521 {
            return Err(ParseError::UnsupportedCurve {
                curve: "P-521".into(),
            });
        } else {
            return Err(ParseError::UnsupportedCurve {
                curve: oid_string(&curve),
            });
        };
        if bytes.len() != point_len || bytes.first() != Some(&0x04) {
            return Err(ParseError::InvalidPublicKey(
                "EC point is not an uncompressed point on the named curve".into(),
            ));
        }
        Ok(Key {
            info: PublicKeyInfo { algorithm, bits },
            bytes,
        })
    } else if alg.algorithm == OID_SIG_ED25519 {
        if alg.parameters.is_some() {
            return Err(ParseError::InvalidPublicKey(
                "Ed25519 key must not have parameters".into(),
            ));
        }
        if bytes.len() != 32 {
            return Err(ParseError::InvalidPublicKey(format!(
                "Ed25519 key is {} bytes, not 32",
                bytes.len()
            )));
        }
        Ok(Key {
            info: PublicKeyInfo {
                algorithm: KeyAlgorithm::Ed25519,
                bits: 256,
            },
            bytes,
        })
    } else {
        Err(ParseError::UnsupportedKeyAlgorithm {
            oid: oid_string(&alg.algorithm),
        })
    }
}

/// Bits in the modulus of an RSAPublicKey, after checking its DER shape.
fn rsa_modulus_bits(key: &[u8]) -> Result<u32, ParseError> {
    let bad = |what: &str| ParseError::InvalidPublicKey(format!("RSA key: {what}"));
    let seq = der::exactly_one(key).map_err(|e| bad(&e.to_string()))?;
    if seq.tag != der::TAG_SEQUENCE {
        return Err(bad("not a SEQUENCE"));
    }
    let (n, rest) = der::expect(seq.content, der::TAG_INTEGER).map_err(|e| bad(&e.to_string()))?;
    let e = der::exactly_one(rest).map_err(|e| bad(&e.to_string()))?;
    if e.tag != der::TAG_INTEGER {
        return Err(bad("exponent is not an INTEGER"));
    }
    let n = positive_integer(n.content)
        .ok_or_else(|| bad("modulus is not a positive minimal INTEGER"))?;
    let e = positive_integer(e.content)
        .ok_or_else(|| bad("exponent is not a positive minimal INTEGER"))?;
    // ring accepts odd exponents from 3 up to 2^33-1; say so here rather than as a bad signature.
    let exponent_ok = e.len() <= 5
        && e.last().is_some_and(|b| b & 1 == 1)
        && !(e.len() == 1 && e.first().is_some_and(|&b| b < 3))
        && !(e.len() == 5 && e.first().is_some_and(|&b| b > 1));
    if !exponent_ok {
        return Err(bad(
            "public exponent must be odd, at least 3 and below 2^33",
        ));
    }
    let first = n.first().copied().unwrap_or(0);
    let bits = (n.len().saturating_sub(1)) * 8 + (8 - first.leading_zeros() as usize);
    Ok(u32::try_from(bits).unwrap_or(u32::MAX))
}

/// The magnitude bytes of a positive, minimally encoded DER INTEGER (leading zero stripped).
fn positive_integer(content: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = content.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    if first == 0 {
        // A leading zero is only allowed (and required) before a byte with its top bit set.
        let (&second, _) = rest.split_first()?;
        if second & 0x80 == 0 {
            return None;
        }
        return Some(rest);
    }
    Some(content)
}

/// An allow-listed signature algorithm, resolved against the key.
struct Sig {
    go_name: &'static str,
    verify: &'static dyn ring::signature::VerificationAlgorithm,
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// Signature algorithms refused by name: broken hashes and algorithms Go knows but we do not.
const WEAK_SIGNATURE_ALGORITHMS: [(&str, &str); 8] = [
    ("1.2.840.113549.1.1.2", "MD2-RSA"),
    ("1.2.840.113549.1.1.3", "MD4-RSA"),
    ("1.2.840.113549.1.1.4", "MD5-RSA"),
    ("1.2.840.113549.1.1.5", "SHA1-RSA"),
    ("1.3.14.3.2.29", "SHA1-RSA"),
    ("1.2.840.10045.4.1", "ECDSA-SHA1"),
    ("1.2.840.10040.4.3", "DSA-SHA1"),
    ("1.3.14.3.2.27", "DSA-SHA1"),
];
const OTHER_SIGNATURE_ALGORITHMS: [(&str, &str); 6] = [
    ("1.2.840.113549.1.1.14", "SHA224-RSA"),
    ("1.2.840.10045.4.3.1", "ECDSA-SHA224"),
    ("1.2.840.10045.4.3.4", "ECDSA-SHA512"),
    ("2.16.840.1.101.3.4.3.2", "DSA-SHA256"),
    ("1.3.101.113", "Ed448"),
    (
        "1.2.840.113549.1.1.1",
        "rsaEncryption (not a signature algorithm)",
    ),
];

fn key_name(key: &Key<'_>) -> String {
    key.info.to_string()
}

fn signature_algorithm(alg: &AlgorithmIdentifier<'_>, key: &Key<'_>) -> Result<Sig, ParseError> {
    use oid_registry::*;
    use ring::signature as rs;
    let oid = &alg.algorithm;
    let mismatch = |name: &str| ParseError::SignatureKeyMismatch {
        signature: name.to_owned(),
        key: key_name(key),
    };
    let rsa_pkcs1 = [
        (
            &OID_PKCS1_SHA256WITHRSA,
            "SHA256-RSA",
            &rs::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            &OID_PKCS1_SHA384WITHRSA,
            "SHA384-RSA",
            &rs::RSA_PKCS1_2048_8192_SHA384,
        ),
        (
            &OID_PKCS1_SHA512WITHRSA,
            "SHA512-RSA",
            &rs::RSA_PKCS1_2048_8192_SHA512,
        ),
    ];
    for (o, name, verify) in rsa_pkcs1 {
        if oid == o {
            if key.info.algorithm != KeyAlgorithm::Rsa {
                return Err(mismatch(name));
            }
            return Ok(Sig {
                go_name: name,
                verify,
            });
        }
    }
    if *oid == OID_PKCS1_RSASSAPSS {
        let hash = pss_hash(alg)?;
        let (name, verify): (&'static str, &'static dyn rs::VerificationAlgorithm) = match hash {
            Hash::Sha256 => ("SHA256-RSAPSS", &rs::RSA_PSS_2048_8192_SHA256),
            Hash::Sha384 => ("SHA384-RSAPSS", &rs::RSA_PSS_2048_8192_SHA384),
            Hash::Sha512 => ("SHA512-RSAPSS", &rs::RSA_PSS_2048_8192_SHA512),
        };
        if key.info.algorithm != KeyAlgorithm::Rsa {
            return Err(mismatch(name));
        }
        return Ok(Sig {
            go_name: name,
            verify,
        });
    }
    for (o, name, hash) in [
        (&OID_SIG_ECDSA_WITH_SHA256, "ECDSA-SHA256", Hash::Sha256),
        (&OID_SIG_ECDSA_WITH_SHA384, "ECDSA-SHA384", Hash::Sha384),
    ] {
        if oid == o {
            let verify: &'static dyn rs::VerificationAlgorithm = match (key.info.algorithm, hash) {
                (KeyAlgorithm::EcdsaP256, Hash::Sha256) => &rs::ECDSA_P256_SHA256_ASN1,
                (KeyAlgorithm::EcdsaP256, _) => &rs::ECDSA_P256_SHA384_ASN1,
                (KeyAlgorithm::EcdsaP384, Hash::Sha256) => &rs::ECDSA_P384_SHA256_ASN1,
                (KeyAlgorithm::EcdsaP384, _) => &rs::ECDSA_P384_SHA384_ASN1,
                _ => return Err(mismatch(name)),
            };
            return Ok(Sig {
                go_name: name,
                verify,
            });
        }
    }
    if *oid == OID_SIG_ED25519 {
        if key.info.algorithm != KeyAlgorithm::Ed25519 {
            return Err(mismatch("Ed25519"));
        }
        return Ok(Sig {
            go_name: "Ed25519",
            verify: &rs::ED25519,
        });
    }
    let dotted = oid_string(oid);
    if let Some((_, name)) = WEAK_SIGNATURE_ALGORITHMS.iter().find(|(o, _)| *o == dotted) {
        return Err(ParseError::WeakSignatureAlgorithm {
            algorithm: (*name).to_owned(),
        });
    }
    let algorithm = match OTHER_SIGNATURE_ALGORITHMS
        .iter()
        .find(|(o, _)| *o == dotted)
    {
        Some((_, name)) => (*name).to_owned(),
        None => dotted,
    };
    Err(ParseError::UnsupportedSignatureAlgorithm { algorithm })
}

/// RSASSA-PSS parameters ring can verify: SHA-256/384/512, MGF1 with the same hash, a salt as
/// long as the hash, trailer 1.
fn pss_hash(alg: &AlgorithmIdentifier<'_>) -> Result<Hash, ParseError> {
    use oid_registry::*;
    use x509_parser::signature_algorithm::RsaSsaPssParams;
    let bad = |s: &str| ParseError::UnsupportedPssParameters(s.to_owned());
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| bad("parameters are missing"))?;
    let params = RsaSsaPssParams::try_from(params).map_err(|e| bad(&e.to_string()))?;
    let hash_oid = params.hash_algorithm_oid();
    let (hash, salt) = if *hash_oid == OID_NIST_HASH_SHA256 {
        (Hash::Sha256, 32)
    } else if *hash_oid == OID_NIST_HASH_SHA384 {
        (Hash::Sha384, 48)
    } else if *hash_oid == OID_NIST_HASH_SHA512 {
        (Hash::Sha512, 64)
    } else if *hash_oid == OID_HASH_SHA1 {
        return Err(ParseError::WeakSignatureAlgorithm {
            algorithm: "SHA1-RSAPSS".into(),
        });
    } else {
        return Err(bad(&format!("hash {}", oid_string(hash_oid))));
    };
    let mgf = params
        .mask_gen_algorithm()
        .map_err(|e| bad(&e.to_string()))?;
    if mgf.mgf.to_id_string() != "1.2.840.113549.1.1.8" || mgf.hash != *hash_oid {
        return Err(bad(
            "mask generation must be MGF1 with the signature's hash",
        ));
    }
    if params.salt_length() != salt {
        return Err(bad(&format!(
            "salt length {} (must equal the hash length, {salt})",
            params.salt_length()
        )));
    }
    if params.trailer_field() != 1 {
        return Err(bad("trailer field must be 1"));
    }
    Ok(hash)
}
