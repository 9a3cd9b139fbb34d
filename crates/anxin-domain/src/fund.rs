//! The emergency fund ledger (应急资金, issue 7) (owner: fund ledger): source kinds, spending
//! categories, amounts in fen.
//!
//! A fund account belongs to a community (or a street). Money comes in by **source kind**
//! (财政拨款, 社会捐赠, 物业费/公共收益, 废品回收, 其他) and goes out by **spending category**
//! (物资采购, 设备维护, 演练培训, 志愿者保障, 其他). Every amount is a whole number of fen (分),
//! never a float: an entry's amount is `1..=`[`MAX_AMOUNT_FEN`]. The ledger is append-only: a
//! mistake is corrected by a reversal, an entry of the same direction and kind whose amount is
//! the negation of the one it reverses. So every total is a plain sum of signed amounts:
//! income per kind, spending per category, and the balance = income − spending.

use serde::{Deserialize, Serialize};

/// The largest amount of one entry: 10,000,000 yuan (一千万元), in fen. A community's emergency
/// fund is counted in ten-thousands; anything larger is a typing slip (an extra zero or two).
pub const MAX_AMOUNT_FEN: i64 = 1_000_000_000;

string_enum! {
    /// Money in or out.
    pub enum Direction: "direction" {
        Income = "income", "收入",
        Spending = "spending", "支出",
    }
}

string_enum! {
    /// Where income comes from.
    pub enum SourceKind: "kind" {
        /// 财政拨款: the street's or district's allocation.
        Fiscal = "fiscal", "财政拨款",
        /// 社会捐赠: donations of businesses and residents (a donor may ask to stay anonymous).
        Donation = "donation", "社会捐赠",
        /// 物业费/公共收益: the community's share of property fees and public income (advertising,
        /// parking on common land).
        PropertyFees = "property_fees", "物业费/公共收益",
        /// 废品回收: proceeds of recycling drives.
        Recycling = "recycling", "废品回收",
        Other = "other", "其他收入",
    }
}

string_enum! {
    /// What money is spent on.
    pub enum SpendCategory: "kind" {
        /// 物资采购: buying emergency supplies.
        Purchase = "purchase", "物资采购",
        /// 设备维护: upkeep of equipment (pumps, extinguishers, generators).
        Maintenance = "maintenance", "设备维护",
        /// 演练培训: drills and training.
        Drills = "drills", "演练培训",
        /// 志愿者保障: volunteers' meals, insurance, protective gear.
        Volunteers = "volunteers", "志愿者保障",
        Other = "other", "其他支出",
    }
}

impl Direction {
    /// The kind codes of this direction (source kinds for income, categories for spending).
    pub fn kinds(self) -> Vec<&'static str> {
        match self {
            Direction::Income => SourceKind::ALL.iter().map(|k| k.as_str()).collect(),
            Direction::Spending => SpendCategory::ALL.iter().map(|k| k.as_str()).collect(),
        }
    }

    /// The Chinese label of `kind` in this direction, `None` when it is not one of its kinds.
    pub fn kind_zh(self, kind: &str) -> Option<&'static str> {
        match self {
            Direction::Income => kind.parse::<SourceKind>().ok().map(SourceKind::zh),
            Direction::Spending => kind.parse::<SpendCategory>().ok().map(SpendCategory::zh),
        }
    }

    /// The effect of a signed amount of this direction on the balance.
    pub fn on_balance(self, amount_fen: i64) -> i64 {
        match self {
            Direction::Income => amount_fen,
            Direction::Spending => -amount_fen,
        }
    }
}

/// Whether `fen` is an acceptable amount for a new entry: 1 fen up to [`MAX_AMOUNT_FEN`].
pub fn amount_ok(fen: i64) -> bool {
    (1..=MAX_AMOUNT_FEN).contains(&fen)
}

/// Parse an amount in yuan as people type it (`1200`, `1,200.5`, `￥35.80`, `35.8元`) into fen.
/// At most two decimals; no sign; `None` for anything else (the range is checked by
/// [`amount_ok`]).
pub fn parse_yuan(raw: &str) -> Option<i64> {
    let s: String = raw
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim_end_matches('元')
        .chars()
        .filter(|c| *c != ',' && *c != '，' && !c.is_whitespace())
        .collect();
    if s.is_empty() {
        return None;
    }
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s.as_str(), ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2 || whole.len() > 15 {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    w.checked_mul(100)?.checked_add(f)
}

/// Fen as yuan with thousands separators and two decimals: `123456` → `1,234.56`, `-5` →
/// `-0.05`.
pub fn format_yuan(fen: i64) -> String {
    let neg = fen < 0;
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if neg { "-" } else { "" }, abs % 100)
}

/// Totals of a set of entries: each is (direction, kind, signed amount in fen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub income_fen: i64,
    pub spending_fen: i64,
}

impl Totals {
    /// Add one entry's signed amount.
    pub fn add(&mut self, direction: Direction, amount_fen: i64) {
        match direction {
            Direction::Income => self.income_fen += amount_fen,
            Direction::Spending => self.spending_fen += amount_fen,
        }
    }

    /// Income − spending.
    pub fn balance_fen(&self) -> i64 {
        self.income_fen - self.spending_fen
    }
}

/// The balance after adding an entry of `direction` and signed `amount_fen` to `balance_fen`,
/// or `None` when it would fall below zero and overdraft is not allowed (or it overflows).
pub fn balance_after(
    balance_fen: i64,
    direction: Direction,
    amount_fen: i64,
    allow_overdraft: bool,
) -> Option<i64> {
    let next = balance_fen.checked_add(direction.on_balance(amount_fen))?;
    if next < 0 && !allow_overdraft && next < balance_fen {
        return None;
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;
    use proptest::prelude::*;

    #[test]
    fn vocabularies_round_trip() {
        check_round_trip(Direction::ALL);
        check_round_trip(SourceKind::ALL);
        check_round_trip(SpendCategory::ALL);
        assert_eq!(Direction::Income.kind_zh("donation"), Some("社会捐赠"));
        assert_eq!(Direction::Spending.kind_zh("donation"), None);
        assert_eq!(Direction::Spending.kind_zh("purchase"), Some("物资采购"));
    }

    #[test]
    fn yuan_as_typed() {
        assert_eq!(parse_yuan("1200"), Some(120_000));
        assert_eq!(parse_yuan("1,200.5"), Some(120_050));
        assert_eq!(parse_yuan("￥35.80"), Some(3_580));
        assert_eq!(parse_yuan(" 35.8元 "), Some(3_580));
        assert_eq!(parse_yuan("0.01"), Some(1));
        assert_eq!(parse_yuan(".5"), Some(50));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("-5"), None);
        assert_eq!(parse_yuan("1e5"), None);
        assert_eq!(parse_yuan(""), None);
        assert_eq!(parse_yuan("."), None);
        assert_eq!(parse_yuan("99999999999999999999"), None);
        assert_eq!(format_yuan(123_456), "1,234.56");
        assert_eq!(format_yuan(-5), "-0.05");
        assert_eq!(format_yuan(100_000_000), "1,000,000.00");
        assert_eq!(format_yuan(0), "0.00");
    }

    #[test]
    fn overdraft_refused_unless_allowed() {
        assert_eq!(balance_after(100, Direction::Spending, 100, false), Some(0));
        assert_eq!(balance_after(100, Direction::Spending, 101, false), None);
        assert_eq!(balance_after(100, Direction::Spending, 101, true), Some(-1));
        // Reversing an income takes it back out of the balance.
        assert_eq!(balance_after(50, Direction::Income, -80, false), None);
        // Reversing a spending puts the money back, even on an overdrawn account.
        assert_eq!(
            balance_after(-30, Direction::Spending, -10, false),
            Some(-20)
        );
        assert_eq!(balance_after(i64::MAX, Direction::Income, 1, true), None);
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(fen in 0i64..=MAX_AMOUNT_FEN * 10) {
            prop_assert_eq!(parse_yuan(&format_yuan(fen)), Some(fen));
        }

        #[test]
        fn balance_is_income_minus_spending(
            entries in proptest::collection::vec((any::<bool>(), 1i64..=1_000_000), 0..50)
        ) {
            let mut t = Totals::default();
            let mut running = 0i64;
            for (income, amt) in &entries {
                let d = if *income { Direction::Income } else { Direction::Spending };
                t.add(d, *amt);
                running = balance_after(running, d, *amt, true).unwrap();
            }
            prop_assert_eq!(t.balance_fen(), running);
        }
    }
}
