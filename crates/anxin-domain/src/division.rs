//! Administrative division codes.
//!
//! GB/T 2260 gives 6-digit codes down to the county/district; the National Bureau of Statistics'
//! 12-digit statistical division codes (统计用区划代码) extend them: digits 1–6 the county, 7–9 the
//! street or township, 10–12 the community or village committee. A division is identified by its
//! 12-digit form with the lower segments zero: `510100000000` is Chengdu, `510104000000` Jinjiang
//! district, `510104001000` a street in it, `510104001001` a community of that street.
//!
//! Codes are attributes of tree nodes, never their keys: divisions are renamed, merged, split and
//! recoded (see [`crate::divdiff`]), while the records hanging off them must stay attached.
//!
//! The province level is not part of the platform's tree (it starts at the city), so province
//! codes such as `510000` are refused.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Levels of the platform's tree that divisions live on, top down. Compounds (小区) have no
    /// statistical code; they are tree nodes below the community.
    pub enum Level: "level" {
        City = "city", "市",
        District = "district", "区",
        Street = "street", "街道",
        Community = "community", "社区",
        Compound = "compound", "小区",
    }
}

impl Level {
    /// The next level down, `None` below the compound.
    pub const fn child(self) -> Option<Level> {
        match self {
            Level::City => Some(Level::District),
            Level::District => Some(Level::Street),
            Level::Street => Some(Level::Community),
            Level::Community => Some(Level::Compound),
            Level::Compound => None,
        }
    }

    /// The next level up, `None` above the city.
    pub const fn parent(self) -> Option<Level> {
        match self {
            Level::City => None,
            Level::District => Some(Level::City),
            Level::Street => Some(Level::District),
            Level::Community => Some(Level::Street),
            Level::Compound => Some(Level::Community),
        }
    }

    /// How many leading digits of the 12-digit code are significant at this level; `None` for
    /// the compound, which has no code.
    pub const fn code_digits(self) -> Option<usize> {
        match self {
            Level::City => Some(4),
            Level::District => Some(6),
            Level::Street => Some(9),
            Level::Community => Some(12),
            Level::Compound => None,
        }
    }
}

/// A division code in canonical 12-digit form. The level is read from the trailing zero segments.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DivisionCode(String);

impl TryFrom<String> for DivisionCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DivisionCode::parse(&s)
    }
}

impl From<DivisionCode> for String {
    fn from(c: DivisionCode) -> String {
        c.0
    }
}

impl std::fmt::Debug for DivisionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DivisionCode({})", self.0)
    }
}

impl std::fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DivisionCode {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DivisionCode::parse(s)
    }
}

fn err(reason: &'static str) -> DomainError {
    DomainError::DivisionCodeFormat { reason }
}

impl DivisionCode {
    /// Accepts 4 (city), 6 (GB/T 2260), 9 (street) and 12-digit codes, with or without trailing
    /// zero segments; whitespace is ignored. `5101`, `510100` and `510100000000` are the same code.
    pub fn parse(raw: &str) -> Result<DivisionCode, DomainError> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("digits only"));
        }
        if ![4, 6, 9, 12].contains(&digits.len()) {
            return Err(err("4, 6, 9 or 12 digits"));
        }
        let mut code = digits;
        while code.len() < 12 {
            code.push('0');
        }
        if !matches!(code.as_bytes()[0], b'1'..=b'8') {
            return Err(err("province part must start with 1-8"));
        }
        if &code[2..4] == "00" {
            return Err(err("province codes are above the city level"));
        }
        if &code[6..9] == "000" && &code[9..12] != "000" {
            return Err(err("a community code needs its street segment"));
        }
        Ok(DivisionCode(code))
    }

    /// The level read from the zero segments. Cities without districts (东莞, 中山, 儋州, 嘉峪关)
    /// have streets and towns directly below the city code; those are still streets.
    pub fn level(&self) -> Level {
        let z = |r: std::ops::Range<usize>| self.0[r].bytes().all(|b| b == b'0');
        if z(4..12) {
            Level::City
        } else if z(6..12) {
            Level::District
        } else if z(9..12) {
            Level::Street
        } else {
            Level::Community
        }
    }

    /// The canonical 12-digit form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit GB/T 2260 prefix (the county, or the city itself as `510100`).
    pub fn gb2260(&self) -> &str {
        &self.0[..6]
    }

    /// The significant digits: 4 for a city, 6 for a district, 9 for a street, 12 for a community.
    pub fn short(&self) -> &str {
        let n = self.level().code_digits().unwrap_or(12);
        &self.0[..n]
    }

    /// The code of the division that contains this one; `None` for a city. For a street of a city
    /// without districts this is the city.
    pub fn parent(&self) -> Option<DivisionCode> {
        let keep = match self.level() {
            Level::City | Level::Compound => return None,
            Level::District => 4,
            Level::Street => 6,
            Level::Community => 9,
        };
        let mut code = self.0[..keep].to_string();
        while code.len() < 12 {
            code.push('0');
        }
        // Re-reading the level from the zeros is what lifts a street of a city without districts
        // straight to the city.
        Some(DivisionCode(code))
    }

    /// Whether `other` lies strictly inside this division, by code. Codes change over time, so this
    /// answers "inside by the current codes"; access control uses tree node ids instead.
    pub fn contains(&self, other: &DivisionCode) -> bool {
        self != other && other.0.starts_with(self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;
    use proptest::prelude::*;

    fn c(s: &str) -> DivisionCode {
        DivisionCode::parse(s).expect("valid")
    }

    #[test]
    fn names_round_trip() {
        check_round_trip(Level::ALL);
    }

    #[test]
    fn levels_chain() {
        let mut l = Level::City;
        let mut n = 1;
        while let Some(next) = l.child() {
            assert_eq!(next.parent(), Some(l));
            assert!(next > l);
            l = next;
            n += 1;
        }
        assert_eq!(n, Level::ALL.len());
        assert_eq!(Level::City.parent(), None);
    }

    #[test]
    fn levels_from_trailing_zeros() {
        assert_eq!(c("510100000000").level(), Level::City);
        assert_eq!(c("510104000000").level(), Level::District);
        assert_eq!(c("510104001000").level(), Level::Street);
        assert_eq!(c("510104001001").level(), Level::Community);
        assert_eq!(c("5101"), c("510100000000"));
        assert_eq!(c("5101").short(), "5101");
        assert_eq!(c("510104").short(), "510104");
        assert_eq!(c("510104001").short(), "510104001");
        assert_eq!(c(" 5101 0400 1001 ").as_str(), "510104001001");
        assert_eq!(c("510104001001").gb2260(), "510104");
    }

    #[test]
    fn parents() {
        assert_eq!(c("510104001001").parent(), Some(c("510104001")));
        assert_eq!(c("510104001").parent(), Some(c("510104")));
        assert_eq!(c("510104").parent(), Some(c("5101")));
        assert_eq!(c("5101").parent(), None);
        // 东莞: towns and streets sit directly under the city.
        assert_eq!(c("441900003").level(), Level::Street);
        assert_eq!(c("441900003").parent(), Some(c("4419")));
        assert!(c("5101").contains(&c("510104001001")));
        assert!(!c("510104").contains(&c("510105001")));
        assert!(!c("510104").contains(&c("510104")));
    }

    #[test]
    fn refusals() {
        let e = |s: &str| DivisionCode::parse(s).err().map(|e| e.code());
        assert_eq!(e("51"), Some("division.code_format"));
        assert_eq!(e("510000"), Some("division.code_format"));
        assert_eq!(e("51010"), Some("division.code_format"));
        assert_eq!(e("5101a4"), Some("division.code_format"));
        assert_eq!(e("910104"), Some("division.code_format"));
        assert_eq!(e("510104000001"), Some("division.code_format"));
        assert_eq!(e(""), Some("division.code_format"));
    }

    #[test]
    fn serde() {
        let code = c("510104001");
        assert_eq!(
            serde_json::to_string(&code).expect("ser"),
            "\"510104001000\""
        );
        let back: DivisionCode = serde_json::from_str("\"510104001\"").expect("de");
        assert_eq!(back, code);
        assert!(serde_json::from_str::<DivisionCode>("\"51\"").is_err());
    }

    fn any_code() -> impl Strategy<Value = String> {
        (
            1u32..=8,
            0u32..10,
            0u32..100,
            0u32..100,
            0u32..1000,
            0u32..1000,
            0usize..4,
        )
            .prop_map(|(p1, p2, city, district, street, community, depth)| {
                let full = format!("{p1}{p2}{city:02}{district:02}{street:03}{community:03}");
                full[..[4, 6, 9, 12][depth]].to_string()
            })
    }

    proptest! {
        #[test]
        fn short_and_long_forms_parse_the_same(s in any_code()) {
            let Ok(code) = DivisionCode::parse(&s) else { return Ok(()); };
            prop_assert_eq!(DivisionCode::parse(code.short()).ok(), Some(code.clone()));
            prop_assert_eq!(DivisionCode::parse(code.as_str()).ok(), Some(code.clone()));
            prop_assert_eq!(DivisionCode::parse(code.gb2260()).ok().map(|g| g.level() <= Level::District), Some(true));
        }

        #[test]
        fn parent_is_a_prefix_one_level_up(s in any_code()) {
            let Ok(code) = DivisionCode::parse(&s) else { return Ok(()); };
            match code.parent() {
                None => prop_assert_eq!(code.level(), Level::City),
                Some(parent) => {
                    prop_assert!(parent.level() < code.level());
                    prop_assert!(code.as_str().starts_with(parent.short()));
                    prop_assert!(parent.contains(&code));
                    if &code.as_str()[4..6] != "00" {
                        prop_assert_eq!(Some(parent.level()), code.level().parent());
                    }
                }
            }
        }
    }
}
