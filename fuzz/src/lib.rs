//! An independent oracle for the fuzz targets: it reads a `spec.request` with its own PEM
//! decoder and its own strict DER walk, verifies the self-signature with the RustCrypto crates
//! (`rsa`, `p256`, `p384`, `ed25519-dalek`), and decides on its own whether a CSR is a valid
//! kubelet client request under upstream's `ValidateKubeletClientCSR` plus tlsboot's documented
//! hardening (docs/security.md).
//!
//! Nothing here calls tlsboot: the point is that a bug in the policy's parser (x509-parser,
//! ring, the policy's DER walker) cannot hide behind itself. Where the two could reasonably
//! differ, the oracle is the *stricter* reader for the rules that grant an approval, so that
//! "the policy authorized it" ⇒ "the oracle says authorizable" is the property to fuzz.

use std::collections::BTreeSet;

pub const SIGNER_KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// The spec fields the content rules read (the requester only chooses the SubjectAccessReviews,
/// which the `decide` target checks itself).
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub signer_name: &'a str,
    pub usages: &'a [String],
    pub approved: bool,
    pub denied: bool,
    pub issued: bool,
}

/// Why the oracle refuses a request. Only used to explain a disagreement when a target fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

fn no<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

// ------------------------------------------------------------------------------------------
// PEM and base64, written from RFC 7468 / RFC 4648 rather than from the policy's decoder.

/// The DER inside the first `CERTIFICATE REQUEST` block. Looser than the policy (it ignores
/// any text around the block and all whitespace inside it, vertical tab included, as the
/// policy's base64 does), which is the safe side for an oracle: a request the policy accepts
/// must decode here too.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, Refusal> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE REQUEST-----";
    const END: &[u8] = b"-----END CERTIFICATE REQUEST-----";
    let start = find(pem, BEGIN).ok_or_else(|| Refusal("no BEGIN line".into()))? + BEGIN.len();
    let body_len = find(&pem[start..], END).ok_or_else(|| Refusal("no END line".into()))?;
    let body: Vec<u8> = pem[start..start + body_len]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != 0x0b)
        .collect();
    base64_decode(&body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn base64_decode(body: &[u8]) -> Result<Vec<u8>, Refusal> {
    if body.len() % 4 != 0 {
        return no("base64 body length is not a multiple of 4");
    }
    let pad = body.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return no("too much base64 padding");
    }
    let data = &body[..body.len() - pad];
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return no("byte outside the base64 alphabet"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// A strict DER reader: definite minimal lengths, low tag numbers, nothing trailing.

#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    raw: &'a [u8],
}

fn tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Refusal> {
    let Some((&tag, rest)) = input.split_first() else {
        return no("DER: empty");
    };
    if tag & 0x1f == 0x1f {
        return no("DER: high tag number");
    }
    let Some((&l0, mut rest)) = rest.split_first() else {
        return no("DER: no length");
    };
    let len = if l0 & 0x80 == 0 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return no("DER: bad long-form length");
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        if bytes[0] == 0 {
            return no("DER: length with a leading zero");
        }
        let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if len < 0x80 {
            return no("DER: long form for a short length");
        }
        len
    };
    if rest.len() < len {
        return no("DER: truncated");
    }
    let header = input.len() - rest.len();
    let raw = &input[..header + len];
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
            raw,
        },
        &rest[len..],
    ))
}

fn take<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(Tlv<'a>, &'a [u8]), Refusal> {
    let (t, rest) = tlv(input)?;
    if t.tag != tag {
        return no(format!("{what}: tag 0x{:02x}, want 0x{tag:02x}", t.tag));
    }
    Ok((t, rest))
}

fn only<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>, Refusal> {
    let (t, rest) = take(input, tag, what)?;
    if !rest.is_empty() {
        return no(format!("{what}: trailing bytes"));
    }
    Ok(t)
}

fn children(content: &[u8]) -> Result<Vec<Tlv<'_>>, Refusal> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (t, r) = tlv(rest)?;
        out.push(t);
        rest = r;
    }
    Ok(out)
}

const SEQ: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INT: u8 = 0x02;
const BITS: u8 = 0x03;
const OCTETS: u8 = 0x04;
const NULL: u8 = 0x05;
const BOOL: u8 = 0x01;

// OIDs as DER content bytes.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
const OID_EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

// ------------------------------------------------------------------------------------------
// The request as the oracle reads it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn from_oid(oid: &[u8]) -> Option<Hash> {
        match oid {
            OID_SHA256 => Some(Hash::Sha256),
            OID_SHA384 => Some(Hash::Sha384),
            OID_SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    P256,
    P384,
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
    Ed25519,
}

/// What the oracle read. Strings of the subject are raw value bytes with their tag.
#[derive(Debug, Clone)]
pub struct Request {
    pub common_names: Vec<(u8, Vec<u8>)>,
    pub organizations: Vec<(u8, Vec<u8>)>,
    /// Every GeneralName entry of every subjectAltName extension in every value of every
    /// extensionRequest attribute, as (tag, content).
    pub san_entries: Vec<(u8, Vec<u8>)>,
    pub key: KeyKind,
    pub signature_algorithm: SigAlg,
}

/// Reads and verifies a DER CertificationRequest. `Ok` means: well-formed for the oracle, an
/// allow-listed key and signature algorithm that match, and a signature that verifies.
pub fn read_request(der: &[u8]) -> Result<Request, Refusal> {
    let outer = only(der, SEQ, "CertificationRequest")?;
    let (info, rest) = take(outer.content, SEQ, "certificationRequestInfo")?;
    let (alg, rest) = take(rest, SEQ, "signatureAlgorithm")?;
    let sig = only(rest, BITS, "signature")?;

    let (version, rest) = take(info.content, INT, "version")?;
    if version.content != [0] {
        return no("version is not 0");
    }
    let (subject, rest) = take(rest, SEQ, "subject")?;
    let (spki, rest) = take(rest, SEQ, "subjectPKInfo")?;
    let attributes = only(rest, 0xa0, "attributes")?;

    let (common_names, organizations) = read_subject(subject.content)?;
    let san_entries = read_attributes(attributes.content)?;
    let (key, key_bytes) = read_spki(spki.content)?;
    let signature_algorithm = read_signature_algorithm(alg.content)?;

    let Some((&unused, signature)) = sig.content.split_first() else {
        return no("empty signature BIT STRING");
    };
    if unused != 0 {
        return no("signature BIT STRING has unused bits");
    }
    verify(key, key_bytes, signature_algorithm, info.raw, signature)?;
    Ok(Request {
        common_names,
        organizations,
        san_entries,
        key,
        signature_algorithm,
    })
}

type Values = Vec<(u8, Vec<u8>)>;

fn read_subject(content: &[u8]) -> Result<(Values, Values), Refusal> {
    let mut cns = Vec::new();
    let mut orgs = Vec::new();
    for rdn in children(content)? {
        if rdn.tag != SET {
            return no("RDN is not a SET");
        }
        let atvs = children(rdn.content)?;
        if atvs.is_empty() {
            return no("empty RDN");
        }
        for atv in atvs {
            if atv.tag != SEQ {
                return no("AttributeTypeAndValue is not a SEQUENCE");
            }
            let (oid, rest) = take(atv.content, OID, "attribute type")?;
            let (value, rest) = tlv(rest)?;
            if !rest.is_empty() {
                return no("AttributeTypeAndValue has trailing bytes");
            }
            let into = match oid.content {
                OID_CN => &mut cns,
                OID_O => &mut orgs,
                _ => continue,
            };
            into.push((value.tag, value.content.to_vec()));
        }
    }
    Ok((cns, orgs))
}

/// Every SAN entry found anywhere an extension can be requested.
fn read_attributes(content: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, Refusal> {
    let mut sans = Vec::new();
    for attr in children(content)? {
        if attr.tag != SEQ {
            return no("attribute is not a SEQUENCE");
        }
        let (oid, rest) = take(attr.content, OID, "attribute type")?;
        let values = only(rest, SET, "attribute values")?;
        if oid.content != OID_EXTENSION_REQUEST {
            continue;
        }
        // Every value, not only the first: a second value is where a SAN could hide.
        for value in children(values.content)? {
            if value.tag != SEQ {
                return no("extensionRequest value is not a SEQUENCE");
            }
            for ext in children(value.content)? {
                if ext.tag != SEQ {
                    return no("extension is not a SEQUENCE");
                }
                let (ext_oid, mut rest) = take(ext.content, OID, "extension id")?;
                if rest.first() == Some(&BOOL) {
                    rest = take(rest, BOOL, "critical")?.1;
                }
                let value = only(rest, OCTETS, "extension value")?;
                if ext_oid.content == OID_SAN {
                    let names = only(value.content, SEQ, "GeneralNames")?;
                    for name in children(names.content)? {
                        sans.push((name.tag, name.content.to_vec()));
                    }
                }
            }
        }
    }
    Ok(sans)
}

fn read_spki(content: &[u8]) -> Result<(KeyKind, &[u8]), Refusal> {
    let (alg, rest) = take(content, SEQ, "key algorithm")?;
    let key = only(rest, BITS, "subjectPublicKey")?;
    let Some((&unused, key_bytes)) = key.content.split_first() else {
        return no("empty key BIT STRING");
    };
    if unused != 0 {
        return no("key BIT STRING has unused bits");
    }
    let (oid, params) = take(alg.content, OID, "key algorithm id")?;
    let kind = match oid.content {
        OID_RSA => {
            // Go: "x509: RSA key missing NULL parameters".
            let null = only(params, NULL, "RSA key parameters")?;
            if !null.content.is_empty() {
                return no("RSA NULL parameters are not empty");
            }
            let rsa = only(key_bytes, SEQ, "RSAPublicKey")?;
            let (n, rest) = take(rsa.content, INT, "modulus")?;
            let e = only(rest, INT, "exponent")?;
            let n = unsigned(n.content)?;
            unsigned(e.content)?;
            let bits = n.len() * 8 - n[0].leading_zeros() as usize;
            if !(2048..=8192).contains(&bits) {
                return no(format!("RSA modulus of {bits} bits"));
            }
            KeyKind::Rsa { bits }
        }
        OID_EC => {
            let curve = only(params, OID, "named curve")?;
            let (kind, len) = match curve.content {
                OID_P256 => (KeyKind::P256, 65),
                OID_P384 => (KeyKind::P384, 97),
                _ => return no("curve is not P-256 or P-384"),
            };
            if key_bytes.len() != len || key_bytes[0] != 0x04 {
                return no("EC point is not uncompressed");
            }
            kind
        }
        OID_ED25519 => {
            if !params.is_empty() {
                return no("Ed25519 key with parameters");
            }
            if key_bytes.len() != 32 {
                return no("Ed25519 key is not 32 bytes");
            }
            KeyKind::Ed25519
        }
        _ => return no("key algorithm not allowed"),
    };
    Ok((kind, key_bytes))
}

/// A positive, minimally encoded INTEGER's magnitude (no sign byte).
fn unsigned(content: &[u8]) -> Result<&[u8], Refusal> {
    match content {
        [] => no("empty INTEGER"),
        [b, ..] if b & 0x80 != 0 => no("negative INTEGER"),
        [0] => no("zero INTEGER"),
        [0, b, ..] if b & 0x80 == 0 => no("INTEGER with a needless leading zero"),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(content),
    }
}

fn read_signature_algorithm(content: &[u8]) -> Result<SigAlg, Refusal> {
    let (oid, params) = take(content, OID, "signature algorithm id")?;
    Ok(match oid.content {
        OID_SHA256_RSA => SigAlg::RsaPkcs1(Hash::Sha256),
        OID_SHA384_RSA => SigAlg::RsaPkcs1(Hash::Sha384),
        OID_SHA512_RSA => SigAlg::RsaPkcs1(Hash::Sha512),
        OID_ECDSA_SHA256 => SigAlg::Ecdsa(Hash::Sha256),
        OID_ECDSA_SHA384 => SigAlg::Ecdsa(Hash::Sha384),
        OID_ED25519 => SigAlg::Ed25519,
        OID_RSA_PSS => SigAlg::RsaPss(pss_hash(params)?),
        _ => return no("signature algorithm not allowed"),
    })
}

/// RFC 4055 RSASSA-PSS-params restricted to what docs/security.md allows: an explicit
/// SHA-256/384/512, MGF1 with the same hash, salt length = hash length, trailer 1.
fn pss_hash(params: &[u8]) -> Result<Hash, Refusal> {
    let seq = only(params, SEQ, "RSASSA-PSS-params")?;
    let mut fields = children(seq.content)?.into_iter().peekable();
    let hash_alg = match fields.next_if(|t| t.tag == 0xa0) {
        Some(t) => only(t.content, SEQ, "PSS hash")?,
        None => return no("PSS with the SHA-1 default hash"),
    };
    let hash = digest_algorithm(hash_alg.content)?;
    let Some(mgf) = fields.next_if(|t| t.tag == 0xa1) else {
        return no("PSS with the MGF1-SHA-1 default");
    };
    let mgf = only(mgf.content, SEQ, "PSS mask generation")?;
    let (mgf_oid, rest) = take(mgf.content, OID, "MGF id")?;
    if mgf_oid.content != OID_MGF1 {
        return no("PSS mask generation is not MGF1");
    }
    let mgf_hash = only(rest, SEQ, "MGF1 hash")?;
    if digest_algorithm(mgf_hash.content)? != hash {
        return no("MGF1 hash differs from the signature hash");
    }
    let Some(salt) = fields.next_if(|t| t.tag == 0xa2) else {
        return no("PSS with the default salt length 20");
    };
    let salt = only(salt.content, INT, "salt length")?;
    if unsigned(salt.content)? != [u8::try_from(hash.len()).unwrap_or(0)] {
        return no("PSS salt length differs from the hash length");
    }
    if let Some(trailer) = fields.next_if(|t| t.tag == 0xa3) {
        let t = only(trailer.content, INT, "trailer field")?;
        if t.content != [1] {
            return no("PSS trailer field is not 1");
        }
    }
    if fields.next().is_some() {
        return no("PSS params with extra fields");
    }
    Ok(hash)
}

/// A hash AlgorithmIdentifier: the OID, then nothing or NULL.
fn digest_algorithm(content: &[u8]) -> Result<Hash, Refusal> {
    let (oid, params) = take(content, OID, "hash id")?;
    if !params.is_empty() {
        let null = only(params, NULL, "hash parameters")?;
        if !null.content.is_empty() {
            return no("hash NULL parameters are not empty");
        }
    }
    Hash::from_oid(oid.content).ok_or_else(|| Refusal("hash not allowed".into()))
}

fn verify(
    key: KeyKind,
    key_bytes: &[u8],
    alg: SigAlg,
    signed: &[u8],
    sig: &[u8],
) -> Result<(), Refusal> {
    let bad = |what: &str| Refusal(format!("signature does not verify: {what}"));
    match (key, alg) {
        (KeyKind::Rsa { .. }, SigAlg::RsaPkcs1(h) | SigAlg::RsaPss(h)) => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let pk = rsa::PublicKey::from_pkcs1_der(key_bytes).map_err(|_| bad("RSA key"))?;
            let digest = h.digest(signed);
            let result = match (alg, h) {
                (SigAlg::RsaPkcs1(_), Hash::Sha256) => {
                    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, sig)
                }
                (SigAlg::RsaPkcs1(_), Hash::Sha384) => {
                    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &digest, sig)
                }
                (SigAlg::RsaPkcs1(_), Hash::Sha512) => {
                    pk.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), &digest, sig)
                }
                (_, Hash::Sha256) => pk.verify(rsa::Pss::<sha2::Sha256>::new(), &digest, sig),
                (_, Hash::Sha384) => pk.verify(rsa::Pss::<sha2::Sha384>::new(), &digest, sig),
                (_, Hash::Sha512) => pk.verify(rsa::Pss::<sha2::Sha512>::new(), &digest, sig),
            };
            result.map_err(|_| bad("RSA"))
        }
        (KeyKind::P256, SigAlg::Ecdsa(h)) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                .map_err(|_| bad("P-256 point"))?;
            let s = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad("ECDSA DER"))?;
            vk.verify_prehash(&h.digest(signed), &s)
                .map_err(|_| bad("P-256"))
        }
        (KeyKind::P384, SigAlg::Ecdsa(h)) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                .map_err(|_| bad("P-384 point"))?;
            let s = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad("ECDSA DER"))?;
            vk.verify_prehash(&h.digest(signed), &s)
                .map_err(|_| bad("P-384"))
        }
        (KeyKind::Ed25519, SigAlg::Ed25519) => {
            use ed25519_dalek::Verifier;
            let raw: [u8; 32] = key_bytes.try_into().map_err(|_| bad("Ed25519 key"))?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| bad("Ed25519"))?;
            let s = ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad("Ed25519 sig"))?;
            vk.verify(signed, &s).map_err(|_| bad("Ed25519"))
        }
        _ => no("signature algorithm does not match the key"),
    }
}

// ------------------------------------------------------------------------------------------
// The kubelet-client rules, from docs/security.md and upstream's ValidateKubeletClientCSR.

/// The value as text when its string type may hold it (Go's `encoding/asn1` sets); `None` for
/// any other type, which can never satisfy a rule that compares text.
pub fn string_value(tag: u8, bytes: &[u8]) -> Option<&str> {
    let printable = |b: u8| {
        b.is_ascii_alphanumeric() || b" '()+,-./:=?*&".contains(&b)
    };
    let ok = match tag {
        0x0c => true,
        0x13 => bytes.iter().all(|&b| printable(b)),
        0x16 => bytes.is_ascii(),
        0x12 => bytes.iter().all(|&b| b.is_ascii_digit() || b == b' '),
        _ => false,
    };
    if ok { std::str::from_utf8(bytes).ok() } else { None }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` labels joined by dots, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The node name when the subject is exactly `O=system:nodes` and one `CN=system:node:<name>`
/// with a valid name, and there is no SAN of any kind.
pub fn kubelet_client_identity(req: &Request) -> Result<String, Refusal> {
    let orgs: Vec<Option<&str>> = req
        .organizations
        .iter()
        .map(|(t, v)| string_value(*t, v))
        .collect();
    if orgs != [Some("system:nodes")] {
        return no(format!("organizations {orgs:?} are not exactly [system:nodes]"));
    }
    let [(tag, cn)] = req.common_names.as_slice() else {
        return no(format!("{} common names", req.common_names.len()));
    };
    let Some(cn) = string_value(*tag, cn) else {
        return no("common name is not readable text");
    };
    let Some(node) = cn.strip_prefix("system:node:") else {
        return no("common name does not start with system:node:");
    };
    if !dns1123_subdomain(node) {
        return no(format!("node name {node:?} is not a DNS-1123 subdomain"));
    }
    if !req.san_entries.is_empty() {
        return no(format!("{} subjectAltName entries", req.san_entries.len()));
    }
    Ok(cn.to_owned())
}

/// `spec.usages` as a set equals one of the two sets upstream accepts for any key type.
pub fn usages_allowed(usages: &[String]) -> bool {
    let set: BTreeSet<&str> = usages.iter().map(String::as_str).collect();
    let legacy: BTreeSet<&str> = ["digital signature", "key encipherment", "client auth"].into();
    let modern: BTreeSet<&str> = ["digital signature", "client auth"].into();
    set == legacy || set == modern
}

/// The verdict the oracle reaches: `Ok(common name)` when the CSR may be sent to the
/// SubjectAccessReviews, the reason otherwise.
pub fn authorizable(spec: &Spec<'_>, request: &[u8]) -> Result<String, Refusal> {
    if spec.signer_name != SIGNER_KUBELET_CLIENT {
        return no("signer is not kube-apiserver-client-kubelet");
    }
    if spec.approved || spec.denied || spec.issued {
        return no("already decided or issued");
    }
    if !usages_allowed(spec.usages) {
        return no(format!("usages {:?} are not an allowed set", spec.usages));
    }
    if request.len() > 64 * 1024 {
        return no("request larger than 64 KiB");
    }
    let der = pem_to_der(request)?;
    let req = read_request(&der)?;
    kubelet_client_identity(&req)
}

/// A DER request wrapped as PEM the way every encoder writes it (64-column base64).
pub fn der_to_pem(der: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                body.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                body.push(b'=');
            }
        }
    }
    let mut pem = b"-----BEGIN CERTIFICATE REQUEST-----\n".to_vec();
    for line in body.chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE REQUEST-----\n");
    pem
}

// ------------------------------------------------------------------------------------------
// Re-signing: byte mutations of a signed request only ever reach the signature check, since
// any change to the signed part breaks the signature. The decide target can instead take a
// certificationRequestInfo and sign it here with a fixed P-256 key, so mutations of the
// subject, SANs, attributes and key reach every rule behind the signature. The seeds in this
// mode carry this key's SubjectPublicKeyInfo (gen-seeds.sh builds the same key for OpenSSL).

/// The re-signing key's scalar: test material, never a secret.
pub const RESIGN_P256_SCALAR: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32,
];

fn der_header(tag: u8, len: usize, out: &mut Vec<u8>) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// `tbs` (any bytes: the fuzzer's) signed with ECDSA-SHA256 by the re-signing key, framed as a
/// CertificationRequest.
pub fn resign_p256(tbs: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    let key = match p256::ecdsa::SigningKey::from_slice(&RESIGN_P256_SCALAR) {
        Ok(k) => k,
        Err(_) => unreachable!("the fixed scalar is a valid P-256 key"),
    };
    let sig: p256::ecdsa::Signature = key.sign(tbs);
    let sig = sig.to_der();
    let alg: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut bits = Vec::with_capacity(sig.as_bytes().len() + 4);
    der_header(BITS, sig.as_bytes().len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(sig.as_bytes());
    let mut out = Vec::with_capacity(tbs.len() + alg.len() + bits.len() + 8);
    der_header(SEQ, tbs.len() + alg.len() + bits.len(), &mut out);
    out.extend_from_slice(tbs);
    out.extend_from_slice(alg);
    out.extend_from_slice(&bits);
    out
}
