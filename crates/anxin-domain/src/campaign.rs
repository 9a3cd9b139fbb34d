//! Distribution campaigns (物资发放, issue 7) (owner: campaigns): campaign modes (first come first
//! served, lottery), pickup and delivery, eligibility, the states, pickup codes, the lottery draw
//! and the shape of a plan's `supplies` entries.
//!
//! - **States**: `draft → open → closed`; a draft or open campaign may be `cancelled`.
//! - **Codes**: 10 characters from a 32-letter alphabet without 0/1/I/O (50 bits), shown as
//!   `XXXXX-XXXXX` and as a QR code; typed codes are normalised (case, spaces and dashes).
//! - **Lottery**: applicants in a fixed order (by reservation id) are shuffled by a ChaCha20
//!   generator seeded with the recorded seed (Fisher–Yates: every order equally likely), and
//!   the first ones that fit the stock win; the same seed gives the same winners, so a draw can
//!   be checked afterwards.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Characters of a pickup code: digits and capitals without 0/1/I/O (read aloud at a table).
pub const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters per code: 10 × 5 bits = 50 bits.
pub const CODE_LEN: usize = 10;

/// A code from (at least 10) random or keyed bytes, in its stored form (no dash).
pub fn code_from_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(CODE_LEN)
        .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
        .collect()
}

/// A code as shown: `XXXXX-XXXXX`.
pub fn display_code(code: &str) -> String {
    if code.len() == CODE_LEN {
        format!("{}-{}", &code[..CODE_LEN / 2], &code[CODE_LEN / 2..])
    } else {
        code.to_owned()
    }
}

/// A typed code in its one form (capitals, no spaces or dashes); `None` when it cannot be a code.
pub fn normalize_code(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == CODE_LEN && s.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(s)
}

pub const MODES: &[&str] = &["fcfs", "lottery"];
pub const FULFILMENTS: &[&str] = &["pickup", "delivery"];
/// `all`: every household in scope; `vulnerable`: only households with a vulnerable person.
pub const ELIGIBILITIES: &[&str] = &["all", "vulnerable"];
pub const STATES: &[&str] = &["draft", "open", "closed", "cancelled"];

/// Whether a campaign may go from `from` to `to`.
pub fn can_move(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("draft", "open") | ("open", "closed") | ("draft" | "open", "cancelled")
    )
}

/// The lottery: indexes of the winners among `applicants` (in their fixed order), at most
/// `places`, drawn uniformly with `seed`.
pub fn draw(applicants: usize, places: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..applicants).collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    order.truncate(places.min(applicants));
    order
}

/// One entry of a plan's `supplies` (read by the campaigns' activation step): a campaign opened
/// for the activated node when the plan is activated, closed when it is stood down.
///
/// ```json
/// {"item": "mask", "quantity_per_household": 2, "fulfilment": "pickup", "mode": "fcfs",
///  "stock": 500, "title": "口罩发放", "place": "社区居委会", "hours": 72, "eligibility": "all"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyEntry {
    /// The item's code in the catalogue (`supply_items.code`, e.g. `mask`).
    pub item: String,
    #[serde(default = "one")]
    pub quantity_per_household: i64,
    /// `pickup` (one slot at `place` for `hours`) or `delivery`.
    #[serde(default = "pickup")]
    pub fulfilment: String,
    /// `fcfs` or `lottery` (drawn when the slot ends … by a worker; see the campaign).
    #[serde(default = "fcfs")]
    pub mode: String,
    /// Units set aside.
    pub stock: i64,
    /// The campaign's title (default: the item's name and 发放).
    #[serde(default)]
    pub title: Option<String>,
    /// The pickup place's label.
    #[serde(default)]
    pub place: Option<String>,
    /// How long the pickup slot lasts from activation, in hours (default 72).
    #[serde(default)]
    pub hours: Option<i64>,
    /// `all` (default) or `vulnerable`.
    #[serde(default)]
    pub eligibility: Option<String>,
}

fn one() -> i64 {
    1
}
fn pickup() -> String {
    "pickup".into()
}
fn fcfs() -> String {
    "fcfs".into()
}

/// Why an entry is refused: (code, field).
pub type EntryError = (&'static str, String);

impl SupplyEntry {
    /// Parse and check entry number `i` of a plan's `supplies`.
    pub fn parse(i: usize, v: &serde_json::Value) -> Result<SupplyEntry, EntryError> {
        let field = |f: &str| format!("supplies[{i}].{f}");
        let e: SupplyEntry = serde_json::from_value(v.clone())
            .map_err(|_| ("campaign.supplies_invalid", format!("supplies[{i}]")))?;
        if e.item.trim().is_empty() || e.item.len() > 40 {
            return Err(("value.invalid", field("item")));
        }
        if !(1..=1_000).contains(&e.quantity_per_household) {
            return Err(("value.out_of_range", field("quantity_per_household")));
        }
        if !FULFILMENTS.contains(&e.fulfilment.as_str()) {
            return Err(("value.invalid", field("fulfilment")));
        }
        if !MODES.contains(&e.mode.as_str()) {
            return Err(("value.invalid", field("mode")));
        }
        if !(1..=10_000_000).contains(&e.stock) {
            return Err(("value.out_of_range", field("stock")));
        }
        if e.hours.is_some_and(|h| !(1..=24 * 30).contains(&h)) {
            return Err(("value.out_of_range", field("hours")));
        }
        if e.eligibility
            .as_deref()
            .is_some_and(|x| !ELIGIBILITIES.contains(&x))
        {
            return Err(("value.invalid", field("eligibility")));
        }
        if e.title.as_deref().is_some_and(|t| t.chars().count() > 80)
            || e.place.as_deref().is_some_and(|t| t.chars().count() > 80)
        {
            return Err(("value.too_long", field("title")));
        }
        Ok(e)
    }

    /// Every entry of a plan body, or the first refusal.
    pub fn parse_all(supplies: &[serde_json::Value]) -> Result<Vec<SupplyEntry>, EntryError> {
        supplies
            .iter()
            .enumerate()
            .map(|(i, v)| SupplyEntry::parse(i, v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_normalise_and_show() {
        let c = code_from_bytes(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(c.len(), CODE_LEN);
        let shown = display_code(&c);
        assert_eq!(shown.len(), CODE_LEN + 1);
        assert_eq!(normalize_code(&shown.to_lowercase()), Some(c.clone()));
        assert_eq!(normalize_code(" 2345 6-789ab "), Some("23456789AB".into()));
        assert_eq!(normalize_code("0000000000"), None);
        assert_eq!(normalize_code("23456"), None);
    }

    #[test]
    fn states_move_forward_only() {
        assert!(can_move("draft", "open"));
        assert!(can_move("open", "closed"));
        assert!(can_move("open", "cancelled"));
        assert!(!can_move("closed", "open"));
        assert!(!can_move("cancelled", "open"));
        assert!(!can_move("draft", "closed"));
    }

    #[test]
    fn entries_parse_with_defaults_and_refuse_bad_fields() {
        let e = SupplyEntry::parse(0, &serde_json::json!({"item": "mask", "stock": 10})).unwrap();
        assert_eq!(e.quantity_per_household, 1);
        assert_eq!(e.fulfilment, "pickup");
        assert_eq!(e.mode, "fcfs");
        let bad = SupplyEntry::parse(2, &serde_json::json!({"item": "mask", "stock": 0}));
        assert_eq!(
            bad,
            Err(("value.out_of_range", "supplies[2].stock".to_owned()))
        );
        let bad = SupplyEntry::parse(0, &serde_json::json!({"item": "mask", "stock": 1, "x": 1}));
        assert_eq!(bad.unwrap_err().0, "campaign.supplies_invalid");
        let bad = SupplyEntry::parse(
            1,
            &serde_json::json!({"item": "mask", "stock": 1, "mode": "race"}),
        );
        assert_eq!(bad.unwrap_err().1, "supplies[1].mode");
    }

    proptest! {
        #[test]
        fn draw_gives_min_of_places_and_applicants_distinct(n in 0usize..300, k in 0usize..400, seed: u64) {
            let w = draw(n, k, seed);
            prop_assert_eq!(w.len(), n.min(k));
            let mut s = w.clone();
            s.sort_unstable();
            s.dedup();
            prop_assert_eq!(s.len(), w.len());
            prop_assert!(w.iter().all(|i| *i < n));
            prop_assert_eq!(draw(n, k, seed), w);
        }
    }

    #[test]
    fn draw_is_roughly_uniform() {
        // 10 applicants, 3 places, 20,000 draws: each wins about 30% of the time.
        let mut wins = [0u32; 10];
        for seed in 0..20_000u64 {
            for i in draw(10, 3, seed) {
                wins[i] += 1;
            }
        }
        for w in wins {
            assert!((5_400..6_600).contains(&w), "{wins:?}");
        }
    }
}
