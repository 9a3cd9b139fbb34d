//! Phone numbers, stored in E.164 (`+8613812345678`) so the same number typed three ways is one
//! number: SMS gateways want E.164, and blind indexes and de-duplication need one form.
//!
//! Accepted input, after dropping spaces, dashes and parentheses (full-width ones too):
//! - mainland mobile `1[3-9]` + 9 digits, optionally prefixed `+86`, `0086` or `86`;
//! - mainland landline `0` + area code + 7–8 digit subscriber number (`028-85551234`), optionally
//!   after `+86`, with or without the trunk `0` (`+86 (0)28 …`). Area codes 10 and 20–29 have two
//!   digits, every other one three (the national numbering plan), so no table is needed;
//! - international `+` or `00`, a country code, 8–15 digits in all (E.164's limit).
//!
//! A landline without its area code is refused: the area it belongs to cannot be guessed.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// A phone number in E.164 form. `Debug` prints it masked; there is deliberately no `Display`,
/// so it cannot slip into a log line through `{}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Phone")
            .field(&crate::mask::mask_phone(self))
            .finish()
    }
}

fn err(reason: &'static str) -> DomainError {
    DomainError::PhoneFormat { reason }
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, DomainError> {
        let cleaned: String = raw
            .chars()
            .map(|c| match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .filter(|c| !(c.is_whitespace() || matches!(c, '-' | '(' | ')' | '\u{2013}')))
            .collect();
        if cleaned.is_empty() {
            return Err(err("empty"));
        }
        let (international, digits) = if let Some(rest) = cleaned.strip_prefix('+') {
            (true, rest)
        } else if let Some(rest) = cleaned.strip_prefix("00") {
            (true, rest)
        } else {
            (false, cleaned.as_str())
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("only digits after an optional + or 00"));
        }
        if international {
            if let Some(national) = digits.strip_prefix("86") {
                return mainland(national);
            }
            if digits.starts_with('0') {
                return Err(err("country codes do not start with 0"));
            }
            if !(8..=15).contains(&digits.len()) {
                return Err(err("international numbers have 8 to 15 digits"));
            }
            return Ok(Phone(format!("+{digits}")));
        }
        if let Some(national) = digits.strip_prefix("86") {
            if is_mobile(national) {
                return Ok(Phone(format!("+86{national}")));
            }
        }
        if is_mobile(digits) {
            return Ok(Phone(format!("+86{digits}")));
        }
        if digits.starts_with('0') {
            return landline(digits);
        }
        Err(err("landline numbers need their area code"))
    }

    /// The E.164 form, e.g. `+8613812345678`. Personal data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_mainland(&self) -> bool {
        self.0.starts_with("+86")
    }

    pub fn is_mainland_mobile(&self) -> bool {
        self.is_mainland() && is_mobile(&self.0[3..])
    }

    /// The ITU country code without `+`. E.164 country codes form a prefix code, so the length
    /// follows from the first digits: see [`country_code_len`].
    pub fn country_code(&self) -> &str {
        let digits = &self.0[1..];
        &digits[..country_code_len(digits)]
    }

    /// The digits after the country code.
    pub fn national_number(&self) -> &str {
        &self.0[1 + self.country_code().len()..]
    }

    /// The form people in China write: `138 1234 5678`, `028-85551234`; other countries' numbers
    /// stay in E.164, the one form that is unambiguous from here.
    pub fn national(&self) -> String {
        let n = self.national_number();
        if self.is_mainland_mobile() {
            format!("{} {} {}", &n[..3], &n[3..7], &n[7..])
        } else if self.is_mainland() {
            let area = mainland_area_len(n);
            format!("0{}-{}", &n[..area], &n[area..])
        } else {
            self.0.clone()
        }
    }
}

fn is_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && matches!(b[1], b'3'..=b'9') && b.iter().all(u8::is_ascii_digit)
}

/// Length of the area code (without the trunk 0) at the start of a mainland landline number.
fn mainland_area_len(national: &str) -> usize {
    match national.as_bytes().first() {
        Some(b'1' | b'2') => 2,
        _ => 3,
    }
}

/// The national part after `+86`/`0086`.
fn mainland(national: &str) -> Result<Phone, DomainError> {
    if is_mobile(national) {
        return Ok(Phone(format!("+86{national}")));
    }
    if national.starts_with('0') {
        landline(national)
    } else {
        landline(&format!("0{national}"))
    }
}

/// `digits` starts with the trunk 0.
fn landline(digits: &str) -> Result<Phone, DomainError> {
    let national = &digits[1..];
    let b = national.as_bytes();
    let area = mainland_area_len(national);
    let area_ok = match b.first() {
        Some(b'1') => b.get(1) == Some(&b'0'),
        Some(b'2'..=b'9') => true,
        _ => false,
    };
    if !area_ok || b.len() <= area {
        return Err(err("unknown area code"));
    }
    let subscriber = &national[area..];
    if !(7..=8).contains(&subscriber.len()) || matches!(subscriber.as_bytes()[0], b'0' | b'1') {
        return Err(err(
            "landline subscriber numbers have 7 or 8 digits, not starting 0 or 1",
        ));
    }
    Ok(Phone(format!("+86{national}")))
}

/// Length of the ITU-T E.164 country code at the start of `digits`: 1 for zones 1 and 7, 2 for
/// the assigned two-digit codes, 3 for every other.
pub fn country_code_len(digits: &str) -> usize {
    let b = digits.as_bytes();
    match b.first() {
        Some(b'1' | b'7') => 1,
        Some(&first) => {
            let second = b.get(1).copied().unwrap_or(b'0');
            let two = matches!(
                (first, second),
                (b'2', b'0' | b'7')
                    | (b'3', b'0'..=b'4' | b'6' | b'9')
                    | (b'4', b'0' | b'1' | b'3'..=b'9')
                    | (b'5', b'1'..=b'8')
                    | (b'6', b'0'..=b'6')
                    | (b'8', b'1' | b'2' | b'4' | b'6')
                    | (b'9', b'0'..=b'5' | b'8')
            );
            if two {
                2
            } else {
                3.min(b.len())
            }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<String, &'static str> {
        Phone::parse(s).map(|x| x.0).map_err(|e| e.code())
    }

    #[test]
    fn mainland_mobile_in_its_usual_spellings() {
        for s in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+86 138 1234 5678",
            "+86-13812345678",
            "008613812345678",
            "8613812345678",
            "(+86) 138 1234 5678",
            "１３８１２３４５６７８",
        ] {
            assert_eq!(p(s), Ok("+8613812345678".into()), "{s}");
        }
        let ph = Phone::parse("13812345678").expect("valid");
        assert!(ph.is_mainland_mobile());
        assert_eq!(ph.national(), "138 1234 5678");
        assert_eq!(ph.country_code(), "86");
        assert_eq!(ph.national_number(), "13812345678");
        assert_eq!(p("12812345678"), Err("phone.format"));
        assert_eq!(p("1381234567"), Err("phone.format"));
    }

    #[test]
    fn mainland_landlines() {
        assert_eq!(p("028-85551234"), Ok("+862885551234".into()));
        assert_eq!(p("(028) 8555 1234"), Ok("+862885551234".into()));
        assert_eq!(p("+86 28 85551234"), Ok("+862885551234".into()));
        assert_eq!(p("+86 (0)28 85551234"), Ok("+862885551234".into()));
        assert_eq!(p("010-65551234"), Ok("+861065551234".into()));
        assert_eq!(p("0816-2345678"), Ok("+868162345678".into()));
        assert_eq!(p("0571-87654321"), Ok("+8657187654321".into()));
        let ph = Phone::parse("028-85551234").expect("valid");
        assert!(!ph.is_mainland_mobile());
        assert_eq!(ph.national(), "028-85551234");
        assert_eq!(
            Phone::parse("0816-2345678").expect("valid").national(),
            "0816-2345678"
        );
        assert_eq!(p("85551234"), Err("phone.format"));
        assert_eq!(p("011-65551234"), Err("phone.format"));
        assert_eq!(p("028-05551234"), Err("phone.format"));
        assert_eq!(p("028-555123"), Err("phone.format"));
        assert_eq!(p("028-855512345"), Err("phone.format"));
    }

    #[test]
    fn international() {
        assert_eq!(p("+852 9123 4567"), Ok("+85291234567".into()));
        assert_eq!(p("00852 9123 4567"), Ok("+85291234567".into()));
        assert_eq!(p("+1 (415) 555-0100"), Ok("+14155550100".into()));
        let hk = Phone::parse("+85291234567").expect("valid");
        assert_eq!(hk.country_code(), "852");
        assert_eq!(hk.national(), "+85291234567");
        assert_eq!(
            Phone::parse("+14155550100").expect("valid").country_code(),
            "1"
        );
        assert_eq!(
            Phone::parse("+447911123456").expect("valid").country_code(),
            "44"
        );
        assert_eq!(p("+1234567"), Err("phone.format"));
        assert_eq!(p("+1234567890123456"), Err("phone.format"));
        assert_eq!(p("+0123456789"), Err("phone.format"));
        assert_eq!(p("+852 9123 456a"), Err("phone.format"));
        assert_eq!(p(""), Err("phone.format"));
        assert_eq!(p("+"), Err("phone.format"));
    }

    #[test]
    fn serde_and_debug() {
        let ph = Phone::parse("138 1234 5678").expect("valid");
        assert_eq!(
            serde_json::to_string(&ph).expect("ser"),
            "\"+8613812345678\""
        );
        let back: Phone = serde_json::from_str("\"138-1234-5678\"").expect("de");
        assert_eq!(back, ph);
        assert!(serde_json::from_str::<Phone>("\"12\"").is_err());
        assert!(!format!("{ph:?}").contains("1234"));
    }

    fn canonical() -> impl Strategy<Value = String> {
        prop_oneof![
            (3u8..=9, 0u64..1_000_000_000).prop_map(|(b, r)| format!("+861{b}{r:09}")),
            (
                prop_oneof![
                    Just("10".to_string()),
                    (20u32..30).prop_map(|a| a.to_string()),
                    (300u32..1000).prop_map(|a| a.to_string()),
                ],
                2u8..=9,
                prop_oneof![
                    (0u32..1_000_000).prop_map(|r| format!("{r:06}")),
                    (0u32..10_000_000).prop_map(|r| format!("{r:07}"))
                ],
            )
                .prop_map(|(area, first, rest)| format!("+86{area}{first}{rest}")),
            (
                prop_oneof![
                    Just("852"),
                    Just("853"),
                    Just("886"),
                    Just("1"),
                    Just("44"),
                    Just("81")
                ],
                proptest::collection::vec(0u8..10, 7..=12),
            )
                .prop_map(|(cc, ds)| {
                    let mut s = format!("+{cc}");
                    s.extend(ds.iter().map(|d| char::from(b'0' + d)));
                    s.truncate(16);
                    s
                }),
        ]
    }

    proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(c in canonical()) {
            let ph = Phone::parse(&c);
            prop_assert!(ph.is_ok(), "{c}");
            let ph = ph.expect("checked");
            prop_assert_eq!(ph.as_str(), c.as_str());
            let again = Phone::parse(ph.as_str()).expect("fixed point");
            prop_assert_eq!(again.clone(), ph.clone());
            let via_national = Phone::parse(&ph.national()).expect("national form parses");
            prop_assert_eq!(via_national, ph);
        }

        #[test]
        fn separators_do_not_matter(
            c in canonical(),
            seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just(" - ")], 16),
        ) {
            let mut spaced = String::new();
            for (ch, sep) in c.chars().zip(seps.iter().cycle()) {
                spaced.push(ch);
                spaced.push_str(sep);
            }
            prop_assert_eq!(p(&spaced), Ok(c.clone()));
            let zero_zero = c.replacen('+', "00", 1);
            prop_assert_eq!(p(&zero_zero), Ok(c));
        }
    }
}
