//! Identity documents.
//!
//! The platform records the actual population (实有人口): foreigners and residents of Hong Kong,
//! Macao and Taiwan live in communities too, and so do people with no document at hand. Nobody is
//! refused for lacking a mainland ID: every document type below is first-class, and
//! [`DocType::None`] is a valid answer.
//!
//! A [`Document`] only exists parsed. Parsing normalises what people actually type (surrounding
//! and inner spaces, lower-case `x`, full-width characters from a Chinese input method) so the
//! same document always has the same [`Document::normalized`] form, which is what the blind index
//! is computed over.

use crate::error::DomainError;
use crate::people::Sex;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

string_enum! {
    pub enum DocType: "doc_type" {
        /// 居民身份证 (GB 11643-1999).
        MainlandId = "mainland_id", "居民身份证",
        /// 港澳居民居住证: GB 11643 layout, prefix 810000 (Hong Kong) or 820000 (Macao).
        HkMacaoResidencePermit = "hk_macao_residence_permit", "港澳居民居住证",
        /// 台湾居民居住证: GB 11643 layout, prefix 830000.
        TaiwanResidencePermit = "taiwan_residence_permit", "台湾居民居住证",
        /// 港澳居民来往内地通行证 (回乡证).
        HkMacaoHomeReturnPermit = "hk_macao_home_return_permit", "港澳居民来往内地通行证",
        /// 台湾居民来往大陆通行证 (台胞证).
        TaiwanCompatriotPermit = "taiwan_compatriot_permit", "台湾居民来往大陆通行证",
        /// 外国人永久居留身份证, old (15 characters) and 2023 (18 digits) formats.
        ForeignPermanentResidence = "foreign_permanent_residence", "外国人永久居留身份证",
        Passport = "passport", "护照",
        /// The person has no document, or none was shown.
        None = "none", "无证件",
    }
}

/// A parsed identity document. Construct with [`Document::parse`].
///
/// `Debug` prints the number masked, so a document that reaches a log line by accident does not
/// leak it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "DocumentRepr", into = "DocumentRepr")]
pub struct Document {
    doc_type: DocType,
    number: String,
}

#[derive(Serialize, Deserialize)]
struct DocumentRepr {
    doc_type: DocType,
    number: String,
}

impl TryFrom<DocumentRepr> for Document {
    type Error = DomainError;
    fn try_from(r: DocumentRepr) -> Result<Self, Self::Error> {
        Document::parse(r.doc_type, &r.number)
    }
}

impl From<Document> for DocumentRepr {
    fn from(d: Document) -> Self {
        DocumentRepr {
            doc_type: d.doc_type,
            number: d.number,
        }
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("doc_type", &self.doc_type)
            .field("number", &crate::mask::mask_document(self))
            .finish()
    }
}

impl Document {
    /// Normalise and validate `raw` as a number of type `doc_type`.
    ///
    /// Checks run from the shape to the meaning (format, check digit, region or prefix, birth
    /// date) so a typo in one digit is reported as a check-digit failure.
    pub fn parse(doc_type: DocType, raw: &str) -> Result<Document, DomainError> {
        let number = normalize(raw);
        if doc_type == DocType::None {
            return if number.is_empty() {
                Ok(Document::none())
            } else {
                Err(DomainError::DocumentUnexpectedNumber)
            };
        }
        if number.is_empty() {
            return Err(DomainError::DocumentEmpty { doc_type });
        }
        let format = |expected| DomainError::DocumentFormat { doc_type, expected };
        let region = |expected| DomainError::DocumentRegion { doc_type, expected };
        // Every format below is ASCII; checking once here keeps the slicing below on char
        // boundaries.
        if !number.is_ascii() {
            return Err(format("letters and digits only"));
        }
        match doc_type {
            DocType::MainlandId => {
                check_gb11643(doc_type, &number)?;
                if !matches!(number.as_bytes()[0], b'1'..=b'8') {
                    return Err(region("first digit 1-8"));
                }
                check_birth_date(doc_type, &number)?;
            }
            DocType::HkMacaoResidencePermit => {
                check_gb11643(doc_type, &number)?;
                if !(number.starts_with("810000") || number.starts_with("820000")) {
                    return Err(region("prefix 810000 or 820000"));
                }
                check_birth_date(doc_type, &number)?;
            }
            DocType::TaiwanResidencePermit => {
                check_gb11643(doc_type, &number)?;
                if !number.starts_with("830000") {
                    return Err(region("prefix 830000"));
                }
                check_birth_date(doc_type, &number)?;
            }
            DocType::HkMacaoHomeReturnPermit => {
                let (head, digits) = number.split_at(1);
                if !(head == "H" || head == "M")
                    || !(digits.len() == 8 || digits.len() == 10)
                    || !all_digits(digits)
                {
                    return Err(format("H or M followed by 8 or 10 digits"));
                }
            }
            DocType::TaiwanCompatriotPermit => {
                // Current permits carry 8 digits; older booklets had 10 characters, some with
                // letters. Both are still presented, so both are accepted, nothing looser.
                let ok = (number.len() == 8 && all_digits(&number))
                    || (number.len() == 10 && all_alnum(&number));
                if !ok {
                    return Err(format("8 digits, or 10 letters and digits"));
                }
            }
            DocType::ForeignPermanentResidence => {
                if number.len() == 18 {
                    check_gb11643(doc_type, &number)?;
                    if !number.starts_with('9') {
                        return Err(region("18-character cards start with 9"));
                    }
                    check_birth_date(doc_type, &number)?;
                } else {
                    let (letters, digits) = number.split_at(number.len().min(3));
                    let ok = number.len() == 15
                        && letters.bytes().all(|b| b.is_ascii_uppercase())
                        && all_digits(digits);
                    if !ok {
                        return Err(format(
                            "18 digits (2023 card) or 3 letters and 12 digits (older card)",
                        ));
                    }
                }
            }
            DocType::Passport => {
                if !(5..=20).contains(&number.len()) || !all_alnum(&number) {
                    return Err(format("5 to 20 letters and digits"));
                }
            }
            DocType::None => {}
        }
        Ok(Document { doc_type, number })
    }

    /// The record of a person with no document.
    pub fn none() -> Document {
        Document {
            doc_type: DocType::None,
            number: String::new(),
        }
    }

    pub fn doc_type(&self) -> DocType {
        self.doc_type
    }

    /// The normalised number. Personal data: encrypt it at rest, mask it for display.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// Whether the number follows the GB 11643 layout (birth date at characters 7–14).
    fn is_gb11643_layout(&self) -> bool {
        self.number.len() == 18
            && matches!(
                self.doc_type,
                DocType::MainlandId
                    | DocType::HkMacaoResidencePermit
                    | DocType::TaiwanResidencePermit
                    | DocType::ForeignPermanentResidence
            )
    }

    /// The birth date held in an 18-character GB 11643-style number.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        if !self.is_gb11643_layout() {
            return None;
        }
        parse_yyyymmdd(&self.number[6..14])
    }

    /// Sex from the parity of the 17th digit (odd: male), as GB 11643 assigns sequence numbers.
    ///
    /// `None` for the 2023 foreign permanent residence card: its published layout names digits
    /// 15–17 a sequence number without saying the parity carries sex, so it is not inferred.
    pub fn sex(&self) -> Option<Sex> {
        if !self.is_gb11643_layout() || self.doc_type == DocType::ForeignPermanentResidence {
            return None;
        }
        let d = self.number.as_bytes()[16].checked_sub(b'0')?;
        Some(if d % 2 == 1 { Sex::Male } else { Sex::Female })
    }

    /// The canonical text a blind index is computed over: `"<doc_type>:<number>"`, e.g.
    /// `"mainland_id:11010519491231002X"`. The type is part of it because the same digits in two
    /// document types are two different documents. For [`DocType::None`] this is `"none:"`,
    /// which identifies nobody; do not index it.
    pub fn normalized(&self) -> String {
        format!("{}:{}", self.doc_type.as_str(), self.number)
    }
}

/// The GB 11643-1999 check character (ISO 7064 MOD 11-2) for the first 17 digits.
/// `None` unless `first17` is exactly 17 ASCII digits.
pub fn gb11643_check_digit(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if first17.len() != 17 || !all_digits(first17) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize).copied()
}

/// Trim, drop every whitespace (including the ideographic space), fold full-width ASCII
/// (U+FF01..U+FF5E, what Chinese input methods produce) to ASCII, and upper-case.
fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_uppercase)
        .collect()
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn all_alnum(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Shape and check digit of an 18-character GB 11643 number.
fn check_gb11643(doc_type: DocType, number: &str) -> Result<(), DomainError> {
    let bytes = number.as_bytes();
    let shaped = bytes.len() == 18
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && (bytes[17].is_ascii_digit() || bytes[17] == b'X');
    if !shaped {
        return Err(DomainError::DocumentFormat {
            doc_type,
            expected: "18 characters: 17 digits, then a digit or X",
        });
    }
    if gb11643_check_digit(&number[..17]) != Some(char::from(bytes[17])) {
        return Err(DomainError::DocumentChecksum { doc_type });
    }
    Ok(())
}

fn check_birth_date(doc_type: DocType, number: &str) -> Result<(), DomainError> {
    match parse_yyyymmdd(&number[6..14]) {
        Some(_) => Ok(()),
        None => Err(DomainError::DocumentBirthDate { doc_type }),
    }
}

/// A real calendar date between 1900 and 2100. Whether it lies in the future needs a clock, which
/// this layer does not hold; callers with one may check that too.
fn parse_yyyymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !all_digits(s) {
        return None;
    }
    let y: i32 = s[0..4].parse().ok()?;
    let m: u32 = s[4..6].parse().ok()?;
    let d: u32 = s[6..8].parse().ok()?;
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    (1900..=2100).contains(&date.year()).then_some(date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;
    use proptest::prelude::*;

    fn with_check(first17: &str) -> String {
        let c = gb11643_check_digit(first17).expect("17 digits");
        format!("{first17}{c}")
    }

    fn code(r: Result<Document, DomainError>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    #[test]
    fn names_round_trip() {
        check_round_trip(DocType::ALL);
    }

    #[test]
    fn standard_example_parses_and_normalises() {
        // The worked example of GB 11643-1999 itself.
        let d = Document::parse(DocType::MainlandId, " 11010519491231002x ").expect("valid");
        assert_eq!(d.number(), "11010519491231002X");
        assert_eq!(d.normalized(), "mainland_id:11010519491231002X");
        assert_eq!(d.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31));
        assert_eq!(d.sex(), Some(Sex::Female));
        assert_eq!(gb11643_check_digit("11010519491231002"), Some('X'));
        // Full-width input and inner spaces.
        let fw = Document::parse(
            DocType::MainlandId,
            "１１０１０５ １９４９１２３１ ００２ｘ",
        )
        .expect("valid");
        assert_eq!(fw, d);
    }

    #[test]
    fn mainland_id_errors() {
        let p = |s: &str| code(Document::parse(DocType::MainlandId, s));
        assert_eq!(p(""), "document.empty");
        assert_eq!(p("1101051949123100"), "document.format");
        assert_eq!(p("11010519491231002A"), "document.format");
        assert_eq!(p("110105194912310021"), "document.checksum");
        assert_eq!(p(&with_check("01010519491231002")), "document.region");
        assert_eq!(p(&with_check("91010519491231002")), "document.region");
        assert_eq!(p(&with_check("11010519490231002")), "document.birth_date");
        assert_eq!(p(&with_check("11010518991231002")), "document.birth_date");
        assert_eq!(p(&with_check("11010520000229001")), "ok");
        let male =
            Document::parse(DocType::MainlandId, &with_check("51010419900101001")).expect("valid");
        assert_eq!(male.sex(), Some(Sex::Male));
    }

    #[test]
    fn residence_permits_use_their_prefixes() {
        let hk = with_check("81000019800101002");
        let mo = with_check("82000019800101002");
        let tw = with_check("83000019800101002");
        for n in [&hk, &mo] {
            let d = Document::parse(DocType::HkMacaoResidencePermit, n).expect("valid");
            assert_eq!(d.birth_date(), NaiveDate::from_ymd_opt(1980, 1, 1));
        }
        assert_eq!(
            code(Document::parse(DocType::HkMacaoResidencePermit, &tw)),
            "document.region"
        );
        assert_eq!(
            code(Document::parse(DocType::TaiwanResidencePermit, &tw)),
            "ok"
        );
        assert_eq!(
            code(Document::parse(DocType::TaiwanResidencePermit, &hk)),
            "document.region"
        );
    }

    #[test]
    fn permits_and_passports() {
        let p = |t, s: &str| code(Document::parse(t, s));
        use DocType::*;
        assert_eq!(p(HkMacaoHomeReturnPermit, "h12345678"), "ok");
        assert_eq!(p(HkMacaoHomeReturnPermit, "M1234567890"), "ok");
        assert_eq!(p(HkMacaoHomeReturnPermit, "M123456789"), "document.format");
        assert_eq!(p(HkMacaoHomeReturnPermit, "X12345678"), "document.format");
        assert_eq!(p(HkMacaoHomeReturnPermit, "H"), "document.format");
        assert_eq!(p(TaiwanCompatriotPermit, "12345678"), "ok");
        assert_eq!(p(TaiwanCompatriotPermit, "1234567890"), "ok");
        assert_eq!(p(TaiwanCompatriotPermit, "12345678AB"), "ok");
        assert_eq!(p(TaiwanCompatriotPermit, "1234567A"), "document.format");
        assert_eq!(p(TaiwanCompatriotPermit, "123456789"), "document.format");
        assert_eq!(p(ForeignPermanentResidence, "usa123456789012"), "ok");
        assert_eq!(
            p(ForeignPermanentResidence, "US1234567890123"),
            "document.format"
        );
        assert_eq!(
            p(ForeignPermanentResidence, &with_check("95184019850612001")),
            "ok"
        );
        assert_eq!(
            p(ForeignPermanentResidence, &with_check("51018419850612001")),
            "document.region"
        );
        let fpr = Document::parse(ForeignPermanentResidence, &with_check("95184019850612001"))
            .expect("valid");
        assert_eq!(fpr.birth_date(), NaiveDate::from_ymd_opt(1985, 6, 12));
        assert_eq!(fpr.sex(), Option::None);
        assert_eq!(p(Passport, "e1234567"), "ok");
        assert_eq!(p(Passport, "1234"), "document.format");
        assert_eq!(p(Passport, "AB-12345"), "document.format");
        assert_eq!(p(HkMacaoHomeReturnPermit, "港12345678"), "document.format");
        assert_eq!(
            p(ForeignPermanentResidence, "美国123456789012"),
            "document.format"
        );
        assert_eq!(p(Passport, &"A".repeat(21)), "document.format");
        let passport = Document::parse(Passport, "e1234567").expect("valid");
        assert_eq!(passport.birth_date(), Option::None);
        assert_eq!(passport.normalized(), "passport:E1234567");
    }

    #[test]
    fn no_document_is_a_valid_answer() {
        let d = Document::parse(DocType::None, "  ").expect("valid");
        assert_eq!(d, Document::none());
        assert_eq!(d.normalized(), "none:");
        assert_eq!(
            code(Document::parse(DocType::None, "123")),
            "document.unexpected_number"
        );
    }

    #[test]
    fn serde_validates_and_debug_masks() {
        let d = Document::parse(DocType::MainlandId, "11010519491231002X").expect("valid");
        let json = serde_json::to_string(&d).expect("serialises");
        assert_eq!(
            json,
            r#"{"doc_type":"mainland_id","number":"11010519491231002X"}"#
        );
        let back: Document = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, d);
        let bad = r#"{"doc_type":"mainland_id","number":"110105194912310021"}"#;
        assert!(serde_json::from_str::<Document>(bad).is_err());
        let dbg = format!("{d:?}");
        assert!(!dbg.contains("19491231"), "{dbg}");
    }

    fn body17() -> impl Strategy<Value = String> {
        // Region 1xxxxx-8xxxxx, a real date, any sequence.
        (
            1u32..=8,
            0u32..100_000,
            NaiveDate::from_ymd_opt(1900, 1, 1)
                .expect("valid")
                .num_days_from_ce()
                ..=NaiveDate::from_ymd_opt(2100, 12, 31)
                    .expect("valid")
                    .num_days_from_ce(),
            0u32..1000,
        )
            .prop_map(|(first, rest, days, seq)| {
                let date = NaiveDate::from_num_days_from_ce_opt(days).expect("in range");
                format!("{first}{rest:05}{}{seq:03}", date.format("%Y%m%d"))
            })
    }

    proptest! {
        #[test]
        fn every_valid_body_with_its_check_digit_parses(body in body17()) {
            let n = with_check(&body);
            let d = Document::parse(DocType::MainlandId, &n.to_lowercase());
            prop_assert!(d.is_ok(), "{n}");
            let d = d.expect("checked");
            prop_assert_eq!(d.number(), n.as_str());
            prop_assert_eq!(d.birth_date().map(|x| x.format("%Y%m%d").to_string()),
                Some(body[6..14].to_string()));
        }

        #[test]
        fn changing_any_one_character_fails_the_checksum(
            body in body17(), pos in 0usize..18, replacement in 0u8..11,
        ) {
            let n = with_check(&body);
            let new = if replacement == 10 { b'X' } else { b'0' + replacement };
            prop_assume!(n.as_bytes()[pos] != new);
            // X only stands in the check position; elsewhere it is a format error, not a typo.
            prop_assume!(pos == 17 || new != b'X');
            let mut bytes = n.into_bytes();
            bytes[pos] = new;
            let changed = String::from_utf8(bytes).expect("ascii");
            prop_assert_eq!(code(Document::parse(DocType::MainlandId, &changed)), "document.checksum");
        }
    }
}
