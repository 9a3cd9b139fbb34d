//! Closed vocabularies for personal and facility records. Each has a stable snake_case name
//! (`as_str`, serde, `FromStr`) and a Chinese label (`zh`).

string_enum! {
    /// Category of 实有人口 (the actual population): everyone living here counts, whatever their
    /// household registration or nationality.
    pub enum PopulationType: "population_type" {
        /// Household registration (户籍) is here.
        Registered = "registered", "户籍人口",
        /// Lives here long-term with registration elsewhere (常住/寄住).
        Resident = "resident", "寄住人口",
        /// Short-term or mobile population (流动人口).
        Floating = "floating", "流动人口",
        /// Foreigners and residents of Hong Kong, Macao and Taiwan (境外人员).
        Foreign = "foreign", "境外人员",
    }
}

string_enum! {
    pub enum Sex: "sex" {
        Male = "male", "男",
        Female = "female", "女",
    }
}

string_enum! {
    /// Relation to the head of household (与户主关系); tenants are part of a household record too.
    pub enum HouseholdRole: "household_role" {
        Head = "head", "户主",
        Spouse = "spouse", "配偶",
        Child = "child", "子女",
        Parent = "parent", "父母",
        Grandparent = "grandparent", "祖父母/外祖父母",
        Grandchild = "grandchild", "孙子女/外孙子女",
        Sibling = "sibling", "兄弟姐妹",
        Relative = "relative", "其他亲属",
        Tenant = "tenant", "租户",
        Other = "other", "其他",
    }
}

string_enum! {
    /// Why a person is on the vulnerable-person list (脆弱群体); a person may have several.
    pub enum VulnerableCategory: "vulnerable_category" {
        ElderlyAlone = "elderly_alone", "独居老人",
        Disabled = "disabled", "残疾人",
        ChronicIllness = "chronic_illness", "慢性病患者",
        Pregnant = "pregnant", "孕产妇",
        /// Left-behind children and children in difficulty (留守/困境儿童).
        MinorWithoutCarer = "minor_without_carer", "留守/困境儿童",
        Other = "other", "其他",
    }
}

string_enum! {
    /// How a person can be reached. `NoSmartphone` is a marker rather than a channel: it says the
    /// app cannot reach them, so warnings must go by the other channels.
    pub enum ContactChannel: "contact_channel" {
        App = "app", "应用推送",
        Sms = "sms", "短信",
        PhoneCall = "phone_call", "电话",
        HomeVisit = "home_visit", "上门",
        NoSmartphone = "no_smartphone", "无智能手机",
    }
}

impl ContactChannel {
    /// Channels that reach a person without a smartphone: a worker calls (a landline will do) or
    /// visits.
    pub const OFFLINE: &'static [ContactChannel] =
        &[ContactChannel::PhoneCall, ContactChannel::HomeVisit];

    /// Whether this is one of [`Self::OFFLINE`].
    pub const fn is_offline(self) -> bool {
        matches!(self, Self::PhoneCall | Self::HomeVisit)
    }
}

/// The channels that will actually reach a person with these preferences, in their order.
///
/// `NoSmartphone` removes the app (a preference for it is stale) and is itself dropped; SMS stays
/// when listed, since a feature phone receives it. If nothing usable is left, the offline channels
/// are returned, so nobody ends up with no way to be reached (不漏一人).
pub fn usable_channels(preferences: &[ContactChannel]) -> Vec<ContactChannel> {
    let no_smartphone = preferences.contains(&ContactChannel::NoSmartphone);
    let mut out: Vec<ContactChannel> = Vec::new();
    for &c in preferences {
        let usable = match c {
            ContactChannel::NoSmartphone => false,
            ContactChannel::App => !no_smartphone,
            _ => true,
        };
        if usable && !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() && no_smartphone {
        out.extend_from_slice(ContactChannel::OFFLINE);
    }
    out
}

string_enum! {
    pub enum FacilityKind: "facility_kind" {
        Shelter = "shelter", "应急避难场所",
        SupplyDepot = "supply_depot", "物资储备点",
        MedicalPoint = "medical_point", "医疗点",
        Hydrant = "hydrant", "消火栓",
        GasLine = "gas_line", "燃气管线",
        Elevator = "elevator", "电梯",
        Drain = "drain", "排水设施",
        /// A public space that can become a shelter or store in an emergency (平急两用).
        ConvertibleSpace = "convertible_space", "平急两用空间",
        Other = "other", "其他",
    }
}

string_enum! {
    pub enum FacilityStatus: "facility_status" {
        /// In normal service.
        Active = "active", "在用",
        Closed = "closed", "关闭",
        /// A shelter opened for an emergency: the state check-in and occupancy run in.
        Open = "open", "已开放",
        Maintenance = "maintenance", "维护中",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;

    #[test]
    fn names_round_trip() {
        check_round_trip(PopulationType::ALL);
        check_round_trip(Sex::ALL);
        check_round_trip(HouseholdRole::ALL);
        check_round_trip(VulnerableCategory::ALL);
        check_round_trip(ContactChannel::ALL);
        check_round_trip(FacilityKind::ALL);
        check_round_trip(FacilityStatus::ALL);
    }

    #[test]
    fn labels_and_errors() {
        assert_eq!(VulnerableCategory::ElderlyAlone.zh(), "独居老人");
        assert_eq!(
            "minor_without_carer".parse::<VulnerableCategory>().ok(),
            Some(VulnerableCategory::MinorWithoutCarer)
        );
        let e = "alien".parse::<Sex>().expect_err("rejected");
        assert_eq!(e.code(), "value.invalid");
        assert_eq!(e.field(), Some("sex"));
    }

    #[test]
    fn no_smartphone_drops_the_app_and_never_leaves_nothing() {
        use ContactChannel::*;
        assert_eq!(usable_channels(&[App, Sms]), vec![App, Sms]);
        assert_eq!(usable_channels(&[App, NoSmartphone, Sms]), vec![Sms]);
        assert_eq!(usable_channels(&[NoSmartphone]), vec![PhoneCall, HomeVisit]);
        assert_eq!(
            usable_channels(&[App, NoSmartphone]),
            vec![PhoneCall, HomeVisit]
        );
        assert_eq!(usable_channels(&[]), Vec::<ContactChannel>::new());
        assert!(HomeVisit.is_offline() && !Sms.is_offline());
    }
}
