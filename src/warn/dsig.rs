//! XML-DSig enveloped signatures on imported CAP 1.2 alerts (CAP 1.2 §3.3.4.1), checked with the
//! key configured for the sender (`[[warnings.trusted]]`).
//!
//! No well-kept Rust XML-DSig verifier exists (the one pure-Rust candidate calls itself an
//! early pre-release not for production), so this module does the small part CAP needs and
//! refuses the rest with a clear error naming the element:
//!
//! - one `<Signature>` (namespace `http://www.w3.org/2000/09/xmldsig#`), the last child element
//!   of `<alert>`;
//! - `SignedInfo` canonicalized with Exclusive XML Canonicalization 1.0 (without comments, no
//!   `InclusiveNamespaces`);
//! - exactly one `Reference`, `URI=""` (the whole alert), transforms exactly
//!   enveloped-signature then Exclusive C14N, digest SHA-256;
//! - signature RSA-SHA256 (PKCS#1 v1.5, 2048–8192 bits) or ECDSA-SHA256 on P-256 (`r‖s`).
//!
//! `KeyInfo` in the document is ignored: the key is the one configured (pinned). The document is
//! read with `quick-xml` like the CAP parser ([`super::cap`]): a DTD is refused, only the five
//! predefined entities and character references are read, processing instructions are refused.
//! The maths is `ring`'s (already used by the TLS stack).
//!
//! The canonicalization covers what a CAP alert can hold: elements, attributes, namespace
//! declarations, text, CDATA and character references; comments are dropped (same-document
//! `URI=""` references exclude them). Tests check it against signatures made by `xmlsec1`
//! (`tests/fixtures/cap`, `scripts/cap-dsig-fixtures`).

use std::collections::BTreeMap;

use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use sha2::{Digest, Sha256};

use super::config::{SenderTrust, WarningsConfig};

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// A signature that is not well-formed XML-DSig (`dsig.malformed`) or uses what this verifier
/// does not support (`dsig.unsupported`): the element at fault, e.g.
/// `alert.Signature.SignedInfo.Reference.DigestValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsigError {
    pub code: &'static str,
    pub field: String,
    pub why: String,
}

fn malformed(field: impl Into<String>, why: impl Into<String>) -> DsigError {
    DsigError {
        code: "dsig.malformed",
        field: field.into(),
        why: why.into(),
    }
}

fn unsupported(field: impl Into<String>, why: impl Into<String>) -> DsigError {
    DsigError {
        code: "dsig.unsupported",
        field: field.into(),
        why: why.into(),
    }
}

/// What checking a well-formed signature (or its absence) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    /// No `<Signature>` in the alert.
    Missing,
    /// The signed content was changed (or the signature belongs to another document).
    DigestMismatch,
    /// The signature value does not verify with the key (another key, or altered `SignedInfo`).
    SignatureInvalid,
    /// The signature method does not fit the configured key's type.
    KeyMismatch,
}

impl Outcome {
    /// The stable code stored as the warning's `trust`.
    pub fn trust_code(self) -> &'static str {
        match self {
            Outcome::Valid => "signature_valid",
            Outcome::Missing => "signature_missing",
            Outcome::DigestMismatch => "signature_digest_mismatch",
            Outcome::SignatureInvalid => "signature_invalid",
            Outcome::KeyMismatch => "signature_key_mismatch",
        }
    }
}

/// How an imported alert is trusted: `trusted` makes it an approved draft; `trust` is the code
/// stored with the warning (see migration 0022).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub trusted: bool,
    pub trust: &'static str,
}

/// Judge an alert (`xml`, already validated as CAP) claiming `sender`. A keyed sender needs a
/// valid signature; a malformed one is an error, a missing or failing one an untrusted draft.
pub fn judge(cfg: &WarningsConfig, xml: &str, sender: &str) -> Result<Judgement, DsigError> {
    let (trusted, trust) = match cfg.trust_for(sender) {
        SenderTrust::Untrusted => (false, "sender_not_trusted"),
        SenderTrust::ByName => (true, "sender_listed"),
        SenderTrust::Key(Err(e)) => {
            tracing::error!(sender, error = %e, "CAP import: the sender's key cannot be read");
            (false, "key_unavailable")
        }
        SenderTrust::Key(Ok(key)) => {
            let o = verify(xml, &key)?;
            (o == Outcome::Valid, o.trust_code())
        }
    };
    Ok(Judgement { trusted, trust })
}

// ---- keys ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

/// A public key: RSA (PKCS#1 `RSAPublicKey` DER) or P-256 (uncompressed point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: KeyKind,
    bits: Vec<u8>,
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One DER TLV: (tag, content, rest).
fn tlv(d: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "not valid DER".to_owned();
    let (&tag, rest) = d.split_first().ok_or_else(bad)?;
    let (&l0, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect<'a>(d: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    match tlv(d)? {
        (t, c, r) if t == tag => Ok((c, r)),
        _ => Err(format!("not valid DER ({what})")),
    }
}

impl PublicKey {
    /// From PEM: `PUBLIC KEY` (SubjectPublicKeyInfo), `RSA PUBLIC KEY` (PKCS#1) or `CERTIFICATE`
    /// (its subject key).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let begin = pem
            .find("-----BEGIN ")
            .ok_or("no PEM block (-----BEGIN …-----)")?;
        let rest = &pem[begin + 11..];
        let label_end = rest.find("-----").ok_or("no PEM block")?;
        let label = &rest[..label_end];
        let body = &rest[label_end + 5..];
        let end = body
            .find(&format!("-----END {label}-----"))
            .ok_or_else(|| format!("the PEM block {label} has no END line"))?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| format!("the PEM block {label} is not base64"))?;
        match label {
            "PUBLIC KEY" => Self::from_spki(&der),
            "RSA PUBLIC KEY" => {
                expect(&der, 0x30, "RSAPublicKey")?;
                Ok(Self {
                    kind: KeyKind::Rsa,
                    bits: der,
                })
            }
            "CERTIFICATE" => Self::from_certificate(&der),
            other => Err(format!(
                "a PEM {other} is not a public key: give PUBLIC KEY or CERTIFICATE"
            )),
        }
    }

    fn from_spki(der: &[u8]) -> Result<Self, String> {
        let (spki, _) = expect(der, 0x30, "SubjectPublicKeyInfo")?;
        let (alg, rest) = expect(spki, 0x30, "AlgorithmIdentifier")?;
        let (oid, params) = expect(alg, 0x06, "algorithm")?;
        let (bits, _) = expect(rest, 0x03, "subjectPublicKey")?;
        let (&unused, key) = bits.split_first().ok_or("empty key")?;
        if unused != 0 {
            return Err("not valid DER (subjectPublicKey)".into());
        }
        let kind = if oid == OID_RSA {
            KeyKind::Rsa
        } else if oid == OID_EC {
            let (curve, _) = expect(params, 0x06, "curve")?;
            if curve != OID_P256 {
                return Err("only the P-256 curve is supported for ECDSA".into());
            }
            if key.len() != 65 || key[0] != 4 {
                return Err("a P-256 key must be an uncompressed point".into());
            }
            KeyKind::EcP256
        } else {
            return Err("only RSA and ECDSA P-256 keys are supported".into());
        };
        Ok(Self {
            kind,
            bits: key.to_vec(),
        })
    }

    fn from_certificate(der: &[u8]) -> Result<Self, String> {
        let (cert, _) = expect(der, 0x30, "Certificate")?;
        let (tbs, _) = expect(cert, 0x30, "TBSCertificate")?;
        let mut r = tbs;
        if r.first() == Some(&0xa0) {
            r = tlv(r)?.2; // version
        }
        r = expect(r, 0x02, "serialNumber")?.1;
        for what in ["signature", "issuer", "validity", "subject"] {
            r = expect(r, 0x30, what)?.1;
        }
        Self::from_spki(r)
    }

    /// Verify `sig` over `msg` with `method` (a SignatureMethod URI already checked).
    fn verify(&self, method: &str, msg: &[u8], sig: &[u8]) -> Result<bool, ()> {
        use ring::signature as s;
        let alg: &dyn s::VerificationAlgorithm = match (method, self.kind) {
            (RSA_SHA256, KeyKind::Rsa) => &s::RSA_PKCS1_2048_8192_SHA256,
            (ECDSA_SHA256, KeyKind::EcP256) => &s::ECDSA_P256_SHA256_FIXED,
            _ => return Err(()),
        };
        Ok(s::UnparsedPublicKey::new(alg, &self.bits)
            .verify(msg, sig)
            .is_ok())
    }
}

// ---- the document -------------------------------------------------------------------------------

#[derive(Debug)]
struct Attr {
    qname: String,
    prefix: String,
    local: String,
    value: String,
}

#[derive(Debug)]
struct Elem {
    qname: String,
    prefix: String,
    local: String,
    /// Declarations on this element: (prefix, "" for the default namespace; URI).
    ns: Vec<(String, String)>,
    attrs: Vec<Attr>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    El(Elem),
    Text(String),
}

type Ns = BTreeMap<String, String>;

fn split(qname: &str) -> (String, String) {
    match qname.split_once(':') {
        Some((p, l)) => (p.to_owned(), l.to_owned()),
        None => (String::new(), qname.to_owned()),
    }
}

/// XML end-of-line handling: `\r\n` and a lone `\r` read as `\n`.
fn eol(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn elem(e: &BytesStart) -> Result<Elem, DsigError> {
    let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let (prefix, local) = split(&qname);
    let mut ns = Vec::new();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|_| malformed(qname.clone(), "an attribute is not well-formed"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        // attribute-value normalization (no DTD: every attribute is CDATA)
        let raw = std::str::from_utf8(&a.value)
            .map_err(|_| malformed(qname.clone(), "not UTF-8"))?
            .replace("\r\n", " ")
            .replace(['\r', '\n', '\t'], " ");
        let value = quick_xml::escape::unescape(&raw)
            .map_err(|_| DsigError {
                code: "cap.entity_refused",
                field: qname.clone(),
                why: "only the predefined entities and character references are read".into(),
            })?
            .into_owned();
        if key == "xmlns" {
            ns.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            ns.push((p.to_owned(), value));
        } else {
            let (prefix, local) = split(&key);
            attrs.push(Attr {
                qname: key,
                prefix,
                local,
                value,
            });
        }
    }
    Ok(Elem {
        qname,
        prefix,
        local,
        ns,
        attrs,
        children: Vec::new(),
    })
}

fn push_text(top: &mut Elem, s: &str) {
    if let Some(Node::Text(t)) = top.children.last_mut() {
        t.push_str(s);
    } else {
        top.children.push(Node::Text(s.to_owned()));
    }
}

/// The document element, refusing DTDs, unknown entities and processing instructions.
fn document(xml: &str) -> Result<Elem, DsigError> {
    let doc = || malformed("document", "not well-formed XML");
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    loop {
        let ev = r.read_event().map_err(|_| doc())?;
        match ev {
            Event::DocType(_) => {
                return Err(DsigError {
                    code: "cap.dtd_refused",
                    field: "document".into(),
                    why: "a DTD is refused".into(),
                })
            }
            Event::PI(_) => {
                return Err(unsupported(
                    "document",
                    "processing instructions are not supported in a signed alert",
                ))
            }
            Event::Start(e) => {
                if stack.len() > 32 {
                    return Err(doc());
                }
                stack.push(elem(&e)?);
            }
            Event::Empty(e) => {
                let el = elem(&e)?;
                match stack.last_mut() {
                    Some(top) => top.children.push(Node::El(el)),
                    None if root.is_none() => root = Some(el),
                    None => return Err(doc()),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(doc)?;
                match stack.last_mut() {
                    Some(top) => top.children.push(Node::El(el)),
                    None if root.is_none() => root = Some(el),
                    None => return Err(doc()),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| doc())?;
                if let Some(top) = stack.last_mut() {
                    push_text(top, &eol(&s));
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|_| doc())?;
                match stack.last_mut() {
                    Some(top) => push_text(top, &eol(&s)),
                    None => return Err(doc()),
                }
            }
            Event::GeneralRef(g) => {
                let resolved = if g.is_char_ref() {
                    g.resolve_char_ref().ok().flatten().map(String::from)
                } else {
                    let name = g.decode().map_err(|_| doc())?;
                    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                };
                let Some(text) = resolved else {
                    return Err(DsigError {
                        code: "cap.entity_refused",
                        field: "document".into(),
                        why: "only the predefined entities and character references are read"
                            .into(),
                    });
                };
                match stack.last_mut() {
                    Some(top) => push_text(top, &text),
                    None => return Err(doc()),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(doc());
    }
    root.ok_or_else(doc)
}

// ---- Exclusive XML Canonicalization 1.0 (without comments) -------------------------------------

fn esc_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn esc_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn with_decls(scope: &Ns, e: &Elem) -> Ns {
    let mut s = scope.clone();
    for (p, u) in &e.ns {
        s.insert(p.clone(), u.clone());
    }
    s
}

/// Exclusive C14N of `e` and its subtree, leaving out `skip` (the enveloped signature).
/// `scope`: the namespaces declared on `e`'s ancestors; `rendered`: those already output by its
/// ancestors in the output.
fn c14n(
    e: &Elem,
    scope: &Ns,
    rendered: &Ns,
    skip: Option<&Elem>,
    path: &str,
    out: &mut String,
) -> Result<(), DsigError> {
    let scope = with_decls(scope, e);
    let field = format!("{path}.{}", e.local);
    // the namespaces this element visibly uses: its own prefix and its attributes' prefixes
    let mut used: Vec<&str> = vec![e.prefix.as_str()];
    for a in &e.attrs {
        if !a.prefix.is_empty() {
            used.push(&a.prefix);
        }
    }
    used.sort_unstable();
    used.dedup();
    let mut rendered = rendered.clone();
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in used {
        if p == "xml" {
            continue;
        }
        let uri = match scope.get(p) {
            Some(u) => u.clone(),
            None if p.is_empty() => String::new(),
            None => return Err(malformed(field, format!("the prefix {p} is not declared"))),
        };
        let before = rendered.get(p).map_or("", String::as_str);
        if before != uri {
            decls.push((p.to_owned(), uri.clone()));
            rendered.insert(p.to_owned(), uri);
        }
    }
    let ns_of = |a: &Attr| -> Result<String, DsigError> {
        match a.prefix.as_str() {
            "" => Ok(String::new()),
            "xml" => Ok(XML_NS.to_owned()),
            p => scope
                .get(p)
                .cloned()
                .ok_or_else(|| malformed(field.clone(), format!("the prefix {p} is not declared"))),
        }
    };
    let mut attrs: Vec<(String, &Attr)> = Vec::new();
    for a in &e.attrs {
        attrs.push((ns_of(a)?, a));
    }
    attrs.sort_by(|x, y| (&x.0, &x.1.local).cmp(&(&y.0, &y.1.local)));
    out.push('<');
    out.push_str(&e.qname);
    for (p, u) in &decls {
        out.push_str(if p.is_empty() { " xmlns" } else { " xmlns:" });
        out.push_str(p);
        out.push_str("=\"");
        esc_attr(u, out);
        out.push('"');
    }
    for (_, a) in &attrs {
        out.push(' ');
        out.push_str(&a.qname);
        out.push_str("=\"");
        esc_attr(&a.value, out);
        out.push('"');
    }
    out.push('>');
    for c in &e.children {
        match c {
            Node::Text(t) => esc_text(t, out),
            Node::El(child) => {
                if skip.is_some_and(|s| std::ptr::eq(s, child)) {
                    continue;
                }
                c14n(child, &scope, &rendered, skip, &field, out)?;
            }
        }
    }
    out.push_str("</");
    out.push_str(&e.qname);
    out.push('>');
    Ok(())
}

// ---- the signature ------------------------------------------------------------------------------

fn children(e: &Elem) -> impl Iterator<Item = &Elem> {
    e.children.iter().filter_map(|c| match c {
        Node::El(x) => Some(x),
        Node::Text(_) => None,
    })
}

fn ns_uri<'a>(scope: &'a Ns, e: &Elem) -> Option<&'a str> {
    scope.get(&e.prefix).map(String::as_str)
}

fn is_dsig(scope: &Ns, e: &Elem, local: &str) -> bool {
    e.local == local && ns_uri(&with_decls(scope, e), e) == Some(DSIG_NS)
}

/// The one child `local` (in the XML-DSig namespace) of `e`.
fn one<'a>(e: &'a Elem, scope: &Ns, local: &str, field: &str) -> Result<&'a Elem, DsigError> {
    let mut it = children(e).filter(|c| is_dsig(scope, c, local));
    let first = it
        .next()
        .ok_or_else(|| malformed(format!("{field}.{local}"), "missing"))?;
    if it.next().is_some() {
        return Err(malformed(format!("{field}.{local}"), "given twice"));
    }
    Ok(first)
}

fn attr<'a>(e: &'a Elem, name: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|a| a.qname == name)
        .map(|a| a.value.as_str())
}

fn algorithm<'a>(e: &'a Elem, field: &str) -> Result<&'a str, DsigError> {
    attr(e, "Algorithm").ok_or_else(|| malformed(field, "the Algorithm attribute is missing"))
}

fn text(e: &Elem) -> String {
    e.children
        .iter()
        .filter_map(|c| match c {
            Node::Text(t) => Some(t.as_str()),
            Node::El(_) => None,
        })
        .collect()
}

fn base64(e: &Elem, field: &str) -> Result<Vec<u8>, DsigError> {
    if children(e).next().is_some() {
        return Err(malformed(field, "must hold base64 text only"));
    }
    let s: String = text(e).chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| malformed(field, "not base64"))
}

/// Check the enveloped signature of a CAP alert against `key`. `Err` when the signature is not
/// well-formed XML-DSig or uses what is not supported (the error names the element).
pub fn verify(xml: &str, key: &PublicKey) -> Result<Outcome, DsigError> {
    let alert = document(xml)?;
    let top = Ns::new();
    let alert_scope = with_decls(&top, &alert);
    let sigs: Vec<usize> = alert
        .children
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            Node::El(e) if is_dsig(&alert_scope, e, "Signature") => Some(i),
            _ => None,
        })
        .collect();
    let f = "alert.Signature";
    let Some(&at) = sigs.first() else {
        return Ok(Outcome::Missing);
    };
    if sigs.len() > 1 {
        return Err(malformed(f, "more than one Signature in the alert"));
    }
    let last_el = alert
        .children
        .iter()
        .rposition(|c| matches!(c, Node::El(_)));
    if last_el != Some(at) {
        return Err(malformed(
            f,
            "the Signature must be the last child element of alert (CAP 1.2 §3.3.4.1)",
        ));
    }
    let Node::El(sig) = &alert.children[at] else {
        return Err(malformed(f, "missing"));
    };
    let sig_scope = with_decls(&alert_scope, sig);

    // SignedInfo
    let si = one(sig, &sig_scope, "SignedInfo", f)?;
    let fi = format!("{f}.SignedInfo");
    let si_scope = with_decls(&sig_scope, si);
    let cm = one(si, &si_scope, "CanonicalizationMethod", &fi)?;
    let fcm = format!("{fi}.CanonicalizationMethod");
    if algorithm(cm, &fcm)? != EXC_C14N {
        return Err(unsupported(
            fcm,
            format!("only Exclusive C14N ({EXC_C14N}) is supported"),
        ));
    }
    if children(cm).next().is_some() {
        return Err(unsupported(fcm, "InclusiveNamespaces is not supported"));
    }
    let sm = one(si, &si_scope, "SignatureMethod", &fi)?;
    let fsm = format!("{fi}.SignatureMethod");
    let method = algorithm(sm, &fsm)?;
    if method != RSA_SHA256 && method != ECDSA_SHA256 {
        return Err(unsupported(
            fsm,
            format!("only {RSA_SHA256} and {ECDSA_SHA256} are supported"),
        ));
    }
    if children(sm).next().is_some() {
        return Err(unsupported(fsm, "parameters are not supported"));
    }
    let reference = one(si, &si_scope, "Reference", &fi)?;
    let fr = format!("{fi}.Reference");
    match attr(reference, "URI") {
        Some("") => {}
        Some(_) => {
            return Err(unsupported(
                fr,
                "the Reference must be URI=\"\": the whole alert, enveloped",
            ))
        }
        None => return Err(malformed(fr, "the URI attribute is missing")),
    }
    let r_scope = with_decls(&si_scope, reference);
    let transforms = one(reference, &r_scope, "Transforms", &fr)?;
    let ft = format!("{fr}.Transforms");
    let t_scope = with_decls(&r_scope, transforms);
    let list: Vec<&Elem> = children(transforms).collect();
    if list.iter().any(|t| !is_dsig(&t_scope, t, "Transform")) {
        return Err(malformed(ft, "holds only Transform elements"));
    }
    let algs = list
        .iter()
        .map(|t| algorithm(t, &format!("{ft}.Transform")))
        .collect::<Result<Vec<_>, _>>()?;
    if algs != [ENVELOPED, EXC_C14N] {
        return Err(unsupported(
            format!("{ft}.Transform"),
            format!("the transforms must be {ENVELOPED} then {EXC_C14N}"),
        ));
    }
    if list.iter().any(|t| children(t).next().is_some()) {
        return Err(unsupported(
            format!("{ft}.Transform"),
            "InclusiveNamespaces is not supported",
        ));
    }
    let dm = one(reference, &r_scope, "DigestMethod", &fr)?;
    let fdm = format!("{fr}.DigestMethod");
    if algorithm(dm, &fdm)? != SHA256 {
        return Err(unsupported(fdm, format!("only {SHA256} is supported")));
    }
    let fdv = format!("{fr}.DigestValue");
    let digest_value = base64(one(reference, &r_scope, "DigestValue", &fr)?, &fdv)?;
    if digest_value.len() != 32 {
        return Err(malformed(fdv, "a SHA-256 digest has 32 bytes"));
    }
    let fsv = format!("{f}.SignatureValue");
    let signature = base64(one(sig, &sig_scope, "SignatureValue", f)?, &fsv)?;
    if signature.is_empty() {
        return Err(malformed(fsv, "empty"));
    }

    if (method == RSA_SHA256) != (key.kind == KeyKind::Rsa) {
        return Ok(Outcome::KeyMismatch);
    }
    // the reference: the alert without its signature
    let mut doc = String::new();
    c14n(&alert, &top, &Ns::new(), Some(sig), "", &mut doc)?;
    if Sha256::digest(doc.as_bytes()).as_slice() != digest_value.as_slice() {
        return Ok(Outcome::DigestMismatch);
    }
    // the signature over SignedInfo, canonicalized on its own
    let mut signed = String::new();
    c14n(si, &sig_scope, &Ns::new(), None, f, &mut signed)?;
    match key.verify(method, signed.as_bytes(), &signature) {
        Ok(true) => Ok(Outcome::Valid),
        Ok(false) => Ok(Outcome::SignatureInvalid),
        Err(()) => Ok(Outcome::KeyMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/cap/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn key(name: &str) -> PublicKey {
        PublicKey::from_pem(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn canon(xml: &str) -> String {
        let root = document(xml).unwrap();
        let mut out = String::new();
        c14n(&root, &Ns::new(), &Ns::new(), None, "", &mut out).unwrap();
        out
    }

    #[test]
    fn canonical_form_of_the_parts_cap_uses() {
        // empty elements open and close, attributes sorted, text and attribute escapes,
        // CDATA as text, line ends normalized, character references kept as characters
        assert_eq!(
            canon("<a xmlns=\"urn:x\" z=\"1\" b=\"&quot;x&#9;\"><e/><t>a &amp; b &gt; c<![CDATA[<d>]]>\r\ne&#13;</t></a>"),
            "<a xmlns=\"urn:x\" b=\"&quot;x&#x9;\" z=\"1\"><e></e><t>a &amp; b &gt; c&lt;d&gt;\ne&#xD;</t></a>"
        );
        // exclusive: a declaration is output where it is visibly used, not where it was written
        assert_eq!(
            canon("<a xmlns=\"urn:x\" xmlns:p=\"urn:p\"><b/><p:c><p:d/></p:c></a>"),
            "<a xmlns=\"urn:x\"><b></b><p:c xmlns:p=\"urn:p\"><p:d></p:d></p:c></a>"
        );
        // an undeclared default namespace under a declared one
        assert_eq!(
            canon("<a xmlns=\"urn:x\"><b xmlns=\"\"/></a>"),
            "<a xmlns=\"urn:x\"><b xmlns=\"\"></b></a>"
        );
        // comments are dropped, whitespace kept
        assert_eq!(
            canon("<a>\n <!-- c --><b> x </b>\n</a>"),
            "<a>\n <b> x </b>\n</a>"
        );
    }

    #[test]
    fn keys_from_pem() {
        assert_eq!(key("cma_rsa_pub.pem").kind, KeyKind::Rsa);
        assert_eq!(key("ec_cert.pem").kind, KeyKind::EcP256);
        let e = PublicKey::from_pem(&fixture("cma_rsa_key.pem")).unwrap_err();
        assert!(e.contains("PRIVATE KEY"), "{e}");
        assert!(PublicKey::from_pem("no pem here").is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }

    #[test]
    fn signatures_made_by_xmlsec1_verify() {
        let rsa = key("cma_rsa_pub.pem");
        assert_eq!(verify(&fixture("signed_rsa.xml"), &rsa), Ok(Outcome::Valid));
        let ec = key("ec_cert.pem");
        assert_eq!(verify(&fixture("signed_ec.xml"), &ec), Ok(Outcome::Valid));
        // CRLF line ends, a comment, CDATA, a character reference to CR, a foreign element with
        // attributes out of order, the ds prefix declared on <alert>
        let mixed = fixture("signed_mixed.xml");
        assert!(mixed.contains("\r\n") && mixed.contains("<![CDATA[") && mixed.contains("<!--"));
        assert_eq!(verify(&mixed, &rsa), Ok(Outcome::Valid));
        // …and each of them still counts
        for (from, to) in [
            ("<b>注意</b>", "<b>注意!</b>"),
            ("a&#13;b", "a&#10;b"),
            ("x:z=\"2\"", "x:z=\"3\""),
        ] {
            let changed = mixed.replace(from, to);
            assert_ne!(changed, mixed, "{from}");
            assert_eq!(
                verify(&changed, &rsa),
                Ok(Outcome::DigestMismatch),
                "{from}"
            );
        }
        // a comment is not signed content (same-document references exclude comments)
        let commented = mixed.replace("<!-- 注释 -->", "<!-- 另一个注释 -->");
        assert_eq!(verify(&commented, &rsa), Ok(Outcome::Valid));
    }

    #[test]
    fn changed_content_moved_or_foreign_signatures_fail() {
        let rsa = key("cma_rsa_pub.pem");
        let ec = key("ec_cert.pem");
        let doc = fixture("signed_rsa.xml");
        // the headline changed
        let tampered = doc.replace("暴雨红色预警", "暴雨蓝色预警");
        assert_ne!(tampered, doc);
        assert_eq!(verify(&tampered, &rsa), Ok(Outcome::DigestMismatch));
        // an element added after signing (before the signature)
        let added = doc.replace("</info>", "</info><note>x</note>");
        assert_eq!(verify(&added, &rsa), Ok(Outcome::DigestMismatch));
        // another key's signature
        assert_eq!(
            verify(&fixture("signed_other.xml"), &rsa),
            Ok(Outcome::SignatureInvalid)
        );
        // the right algorithm family, the wrong key type
        assert_eq!(verify(&doc, &ec), Ok(Outcome::KeyMismatch));
        // a signature moved from another alert onto this one: its digest is the other alert's
        let ec_doc = fixture("signed_ec.xml");
        let sig_at = ec_doc.find("<ds:Signature").unwrap();
        let sig_end = ec_doc.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let moved = doc
            .replace(
                &doc[doc.find("<Signature").unwrap()
                    ..doc.find("</Signature>").unwrap() + "</Signature>".len()],
                &ec_doc[sig_at..sig_end],
            )
            .replace("cma.gov.cn", "ec.example.gov.cn");
        assert_eq!(verify(&moved, &ec), Ok(Outcome::DigestMismatch));
        // SignedInfo changed (the digest alone recomputed would still need the key)
        let si = doc.replace(
            "<Reference URI=\"\">",
            "<Reference URI=\"\" Type=\"urn:x\">",
        );
        assert_eq!(verify(&si, &rsa), Ok(Outcome::SignatureInvalid));
        // no signature at all
        let start = doc.find("<Signature").unwrap();
        let end = doc.find("</Signature>").unwrap() + "</Signature>".len();
        let unsigned = format!("{}{}", &doc[..start], &doc[end..]);
        assert_eq!(verify(&unsigned, &rsa), Ok(Outcome::Missing));
    }

    #[test]
    fn malformed_or_unsupported_signatures_name_the_element() {
        let rsa = key("cma_rsa_pub.pem");
        let doc = fixture("signed_rsa.xml");
        let cases = [
            (
                doc.replace("<SignatureValue>", "<SignatureVal>")
                    .replace("</SignatureValue>", "</SignatureVal>"),
                "dsig.malformed",
                "alert.Signature.SignatureValue",
            ),
            (
                doc.replace("<DigestValue>", "<DigestValue>!!"),
                "dsig.malformed",
                "alert.Signature.SignedInfo.Reference.DigestValue",
            ),
            (
                doc.replace("xmldsig-more#rsa-sha256", "xmldsig-more#rsa-sha512"),
                "dsig.unsupported",
                "alert.Signature.SignedInfo.SignatureMethod",
            ),
            (
                doc.replace("<Reference URI=\"\">", "<Reference URI=\"#other\">"),
                "dsig.unsupported",
                "alert.Signature.SignedInfo.Reference",
            ),
            (
                doc.replace(
                    "<Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
                    "",
                ),
                "dsig.unsupported",
                "alert.Signature.SignedInfo.Reference.Transforms.Transform",
            ),
            (
                doc.replace("</Signature>\n</alert>", "</Signature>\n<note/></alert>"),
                "dsig.malformed",
                "alert.Signature",
            ),
            (
                doc.replace("<SignedInfo>", "<SignedInfo><?pi x?>"),
                "dsig.unsupported",
                "document",
            ),
        ];
        for (xml, code, field) in cases {
            let e = verify(&xml, &rsa).expect_err(field);
            assert_eq!((e.code, e.field.as_str()), (code, field), "{e:?}");
        }
    }
}
