//! Warnings to people: levels, categories, the workflow, areas and CAP 1.2 mapping.
//!
//! Levels follow the national four-colour scheme (IV blue → I red). CAP 1.2 has no colours, so
//! the level maps onto CAP `severity`: blue → Minor, yellow → Moderate, orange → Severe,
//! red → Extreme (and back; CAP `Unknown` imports as blue, the lowest, for a person to review).
//!
//! Workflow (each step needs a permission in the caller's scope over the warning's node):
//!
//! ```text
//! draft --approve (ApproveWarning)--> approved --issue (IssueWarning)--> issued
//!   ^ edit (DraftWarning)                                                 |-- update (IssueWarning): a new
//!                                                                         |   issued version referring to the
//!                                                                         |   original; this one becomes `updated`
//!                                                                         |-- cancel (IssueWarning) -> cancelled
//!                                                                         '-- expires_at passes -> expired
//! ```
//! A draft or an approved warning may also be cancelled (withdrawn) by whoever may approve it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::area::{Area, Circle};
use crate::roles::Permission;

string_enum! {
    /// The colour level, from IV (blue, least) to I (red, most severe).
    pub enum WarningLevel: "level" {
        Blue = "blue", "蓝色",
        Yellow = "yellow", "黄色",
        Orange = "orange", "橙色",
        Red = "red", "红色",
    }
}

impl WarningLevel {
    /// The Roman numeral of the national scheme (IV blue … I red).
    pub const fn roman(self) -> &'static str {
        match self {
            Self::Blue => "IV",
            Self::Yellow => "III",
            Self::Orange => "II",
            Self::Red => "I",
        }
    }

    /// CAP 1.2 `severity`.
    pub const fn cap_severity(self) -> &'static str {
        match self {
            Self::Blue => "Minor",
            Self::Yellow => "Moderate",
            Self::Orange => "Severe",
            Self::Red => "Extreme",
        }
    }

    /// From CAP `severity`; `Unknown` becomes blue (a person reviews every import anyway).
    pub fn from_cap_severity(s: &str) -> Option<Self> {
        match s {
            "Minor" | "Unknown" => Some(Self::Blue),
            "Moderate" => Some(Self::Yellow),
            "Severe" => Some(Self::Orange),
            "Extreme" => Some(Self::Red),
            _ => None,
        }
    }

    /// Sorting weight: red first.
    pub const fn rank(self) -> u8 {
        match self {
            Self::Blue => 4,
            Self::Yellow => 3,
            Self::Orange => 2,
            Self::Red => 1,
        }
    }
}

string_enum! {
    /// What the warning is about (closed list).
    pub enum WarningCategory: "category" {
        Flood = "flood", "洪涝",
        Rainstorm = "rainstorm", "暴雨",
        Typhoon = "typhoon", "台风",
        Earthquake = "earthquake", "地震",
        Geological = "geological", "地质灾害",
        Fire = "fire", "火灾",
        Gas = "gas", "燃气泄漏",
        Heat = "heat", "高温",
        Cold = "cold", "寒潮",
        PublicHealth = "public_health", "公共卫生",
        Other = "other", "其他",
    }
}

impl WarningCategory {
    /// CAP 1.2 `category`.
    pub const fn cap_category(self) -> &'static str {
        match self {
            Self::Flood | Self::Rainstorm | Self::Typhoon | Self::Heat | Self::Cold => "Met",
            Self::Earthquake | Self::Geological => "Geo",
            Self::Fire => "Fire",
            Self::Gas => "Safety",
            Self::PublicHealth => "Health",
            Self::Other => "Other",
        }
    }
}

string_enum! {
    pub enum WarningStatus: "status" {
        Draft = "draft", "草稿",
        Approved = "approved", "已审核",
        Issued = "issued", "已发布",
        /// Superseded by a newer version (an update refers to it).
        Updated = "updated", "已更新",
        Cancelled = "cancelled", "已解除",
        Expired = "expired", "已过期",
    }
}

string_enum! {
    /// A step of the workflow.
    pub enum WarningAction: "action" {
        Edit = "edit", "编辑",
        Approve = "approve", "审核",
        Issue = "issue", "发布",
        Update = "update", "更新",
        Cancel = "cancel", "解除",
    }
}

impl WarningStatus {
    /// Still in force for residents (shown, counted).
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Issued)
    }
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Updated | Self::Cancelled | Self::Expired)
    }
}

/// Why a workflow step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRefused {
    pub from: WarningStatus,
    pub action: WarningAction,
}

impl StepRefused {
    /// The stable error code.
    pub const CODE: &'static str = "warning.wrong_status";
}

/// The permission a step needs, given where the warning is (cancelling a draft is the
/// approver's call; cancelling an issued warning the issuer's).
pub const fn step_permission(from: WarningStatus, action: WarningAction) -> Permission {
    match (action, from) {
        (WarningAction::Edit, _) => Permission::DraftWarning,
        (WarningAction::Approve, _) => Permission::ApproveWarning,
        (WarningAction::Cancel, WarningStatus::Draft | WarningStatus::Approved) => {
            Permission::ApproveWarning
        }
        (WarningAction::Issue | WarningAction::Update | WarningAction::Cancel, _) => {
            Permission::IssueWarning
        }
    }
}

/// The state after `action`, or why it is refused. `Update` leaves the original `Updated`
/// (the new version starts `Issued`).
pub fn next_status(
    from: WarningStatus,
    action: WarningAction,
) -> Result<WarningStatus, StepRefused> {
    use WarningAction as A;
    use WarningStatus as S;
    match (from, action) {
        (S::Draft, A::Edit) => Ok(S::Draft),
        (S::Draft, A::Approve) => Ok(S::Approved),
        (S::Approved, A::Issue) => Ok(S::Issued),
        (S::Issued, A::Update) => Ok(S::Updated),
        (S::Draft | S::Approved | S::Issued, A::Cancel) => Ok(S::Cancelled),
        _ => Err(StepRefused { from, action }),
    }
}

/// A field the area refused, with the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaInvalid {
    pub code: &'static str,
    pub field: String,
}

/// The most vertices per polygon and parts per area.
pub const MAX_VERTICES: usize = 2_000;
pub const MAX_PARTS: usize = 50;
/// Circle radius limits (metres).
pub const MIN_RADIUS_M: f64 = 1.0;
pub const MAX_RADIUS_M: f64 = 200_000.0;

/// Where a warning applies: polygons and circles (WGS84) and/or tree nodes (their whole subtree).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarningArea {
    #[serde(default)]
    pub polygons: Vec<Vec<[f64; 2]>>,
    #[serde(default)]
    pub circles: Vec<Circle>,
    #[serde(default)]
    pub nodes: Vec<Uuid>,
}

impl WarningArea {
    pub fn geometry(&self) -> Area {
        Area {
            polygons: self.polygons.clone(),
            circles: self.circles.clone(),
        }
    }

    /// Check the shape of the area (WGS84 already). Errors name the part, e.g.
    /// `area.polygons[0][3]`.
    pub fn validate(&self) -> Result<(), AreaInvalid> {
        let bad = |code: &'static str, field: String| Err(AreaInvalid { code, field });
        if self.polygons.is_empty() && self.circles.is_empty() && self.nodes.is_empty() {
            return bad("warning.area_empty", "area".into());
        }
        if self.polygons.len() + self.circles.len() + self.nodes.len() > MAX_PARTS {
            return bad("warning.area_too_large", "area".into());
        }
        for (i, ring) in self.polygons.iter().enumerate() {
            let f = format!("area.polygons[{i}]");
            if ring.len() < 4 {
                return bad("geometry.too_few_points", f);
            }
            if ring.len() > MAX_VERTICES + 1 {
                return bad("geometry.too_many_points", f);
            }
            if ring.first() != ring.last() {
                return bad("geometry.ring_not_closed", f);
            }
            for (j, p) in ring.iter().enumerate() {
                if !valid_lon_lat(p[0], p[1]) {
                    return bad("geometry.invalid", format!("{f}[{j}]"));
                }
            }
        }
        for (i, c) in self.circles.iter().enumerate() {
            let f = format!("area.circles[{i}]");
            if !valid_lon_lat(c.lon, c.lat) {
                return bad("geometry.invalid", f);
            }
            if !(MIN_RADIUS_M..=MAX_RADIUS_M).contains(&c.radius_m) {
                return bad("warning.radius_invalid", format!("{f}.radius_m"));
            }
        }
        Ok(())
    }
}

fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    lon.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lon)
        && (-90.0..=90.0).contains(&lat)
}

/// CAP `identifier` and `sender`: no spaces, commas or restricted characters (`<` and `&`).
pub fn cap_token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && c != ',' && c != '<' && c != '&' && !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;

    #[test]
    fn enums_round_trip() {
        check_round_trip(WarningLevel::ALL);
        check_round_trip(WarningCategory::ALL);
        check_round_trip(WarningStatus::ALL);
        check_round_trip(WarningAction::ALL);
    }

    #[test]
    fn severity_maps_both_ways() {
        for &l in WarningLevel::ALL {
            assert_eq!(WarningLevel::from_cap_severity(l.cap_severity()), Some(l));
        }
        assert_eq!(WarningLevel::Red.roman(), "I");
        assert_eq!(WarningLevel::Blue.zh(), "蓝色");
        assert_eq!(WarningLevel::from_cap_severity("Bad"), None);
    }

    #[test]
    fn workflow() {
        use WarningAction as A;
        use WarningStatus as S;
        assert_eq!(next_status(S::Draft, A::Approve), Ok(S::Approved));
        assert_eq!(next_status(S::Approved, A::Issue), Ok(S::Issued));
        assert_eq!(next_status(S::Issued, A::Update), Ok(S::Updated));
        assert_eq!(next_status(S::Issued, A::Cancel), Ok(S::Cancelled));
        assert!(next_status(S::Draft, A::Issue).is_err());
        assert!(next_status(S::Approved, A::Edit).is_err());
        assert!(next_status(S::Cancelled, A::Cancel).is_err());
        assert!(next_status(S::Expired, A::Update).is_err());
        assert_eq!(
            step_permission(S::Draft, A::Approve),
            Permission::ApproveWarning
        );
        assert_eq!(
            step_permission(S::Approved, A::Issue),
            Permission::IssueWarning
        );
        assert_eq!(
            step_permission(S::Draft, A::Cancel),
            Permission::ApproveWarning
        );
        assert_eq!(
            step_permission(S::Issued, A::Cancel),
            Permission::IssueWarning
        );
        assert_eq!(step_permission(S::Draft, A::Edit), Permission::DraftWarning);
    }

    #[test]
    fn area_validation_names_the_part() {
        assert_eq!(
            WarningArea::default().validate().unwrap_err().code,
            "warning.area_empty"
        );
        let open = WarningArea {
            polygons: vec![vec![
                [104.0, 30.0],
                [104.1, 30.0],
                [104.1, 30.1],
                [104.0, 30.2],
            ]],
            ..Default::default()
        };
        assert_eq!(
            open.validate().unwrap_err(),
            AreaInvalid {
                code: "geometry.ring_not_closed",
                field: "area.polygons[0]".into()
            }
        );
        let c = WarningArea {
            circles: vec![Circle {
                lon: 104.0,
                lat: 30.0,
                radius_m: 0.0,
            }],
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "area.circles[0].radius_m");
        let n = WarningArea {
            nodes: vec![Uuid::nil()],
            ..Default::default()
        };
        assert!(n.validate().is_ok());
    }

    #[test]
    fn cap_tokens() {
        assert!(cap_token_ok("cn.gov.cdemo-2026-001"));
        assert!(!cap_token_ok("a b"));
        assert!(!cap_token_ok("a,b"));
        assert!(!cap_token_ok("a<b"));
        assert!(!cap_token_ok(""));
    }
}
