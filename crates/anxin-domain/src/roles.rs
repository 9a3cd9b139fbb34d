//! Roles, permissions and the shape of grants.
//!
//! Access is granted, not assigned: an account holds any number of grants, each a role on one
//! scope (a tree node, a grid or a household) for a period of validity. A community worker who
//! also volunteers holds two grants; a street officer seconded for a month holds a grant that ends.
//!
//! The administrator roles follow the separation of duties that 等保 (MLPS 2.0) asks of a system
//! holding personal data (三权分立): the system administrator runs the tree, imports and
//! configuration; the security administrator manages accounts, grants and keys; the audit
//! administrator reads the audit log. None of the three reads personal data, and no one role both
//! changes who may do what and reads the record of what was done.

use crate::division::Level;
use crate::error::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

string_enum! {
    pub enum Role: "role" {
        SystemAdmin = "system_admin", "系统管理员",
        SecurityAdmin = "security_admin", "安全管理员",
        AuditAdmin = "audit_admin", "审计管理员",
        /// District (and city) emergency management: oversight of everything below.
        DistrictOfficer = "district_officer", "区应急管理人员",
        StreetOfficer = "street_officer", "街道工作人员",
        CommunityWorker = "community_worker", "社区工作者",
        GridWorker = "grid_worker", "网格员",
        Resident = "resident", "居民",
        Provider = "provider", "服务商",
        /// Volunteers and deployed cadres (下沉干部).
        Volunteer = "volunteer", "志愿者",
        /// Accredited third party that accepts remediated major hazards.
        Inspector = "inspector", "第三方机构",
    }
}

string_enum! {
    /// What a grant allows, within its scope. Reading people's data is always masked unless the
    /// role also has [`Permission::Unmask`], and every unmask is audited.
    pub enum Permission: "permission" {
        /// The org tree, buildings, facilities: data about places, not people.
        ReadBase = "read_base", "查看基础数据",
        WriteBase = "write_base", "维护基础数据",
        /// Households and residents, masked.
        ReadPeople = "read_people", "查看人员信息",
        WritePeople = "write_people", "维护人员信息",
        /// See ID numbers, phones and names in clear (audited).
        Unmask = "unmask", "查看敏感信息明文",
        ReadVulnerable = "read_vulnerable", "查看脆弱群体",
        WriteVulnerable = "write_vulnerable", "维护脆弱群体",
        ImportData = "import_data", "导入数据",
        ExportData = "export_data", "导出数据",
        /// Create, move and retire tree nodes; import the division list.
        ManageTree = "manage_tree", "管理组织树",
        /// Channels, calendars and other system settings.
        ManageConfig = "manage_config", "管理系统配置",
        ManageAccounts = "manage_accounts", "管理账号",
        ManageGrants = "manage_grants", "管理授权",
        ManageKeys = "manage_keys", "管理密钥",
        ReadAudit = "read_audit", "查看审计日志",
        /// Devices, readings and alarms in scope.
        ReadMonitor = "read_monitor", "查看监测告警",
        /// Register devices, set their profiles and credentials.
        ManageDevices = "manage_devices", "管理监测设备",
        /// Acknowledge, assign, annotate and clear alarms.
        HandleAlarms = "handle_alarms", "处置告警",
        /// Draft a warning (or promote an alarm to a draft).
        DraftWarning = "draft_warning", "起草预警",
        /// Approve a drafted warning.
        ApproveWarning = "approve_warning", "审核预警",
        /// Issue, update and cancel approved warnings; read the reach board.
        IssueWarning = "issue_warning", "发布预警",
        /// Write, version and review the node's emergency plans (预案).
        ManagePlans = "manage_plans", "管理预案",
        /// Activate and deactivate a plan (or a drill), confirm a triggered activation.
        ActivatePlans = "activate_plans", "启动预案",
        /// Work an incident: its log, tasks, shelters' check-in, draft situation reports.
        RunIncidents = "run_incidents", "应急处置",
        /// Approve and publish situation reports; close an incident and write its review.
        ApproveReports = "approve_reports", "审核情况报告",
        /// The volunteer registry and call-outs.
        ManageVolunteers = "manage_volunteers", "管理志愿者",
        /// Accept or decline one's own call-outs, check in and out.
        RespondCallouts = "respond_callouts", "响应召集",
        /// Record a vulnerable person safe, needing help or moved (welfare checks).
        RecordWelfare = "record_welfare", "登记安全确认",
        /// Issue and revoke entry passes during an activation.
        ManagePasses = "manage_passes", "管理通行证",
        /// Record people passing a gate (by pass code or ID card).
        CheckGates = "check_gates", "门岗登记",
        /// Look up who passed the same gates as a confirmed case (audited).
        ContactLookup = "contact_lookup", "密接查询",
        /// The hazard ledger, inspections, risks and the supervision table in scope (read).
        ReadHazards = "read_hazards", "查看隐患台账",
        /// Carry out inspections: today's to-do list, the checklist on a phone, photos.
        Inspect = "inspect", "开展巡检",
        /// Checklist templates and inspection schedules.
        ManageInspections = "manage_inspections", "管理巡检计划",
        /// Report a hazard, assign it, record remediation and the fix, link the plan's start,
        /// close or reopen it.
        HandleHazards = "handle_hazards", "处置隐患",
        /// Accept (验收) a remediated major hazard: the accredited third party.
        AcceptHazards = "accept_hazards", "隐患验收",
        /// The risk register: risks, their matrix scores, controls and reviews.
        ManageRisks = "manage_risks", "管理风险登记",
        /// Score the communities below (红黄牌) and read the ranked table.
        Supervise = "supervise", "督导考核",
        /// Reserves, depots, balances, norms and gaps, campaigns and orders in scope (read).
        ReadSupplies = "read_supplies", "查看应急物资",
        /// Items, depots, lots and every stock movement; reserve norms; dispatch plans and
        /// their transfers; orders to providers and receiving them.
        ManageSupplies = "manage_supplies", "管理应急物资",
        /// Distribution campaigns: configure and open them, redeem pickup codes, reserve on a
        /// resident's behalf (代办), assign delivery orders.
        RunCampaigns = "run_campaigns", "组织物资发放",
        /// Carry out the delivery orders one is assigned.
        DeliverSupplies = "deliver_supplies", "配送物资",
        /// The emergency fund ledger in scope (read; the public page needs no permission).
        ReadFunds = "read_funds", "查看应急资金",
        /// Record fund sources and spending with their attachments.
        ManageFunds = "manage_funds", "管理应急资金",
        /// A provider's own offers and the orders placed with it.
        Provide = "provide", "服务商供货",
        ReadOwnHousehold = "read_own_household", "查看本户信息",
        WriteOwnHousehold = "write_own_household", "维护本户信息",
    }
}

string_enum! {
    /// What a grant is scoped to.
    pub enum ScopeKind: "scope_kind" {
        /// A node of the org tree and everything below it.
        Node = "node", "组织节点",
        /// A grid (网格): a set of buildings a grid worker is responsible for.
        Grid = "grid", "网格",
        Household = "household", "户",
    }
}

/// A grant's scope: the kind and the id of the node, grid or household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Node(Uuid),
    Grid(Uuid),
    Household(Uuid),
}

impl Scope {
    pub fn kind(self) -> ScopeKind {
        match self {
            Scope::Node(_) => ScopeKind::Node,
            Scope::Grid(_) => ScopeKind::Grid,
            Scope::Household(_) => ScopeKind::Household,
        }
    }

    pub fn id(self) -> Uuid {
        match self {
            Scope::Node(id) | Scope::Grid(id) | Scope::Household(id) => id,
        }
    }
}

use Permission as P;

const COMMUNITY_STAFF: &[Permission] = &[
    P::ReadBase,
    P::WriteBase,
    P::ReadPeople,
    P::WritePeople,
    P::Unmask,
    P::ReadVulnerable,
    P::WriteVulnerable,
    P::ImportData,
    P::ExportData,
    P::ReadMonitor,
    P::ManageDevices,
    P::HandleAlarms,
    P::DraftWarning,
    P::ApproveWarning,
    P::IssueWarning,
    P::ManagePlans,
    P::ActivatePlans,
    P::RunIncidents,
    P::ApproveReports,
    P::ManageVolunteers,
    P::RecordWelfare,
    P::ManagePasses,
    P::CheckGates,
    P::ContactLookup,
    P::ReadHazards,
    P::Inspect,
    P::ManageInspections,
    P::HandleHazards,
    P::ManageRisks,
    P::ReadSupplies,
    P::ManageSupplies,
    P::RunCampaigns,
    P::DeliverSupplies,
    P::ReadFunds,
    P::ManageFunds,
];

/// Grid workers watch and handle alarms and may draft a warning; approving and issuing one is
/// for the community and above.
const GRID_STAFF: &[Permission] = &[
    P::ReadBase,
    P::WriteBase,
    P::ReadPeople,
    P::WritePeople,
    P::Unmask,
    P::ReadVulnerable,
    P::WriteVulnerable,
    P::ImportData,
    P::ExportData,
    P::ReadMonitor,
    P::HandleAlarms,
    P::DraftWarning,
    P::RunIncidents,
    P::RecordWelfare,
    P::ManagePasses,
    P::CheckGates,
    P::ReadHazards,
    P::Inspect,
    P::HandleHazards,
    P::ReadSupplies,
    P::RunCampaigns,
    P::DeliverSupplies,
];

const OFFICER: &[Permission] = &[
    P::ReadBase,
    P::ReadPeople,
    P::ReadVulnerable,
    P::ExportData,
    P::ReadMonitor,
    P::HandleAlarms,
    P::DraftWarning,
    P::ApproveWarning,
    P::IssueWarning,
    P::ManagePlans,
    P::ActivatePlans,
    P::RunIncidents,
    P::ApproveReports,
    P::ManageVolunteers,
    P::ContactLookup,
    P::ReadHazards,
    P::ManageInspections,
    P::HandleHazards,
    P::ManageRisks,
    P::Supervise,
    P::ReadSupplies,
    P::ManageSupplies,
    P::ReadFunds,
];

/// The accredited third party reads the hazards in its scope and accepts remediated major ones;
/// it sees no people.
const INSPECTOR: &[Permission] = &[P::ReadHazards, P::AcceptHazards];

/// Volunteers and deployed cadres answer call-outs, record welfare checks they are given and
/// staff gates; they see no lists of people.
const VOLUNTEER: &[Permission] = &[
    P::RespondCallouts,
    P::RecordWelfare,
    P::CheckGates,
    P::DeliverSupplies,
];

/// A provider (服务商) publishes its offers and works the orders placed with it; which provider
/// an account speaks for is recorded with the provider, and it sees nothing else.
const PROVIDER: &[Permission] = &[P::Provide];

impl Role {
    /// What the role may do within the scope of a grant.
    ///
    /// Officers see everything below them masked and cannot unmask: oversight needs counts and
    /// lists, not ID numbers. Community and grid workers, who visit people, may unmask. Providers,
    /// volunteers and inspectors get nothing on base data; their access will come from what they
    /// are assigned (an order, a task, a hazard to accept).
    pub const fn permissions(self) -> &'static [Permission] {
        match self {
            Role::SystemAdmin => &[P::ReadBase, P::ManageTree, P::ImportData, P::ManageConfig],
            Role::SecurityAdmin => &[P::ManageAccounts, P::ManageGrants, P::ManageKeys],
            Role::AuditAdmin => &[P::ReadAudit],
            Role::DistrictOfficer | Role::StreetOfficer => OFFICER,
            Role::CommunityWorker => COMMUNITY_STAFF,
            Role::GridWorker => GRID_STAFF,
            Role::Resident => &[P::ReadOwnHousehold, P::WriteOwnHousehold],
            Role::Volunteer => VOLUNTEER,
            Role::Inspector => INSPECTOR,
            Role::Provider => PROVIDER,
        }
    }

    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// The scope kinds this role may be granted on.
    pub const fn scope_kinds(self) -> &'static [ScopeKind] {
        role_scope_kinds(self)
    }

    /// For node-scoped roles, the tree levels a grant may sit on, so that, say, a community worker's
    /// unmask permission cannot be granted over a whole district. Empty for roles not granted on
    /// nodes.
    pub const fn node_levels(self) -> &'static [Level] {
        use Level as L;
        match self {
            Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin => {
                &[L::City, L::District, L::Street, L::Community]
            }
            Role::DistrictOfficer => &[L::City, L::District],
            Role::StreetOfficer => &[L::Street],
            Role::CommunityWorker => &[L::Community],
            Role::Provider | Role::Volunteer | Role::Inspector => {
                &[L::City, L::District, L::Street, L::Community]
            }
            Role::GridWorker | Role::Resident => &[],
        }
    }

    /// Check that a grant of this role on `scope` has an allowed shape. The level of a node scope
    /// is checked by the caller, who knows the node, against [`Role::node_levels`].
    pub fn check_scope(self, scope: Scope) -> Result<(), DomainError> {
        let kind = scope.kind();
        if self.scope_kinds().contains(&kind) {
            Ok(())
        } else {
            Err(DomainError::GrantScope {
                role: self,
                scope: kind,
            })
        }
    }
}

/// Which scope kinds `role` may be granted on: residents on their household, grid workers on a
/// grid, everyone else on a tree node.
pub const fn role_scope_kinds(role: Role) -> &'static [ScopeKind] {
    match role {
        Role::Resident => &[ScopeKind::Household],
        Role::GridWorker => &[ScopeKind::Grid],
        _ => &[ScopeKind::Node],
    }
}

/// When a grant is in force: from `from` (inclusive) until `until` (exclusive), or open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ValidityRepr", into = "ValidityRepr")]
pub struct Validity {
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct ValidityRepr {
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl TryFrom<ValidityRepr> for Validity {
    type Error = DomainError;
    fn try_from(r: ValidityRepr) -> Result<Self, Self::Error> {
        Validity::new(r.from, r.until)
    }
}

impl From<Validity> for ValidityRepr {
    fn from(v: Validity) -> Self {
        ValidityRepr {
            from: v.from,
            until: v.until,
        }
    }
}

impl Validity {
    /// `until` must be after `from`.
    pub fn new(from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<Validity, DomainError> {
        match until {
            Some(u) if u <= from => Err(DomainError::GrantValidity),
            _ => Ok(Validity { from, until }),
        }
    }

    /// In force from `from` with no end.
    pub fn starting(from: DateTime<Utc>) -> Validity {
        Validity { from, until: None }
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && self.until.is_none_or(|u| now < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;
    use chrono::TimeZone;

    const PERSONAL: &[Permission] = &[
        P::ReadPeople,
        P::WritePeople,
        P::Unmask,
        P::ReadVulnerable,
        P::WriteVulnerable,
        P::ExportData,
        P::ReadOwnHousehold,
        P::WriteOwnHousehold,
    ];
    const ADMINS: &[Role] = &[Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin];

    #[test]
    fn names_round_trip() {
        check_round_trip(Role::ALL);
        check_round_trip(Permission::ALL);
        check_round_trip(ScopeKind::ALL);
    }

    #[test]
    fn administrators_read_no_personal_data() {
        for r in ADMINS {
            for p in PERSONAL {
                assert!(!r.has(*p), "{r} has {p}");
            }
        }
    }

    #[test]
    fn duties_are_separated() {
        for r in Role::ALL {
            assert!(!(r.has(P::ManageGrants) && r.has(P::ReadAudit)), "{r}");
            assert!(!(r.has(P::ManageAccounts) && r.has(P::ReadAudit)), "{r}");
            assert!(!(r.has(P::ManageTree) && r.has(P::ManageGrants)), "{r}");
        }
        let holders = |p| {
            Role::ALL
                .iter()
                .filter(|r| r.has(p))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(holders(P::ReadAudit), vec![Role::AuditAdmin]);
        assert_eq!(holders(P::ManageGrants), vec![Role::SecurityAdmin]);
        assert_eq!(holders(P::ManageKeys), vec![Role::SecurityAdmin]);
        assert_eq!(holders(P::ManageTree), vec![Role::SystemAdmin]);
        assert_eq!(Role::AuditAdmin.permissions(), &[P::ReadAudit]);
    }

    #[test]
    fn who_sees_people_and_how() {
        for r in [Role::DistrictOfficer, Role::StreetOfficer] {
            assert!(r.has(P::ReadPeople) && r.has(P::ReadVulnerable));
            assert!(!r.has(P::Unmask) && !r.has(P::WritePeople));
        }
        for r in [Role::CommunityWorker, Role::GridWorker] {
            assert!(r.has(P::Unmask) && r.has(P::WritePeople) && r.has(P::WriteBase));
        }
        for r in Role::ALL {
            if r.has(P::Unmask) {
                assert!(r.has(P::ReadPeople), "{r} unmasks what it cannot read");
            }
        }
        assert_eq!(
            Role::Resident.permissions(),
            &[P::ReadOwnHousehold, P::WriteOwnHousehold]
        );
        // A provider works its own offers and orders and sees nothing else.
        assert_eq!(Role::Provider.permissions(), &[P::Provide]);
        for r in Role::ALL.iter().filter(|r| **r != Role::Provider) {
            assert!(!r.has(P::Provide), "{r:?} must not speak for a provider");
        }
        // The third party accepts hazards and reads nothing about people; only it accepts.
        assert_eq!(
            Role::Inspector.permissions(),
            &[P::ReadHazards, P::AcceptHazards]
        );
        for r in Role::ALL.iter().filter(|r| **r != Role::Inspector) {
            assert!(!r.has(P::AcceptHazards), "{r:?} must not accept hazards");
        }
        // Volunteers work on what they are given, never on lists of people.
        for p in [P::ReadPeople, P::ReadVulnerable, P::Unmask, P::ExportData] {
            assert!(!Role::Volunteer.has(p));
        }
        // Contact look-up is for community staff and officers, not grid workers or volunteers.
        assert!(!Role::GridWorker.has(P::ContactLookup) && !Role::Volunteer.has(P::ContactLookup));
    }

    #[test]
    fn scope_kinds() {
        let id = Uuid::nil();
        assert_eq!(role_scope_kinds(Role::Resident), &[ScopeKind::Household]);
        assert_eq!(role_scope_kinds(Role::GridWorker), &[ScopeKind::Grid]);
        assert_eq!(role_scope_kinds(Role::StreetOfficer), &[ScopeKind::Node]);
        assert!(Role::Resident.check_scope(Scope::Household(id)).is_ok());
        let e = Role::Resident
            .check_scope(Scope::Node(id))
            .expect_err("refused");
        assert_eq!(e.code(), "grant.scope_kind");
        for r in Role::ALL {
            assert_eq!(
                r.scope_kinds().contains(&ScopeKind::Node),
                !r.node_levels().is_empty(),
                "{r}"
            );
        }
        assert!(!Role::CommunityWorker
            .node_levels()
            .contains(&Level::District));
        let json = serde_json::to_string(&Scope::Grid(id)).expect("ser");
        assert_eq!(
            json,
            r#"{"kind":"grid","id":"00000000-0000-0000-0000-000000000000"}"#
        );
    }

    #[test]
    fn validity() {
        let t = |d| {
            Utc.with_ymd_and_hms(2026, 5, d, 0, 0, 0)
                .single()
                .expect("valid")
        };
        let v = Validity::new(t(1), Some(t(10))).expect("ordered");
        assert!(!v.contains(t(1) - chrono::Duration::seconds(1)));
        assert!(v.contains(t(1)));
        assert!(v.contains(t(9)));
        assert!(!v.contains(t(10)));
        assert!(Validity::starting(t(1)).contains(t(30)));
        assert_eq!(
            Validity::new(t(2), Some(t(2))).err().map(|e| e.code()),
            Some("grant.validity")
        );
        let json = serde_json::to_string(&v).expect("ser");
        let back: Validity = serde_json::from_str(&json).expect("de");
        assert_eq!(back, v);
        let bad = r#"{"from":"2026-05-02T00:00:00Z","until":"2026-05-01T00:00:00Z"}"#;
        assert!(serde_json::from_str::<Validity>(bad).is_err());
    }
}
