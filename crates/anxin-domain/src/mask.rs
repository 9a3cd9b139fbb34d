//! Display masking (脱敏) for people without the unmask permission, and for `Debug` output.
//!
//! Masks keep enough to tell two records apart at a glance and to let the person themself
//! recognise their own record, and hide the rest. Every function counts Unicode characters, never
//! bytes, so Chinese names and full-width input mask cleanly.

use crate::document::Document;
use crate::phone::Phone;

const MASK: char = '*';

/// Keep the first 3 and last 4 characters (`110***********002X`). Numbers shorter than 8
/// characters (some passports and permits) keep only the last 2; those of 2 or fewer show nothing.
/// The output always has as many characters as the number.
pub fn mask_document(doc: &Document) -> String {
    mask_number(doc.number())
}

fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=2 => (0, 0),
        3..=7 => (0, 2),
        _ => (3, 4),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < head || i >= n - tail { c } else { MASK })
        .collect()
}

/// Mainland mobiles as `138****5678`; every other number as its country code and last 4 digits
/// (`+86******1234`, `+852****4567`).
pub fn mask_phone(phone: &Phone) -> String {
    let national = phone.national_number();
    if phone.is_mainland_mobile() {
        return mask_span(national, 3, 4);
    }
    format!("+{}{}", phone.country_code(), mask_span(national, 0, 4))
}

fn mask_span(s: &str, head: usize, tail: usize) -> String {
    let n = s.chars().count();
    if n <= head + tail {
        return MASK.to_string().repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { c } else { MASK })
        .collect()
}

/// Chinese names keep their first character (`张三` → `张*`, `欧阳娜娜` → `欧***`), the usual
/// practice; the interpunct of minority and transliterated names (`买买提·艾力` → `买**·**`) stays
/// so the shape is recognisable. Latin names keep the first letter of each word (`John Smith` →
/// `J*** S****`, `Jean-Luc` → `J***-L**`). A name of one character stays as it is: hiding it would
/// leave nothing to recognise. Surrounding whitespace is trimmed.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    if name.chars().any(is_han) {
        let mut first = true;
        name.chars()
            .map(|c| {
                if is_name_separator(c) {
                    c
                } else if first {
                    first = false;
                    c
                } else {
                    MASK
                }
            })
            .collect()
    } else {
        let mut word_start = true;
        name.chars()
            .map(|c| {
                if is_name_separator(c) {
                    word_start = true;
                    c
                } else if word_start {
                    word_start = false;
                    c
                } else {
                    MASK
                }
            })
            .collect()
    }
}

fn is_name_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '·' | '•' | '・' | '.' | '-' | '\'' | '’')
}

/// CJK unified ideographs, including the extensions where rare surname characters live.
fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{gb11643_check_digit, DocType};
    use proptest::prelude::*;

    #[test]
    fn documents() {
        let d = Document::parse(DocType::MainlandId, "11010519491231002X").expect("valid");
        assert_eq!(mask_document(&d), "110***********002X");
        let p = Document::parse(DocType::Passport, "E12345").expect("valid");
        assert_eq!(mask_document(&p), "****45");
        let h = Document::parse(DocType::HkMacaoHomeReturnPermit, "H12345678").expect("valid");
        assert_eq!(mask_document(&h), "H12**5678");
        assert_eq!(mask_document(&Document::none()), "");
        assert_eq!(mask_number("AB"), "**");
    }

    #[test]
    fn phones() {
        let m = Phone::parse("13812345678").expect("valid");
        assert_eq!(mask_phone(&m), "138****5678");
        let l = Phone::parse("028-85551234").expect("valid");
        assert_eq!(mask_phone(&l), "+86******1234");
        let hk = Phone::parse("+852 9123 4567").expect("valid");
        assert_eq!(mask_phone(&hk), "+852****4567");
    }

    #[test]
    fn names() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name(" 李 "), "李");
        assert_eq!(mask_name("买买提·艾力"), "买**·**");
        assert_eq!(mask_name("John Smith"), "J*** S****");
        assert_eq!(mask_name("Jean-Luc Picard"), "J***-L** P*****");
        assert_eq!(mask_name("O'Brien"), "O'B****");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("𠀋三"), "𠀋*");
    }

    proptest! {
        #[test]
        fn masked_documents_keep_length_and_hide_the_middle(
            body in "[1-8][0-9]{5}(19[0-9]{2}|20[0-9]{2})(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}",
        ) {
            let c = gb11643_check_digit(&body).expect("17 digits");
            let n = format!("{body}{c}");
            let d = Document::parse(DocType::MainlandId, &n).expect("valid");
            let m = mask_document(&d);
            prop_assert_eq!(m.chars().count(), n.chars().count());
            prop_assert_eq!(&m[..3], &n[..3]);
            prop_assert_eq!(&m[14..], &n[14..]);
            prop_assert!(m[3..14].chars().all(|c| c == MASK));
            // The birth date is the part a masked ID must never reveal.
            prop_assert!(!m.contains(&n[6..14]));
        }

        #[test]
        fn masked_short_numbers_keep_length(n in "[A-Z0-9]{5,20}") {
            let d = Document::parse(DocType::Passport, &n).expect("valid");
            let m = mask_document(&d);
            prop_assert_eq!(m.chars().count(), n.len());
            let len = n.len();
            let shown = if len >= 8 { 7 } else { 2 };
            prop_assert_eq!(m.chars().filter(|&c| c != MASK).count() <= shown, true);
            prop_assert_eq!(&m[len - 2..], &n[len - 2..]);
        }

        #[test]
        fn masked_names_keep_length(name in "\\PC{0,12}") {
            let trimmed = name.trim();
            prop_assert_eq!(mask_name(&name).chars().count(), trimmed.chars().count());
        }
    }
}
