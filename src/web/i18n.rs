//! Every text the web pages show, in zh-CN (the default) and English, in one place: the page
//! labels, and the stable error codes of `ApiError`, `DomainError` and `StoreError` (the `code`
//! of the JSON error shape) that a page can show. A test checks that every code the sources
//! use has both texts.

/// The page language: zh-CN unless the `anxin_lang` cookie or `?lang=en` says English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    /// The `lang` attribute of the page.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// (key, zh-CN, English). Page labels first, then error codes (`area.reason`).
const TEXTS: &[(&str, &str, &str)] = &[
    // ---- layout and navigation
    ("app.name", "安心", "Anxin"),
    (
        "app.tagline",
        "社区韧性治理平台",
        "Community resilience platform",
    ),
    ("nav.home", "首页", "Home"),
    ("nav.tree", "社区树", "Community tree"),
    ("nav.people", "实有人口", "People"),
    ("nav.map", "地图", "Map"),
    ("nav.logout", "退出登录", "Sign out"),
    ("nav.lang", "English", "中文"),
    ("nav.skip", "跳到正文", "Skip to content"),
    ("nav.main", "主导航", "Main navigation"),
    ("nav.large", "大字模式", "Large text"),
    ("nav.large_off", "标准字号", "Normal text"),
    ("nav.signed_in_as", "当前用户", "Signed in as"),
    // ---- sign-in
    ("login.title", "工作人员登录", "Staff sign-in"),
    ("login.username", "用户名", "Username"),
    ("login.password", "密码", "Password"),
    (
        "login.totp",
        "动态验证码（身份验证器）",
        "Authenticator code",
    ),
    ("login.submit", "登录", "Sign in"),
    (
        "login.resident_link",
        "居民请用手机号登录",
        "Residents: sign in with your phone",
    ),
    ("login.staff_link", "工作人员登录", "Staff sign-in"),
    (
        "login.mfa_enrol",
        "管理员账号需先绑定身份验证器（TOTP），请通过接口完成绑定。",
        "Administrator accounts must enrol an authenticator (TOTP) first, through the API.",
    ),
    // ---- tree
    ("tree.title", "社区树", "Community tree"),
    ("tree.children", "下级", "Below"),
    ("tree.grids", "网格", "Grids"),
    ("tree.no_children", "没有下级节点", "No nodes below"),
    ("tree.no_grids", "没有网格", "No grids"),
    ("tree.people_here", "查看此处的实有人口", "People here"),
    ("tree.code", "区划代码", "Division code"),
    ("tree.below_counts", "下辖", "Below"),
    ("level.city", "市", "City"),
    ("level.district", "区县", "District"),
    ("level.street", "街道乡镇", "Street"),
    ("level.community", "社区村", "Community"),
    ("level.compound", "小区", "Compound"),
    // ---- people
    ("people.title", "实有人口", "People"),
    (
        "people.search",
        "按姓名查找（可输入部分姓名）",
        "Find by name (part of a name works)",
    ),
    ("people.search_button", "查找", "Search"),
    ("people.population_type", "人口类型", "Population type"),
    ("people.any", "全部", "Any"),
    ("people.total", "共 {n} 人", "{n} people"),
    ("people.none", "没有找到符合条件的人员", "Nobody matches"),
    ("people.name", "姓名", "Name"),
    ("people.sex", "性别", "Sex"),
    ("people.birth_date", "出生日期", "Date of birth"),
    ("people.doc", "证件", "Document"),
    ("people.doc_type", "证件类型", "Document type"),
    ("people.doc_number", "证件号码", "Document number"),
    ("people.phone", "手机号", "Phone"),
    ("people.nationality", "国籍", "Nationality"),
    ("people.household", "所在户", "Household"),
    (
        "people.unmask",
        "查看完整证件号和手机号（将记入审计日志）",
        "Show full document and phone (audited)",
    ),
    (
        "people.unmasked",
        "以下为明文信息，已记入审计日志。",
        "Shown in plaintext; this was recorded in the audit log.",
    ),
    ("people.edit", "修改", "Edit"),
    ("people.edit_title", "修改人员信息", "Edit person"),
    ("people.save", "保存", "Save"),
    ("people.saved", "已保存", "Saved"),
    ("people.cancel", "取消", "Cancel"),
    ("people.prev", "上一页", "Previous"),
    ("people.next", "下一页", "Next"),
    ("people.page", "第 {p} / {n} 页", "Page {p} of {n}"),
    (
        "people.phone_hint",
        "留空表示不修改；填写新手机号将替换原号码",
        "Leave empty to keep; a new number replaces the old one",
    ),
    ("people.doc_hint", "留空表示不修改", "Leave empty to keep"),
    (
        "people.fix_errors",
        "请修改标出的内容后再保存",
        "Please correct the marked fields",
    ),
    ("sex.male", "男", "Male"),
    ("sex.female", "女", "Female"),
    ("pop.registered", "户籍人口", "Registered"),
    ("pop.resident", "寄住人口", "Lodging"),
    ("pop.floating", "流动人口", "Floating"),
    ("pop.foreign", "境外人员", "Foreign"),
    ("doc.mainland_id", "居民身份证", "Resident ID card"),
    (
        "doc.hk_macao_residence_permit",
        "港澳居民居住证",
        "HK/Macao residence permit",
    ),
    (
        "doc.taiwan_residence_permit",
        "台湾居民居住证",
        "Taiwan residence permit",
    ),
    (
        "doc.hk_macao_home_return_permit",
        "港澳居民来往内地通行证",
        "Home Return Permit (HK/Macao)",
    ),
    (
        "doc.taiwan_compatriot_permit",
        "台湾居民来往大陆通行证",
        "Taiwan Compatriot Permit",
    ),
    (
        "doc.foreign_permanent_residence",
        "外国人永久居留身份证",
        "Foreign Permanent Resident ID",
    ),
    ("doc.passport", "护照", "Passport"),
    ("doc.none", "无证件", "None"),
    // ---- households
    ("household.title", "户", "Household"),
    ("household.members", "户成员", "Members"),
    ("household.role", "与户主关系", "Role"),
    ("household.since", "入户日期", "Since"),
    ("role.head", "户主", "Head"),
    ("role.spouse", "配偶", "Spouse"),
    ("role.child", "子女", "Child"),
    ("role.parent", "父母", "Parent"),
    ("role.grandchild", "孙子女/外孙子女", "Grandchild"),
    ("role.grandparent", "祖父母/外祖父母", "Grandparent"),
    ("role.sibling", "兄弟姐妹", "Sibling"),
    ("role.relative", "其他亲属", "Relative"),
    ("role.tenant", "租户", "Tenant"),
    ("role.other", "其他", "Other"),
    // ---- places
    ("nav.buildings", "楼栋", "Buildings"),
    ("nav.facilities", "设施", "Facilities"),
    ("places.buildings", "楼栋", "Buildings"),
    ("places.facilities", "设施", "Facilities"),
    (
        "places.search",
        "按名称或地址查找",
        "Find by name or address",
    ),
    ("places.total", "共 {n} 条", "{n} in all"),
    ("places.name", "名称", "Name"),
    ("places.address", "地址", "Address"),
    ("places.floors", "层数", "Floors"),
    (
        "places.location",
        "位置（纬度, 经度）",
        "Location (lat, lon)",
    ),
    ("places.kind", "类别", "Kind"),
    ("places.capacity", "容量", "Capacity"),
    ("facility.shelter", "应急避难场所", "Shelter"),
    ("facility.supply_depot", "物资储备点", "Supply depot"),
    ("facility.medical_point", "医疗点", "Medical point"),
    ("facility.hydrant", "消火栓", "Hydrant"),
    ("facility.gas_line", "燃气管线", "Gas line"),
    ("facility.elevator", "电梯", "Elevator"),
    ("facility.drain", "排水设施", "Drain"),
    (
        "facility.convertible_space",
        "平急两用空间",
        "Dual-use space",
    ),
    ("facility.other", "其他", "Other"),
    // ---- map
    ("map.title", "地图", "Map"),
    (
        "map.offline",
        "离线底图：不加载任何瓦片，只显示经纬网格、楼栋和设施。",
        "Offline base map: no tiles, only a graticule, buildings and facilities.",
    ),
    ("map.facilities", "设施", "Facilities"),
    ("map.buildings", "楼栋", "Buildings"),
    (
        "map.count",
        "已显示 {f} 个设施、{b} 栋楼",
        "{f} facilities and {b} buildings shown",
    ),
    ("map.list", "图上对象列表", "Features on the map"),
    // ---- resident end
    ("resident.title", "居民服务", "Resident services"),
    ("resident.login", "手机号登录", "Sign in with your phone"),
    ("resident.phone", "手机号码", "Phone number"),
    ("resident.send_code", "获取验证码", "Send me a code"),
    (
        "resident.code_sent",
        "如果该手机号已登记，验证码已发送，{m} 分钟内有效。",
        "If this phone is registered, a code was sent; it is valid for {m} minutes.",
    ),
    ("resident.code", "短信验证码", "Code from the text message"),
    ("resident.verify", "登录", "Sign in"),
    (
        "resident.choose",
        "请选择您要办理的人员",
        "Choose who you are",
    ),
    ("resident.choose_button", "我是{name}", "I am {name}"),
    ("resident.my_household", "我的家庭", "My household"),
    (
        "resident.no_household",
        "您目前没有登记在任何户中，请联系社区工作人员。",
        "You are not registered in a household; please contact the community office.",
    ),
    ("resident.correct", "更正信息", "Correct"),
    (
        "resident.correct_title",
        "更正家庭成员信息",
        "Correct a household member",
    ),
    (
        "resident.correct_hint",
        "如有错误，请更正姓名或手机号。其他信息请联系社区工作人员。",
        "Correct the name or phone if wrong. For anything else, contact the community office.",
    ),
    ("resident.back", "返回我的家庭", "Back to my household"),
    ("resident.other_phone", "换一个手机号", "Use another phone"),
    // ---- errors pages
    ("error.title", "出错了", "Something went wrong"),
    (
        "error.not_found_page",
        "页面或记录不存在，或您无权查看。",
        "The page or record does not exist, or you may not see it.",
    ),
    ("error.back_home", "返回首页", "Back to the home page"),
    // ---- stable error codes (ApiError, DomainError, StoreError)
    ("auth.required", "请先登录", "Please sign in"),
    (
        "auth.csrf",
        "页面已过期，请刷新后重试",
        "The page has expired; reload and try again",
    ),
    (
        "auth.forbidden",
        "您没有权限进行此操作",
        "You are not allowed to do this",
    ),
    (
        "auth.invalid_credentials",
        "用户名或密码错误",
        "Wrong username or password",
    ),
    (
        "auth.locked",
        "登录失败次数过多，账号已暂时锁定，请稍后再试",
        "Too many failed attempts; the account is locked for a while",
    ),
    (
        "auth.mfa_required",
        "请先完成动态验证码（TOTP）验证",
        "Confirm your authenticator (TOTP) code first",
    ),
    (
        "auth.totp_required",
        "请输入身份验证器上的动态验证码",
        "Enter the code from your authenticator app",
    ),
    (
        "auth.totp_invalid",
        "动态验证码错误或已使用",
        "Wrong or already used authenticator code",
    ),
    (
        "auth.code_invalid",
        "验证码错误或已过期",
        "Wrong or expired code",
    ),
    (
        "auth.person_required",
        "请先选择您要办理的人员",
        "Choose the person you act as first",
    ),
    (
        "rate.limited",
        "操作过于频繁，请稍后再试",
        "Too many requests; try again later",
    ),
    ("record.not_found", "记录不存在或您无权查看", "Not found"),
    (
        "record.conflict",
        "与已有记录冲突",
        "Conflicts with an existing record",
    ),
    (
        "record.reference_invalid",
        "引用的记录不存在",
        "Refers to a record that does not exist",
    ),
    (
        "request.body_invalid",
        "提交的内容格式不正确",
        "The submitted data is malformed",
    ),
    (
        "request.query_invalid",
        "查询条件格式不正确",
        "The query is malformed",
    ),
    (
        "request.too_large",
        "提交的内容过大",
        "The request is too large",
    ),
    (
        "service.unavailable",
        "服务暂时不可用，请稍后再试",
        "Service unavailable; try again shortly",
    ),
    (
        "internal",
        "系统内部错误，请稍后再试",
        "Internal error; try again later",
    ),
    ("value.required", "此项必填", "Required"),
    ("value.invalid", "填写的内容无效", "Invalid value"),
    ("value.too_long", "内容过长", "Too long"),
    (
        "value.date",
        "日期格式应为 年-月-日，如 1980-05-01",
        "Use a date like 1980-05-01",
    ),
    (
        "phone.format",
        "手机号格式不正确，应为 11 位手机号",
        "Not a valid phone number",
    ),
    (
        "document.empty",
        "请填写证件号码",
        "Enter the document number",
    ),
    (
        "document.format",
        "证件号码格式不正确",
        "The document number has the wrong format",
    ),
    (
        "document.checksum",
        "身份证号码校验位错误，请核对",
        "The ID number's check digit is wrong",
    ),
    (
        "document.region",
        "身份证号码的地区码无效",
        "The ID number's region code is invalid",
    ),
    (
        "document.birth_date",
        "身份证号码中的出生日期无效",
        "The ID number's date of birth is invalid",
    ),
    (
        "document.unexpected_number",
        "该证件类型不应填写号码",
        "This document type takes no number",
    ),
    (
        "person.birth_date_mismatch",
        "出生日期与身份证号码不一致",
        "The date of birth does not match the ID number",
    ),
    (
        "person.community_required",
        "请选择所属社区",
        "Choose a community",
    ),
    (
        "person.document_taken",
        "该证件号码已登记",
        "This document number is already registered",
    ),
    (
        "person.unmask_not_allowed",
        "您没有查看明文的权限",
        "You may not see plaintext",
    ),
    (
        "duty.unmask_not_allowed",
        "您没有查看明文的权限",
        "You may not see plaintext",
    ),
    (
        "grid.not_in_community",
        "网格不属于该社区",
        "The grid is not in this community",
    ),
    (
        "grid.community_required",
        "网格必须建在社区下",
        "Grids belong to a community",
    ),
    (
        "grid.name_taken",
        "网格名称已存在",
        "A grid with this name exists",
    ),
    (
        "membership.duplicate",
        "该人员已在此户中",
        "Already a member of this household",
    ),
    (
        "vulnerable.category",
        "重点人群类别无效",
        "Unknown vulnerable category",
    ),
    (
        "vulnerable.duplicate",
        "该人员已登记为此类重点人群",
        "Already registered in this category",
    ),
    (
        "vulnerable.helper_unknown",
        "帮扶人不存在",
        "Unknown helper",
    ),
    ("vulnerable.notes", "备注无效", "Invalid notes"),
    (
        "building.node_level",
        "楼栋只能建在社区或小区下",
        "Buildings belong to a community or compound",
    ),
    (
        "building.not_empty",
        "楼栋下还有单元或房屋",
        "The building still has units or dwellings",
    ),
    (
        "unit.not_empty",
        "单元下还有房屋",
        "The unit still has dwellings",
    ),
    (
        "unit.not_in_building",
        "单元不属于该楼栋",
        "The unit is not in this building",
    ),
    (
        "dwelling.in_use",
        "房屋仍有住户",
        "The dwelling is still in use",
    ),
    (
        "facility.shelter_capacity_required",
        "避难场所必须填写容量",
        "Shelters need a capacity",
    ),
    ("location.crs", "坐标系无效", "Unknown coordinate system"),
    ("location.lat", "纬度无效", "Invalid latitude"),
    ("location.lon", "经度无效", "Invalid longitude"),
    ("geo.not_finite", "坐标无效", "Invalid coordinates"),
    (
        "geo.out_of_range",
        "坐标超出范围",
        "Coordinates out of range",
    ),
    (
        "division.code_format",
        "区划代码格式不正确",
        "Invalid division code",
    ),
    (
        "division.code_taken",
        "区划代码已被使用",
        "Division code in use",
    ),
    (
        "division.duplicate_code",
        "区划代码重复",
        "Duplicate division code",
    ),
    (
        "division.level_mismatch",
        "区划层级不匹配",
        "Division level mismatch",
    ),
    (
        "division.parent_missing",
        "上级区划不存在",
        "Parent division missing",
    ),
    (
        "division.plan_invalid",
        "区划变更计划无效",
        "Invalid division plan",
    ),
    ("export.not_allowed", "您没有导出权限", "You may not export"),
    ("import.not_allowed", "您没有导入权限", "You may not import"),
    (
        "import.column_missing",
        "缺少必需的列",
        "A required column is missing",
    ),
    (
        "import.duplicate_in_file",
        "文件中有重复的行",
        "Duplicate row in the file",
    ),
    ("import.grid_unknown", "网格不存在", "Unknown grid"),
    (
        "import.household_grid_mismatch",
        "户与网格不一致",
        "The household is not in that grid",
    ),
    (
        "import.write_failed",
        "写入失败，未导入任何数据",
        "Writing failed; nothing was imported",
    ),
    (
        "import.file_unreadable",
        "无法读取上传的文件，请使用 CSV 或 XLSX 模板",
        "The file cannot be read; use the CSV or XLSX template",
    ),
    ("grant.create", "无法授予该权限", "Cannot create the grant"),
    ("grant.duplicate", "该授权已存在", "The grant exists"),
    ("grant.revoke", "无法撤销该授权", "Cannot revoke the grant"),
    (
        "grant.scope_kind",
        "授权范围类型不适用于该角色",
        "Scope kind not allowed for this role",
    ),
    (
        "grant.scope_level",
        "授权范围层级不适用于该角色",
        "Scope level not allowed for this role",
    ),
    ("grant.scope_not_found", "授权范围不存在", "Scope not found"),
    ("grant.self", "不能给自己授权", "You cannot grant yourself"),
    (
        "grant.separation_of_duties",
        "违反三员分立原则",
        "Violates separation of duties",
    ),
    (
        "grant.user_kind",
        "该用户类型不能获得此授权",
        "Wrong kind of user for this grant",
    ),
    ("grant.validity", "授权有效期无效", "Invalid validity"),
    ("password.too_long", "密码过长", "Password too long"),
    ("password.too_weak", "密码强度不足", "Password too weak"),
    (
        "password.hash_failed",
        "密码处理失败",
        "Password could not be processed",
    ),
    (
        "token.expiry_invalid",
        "令牌有效期无效",
        "Invalid token expiry",
    ),
    ("token.name_invalid", "令牌名称无效", "Invalid token name"),
    ("token.user_invalid", "令牌用户无效", "Invalid token user"),
    (
        "totp.bad_secret",
        "身份验证器密钥无效",
        "Invalid authenticator secret",
    ),
    (
        "totp.enrolled",
        "已绑定身份验证器",
        "Authenticator already enrolled",
    ),
    ("totp.invalid", "动态验证码错误", "Wrong authenticator code"),
    (
        "user.credentials_required",
        "需要填写登录凭据",
        "Credentials required",
    ),
    (
        "user.display_name_invalid",
        "显示名称无效",
        "Invalid display name",
    ),
    ("user.kind_invalid", "用户类型无效", "Invalid user kind"),
    ("user.not_resident", "该用户不是居民", "Not a resident"),
    ("user.phone_required", "需要填写手机号", "Phone required"),
    ("user.self", "不能对自己执行此操作", "Not on yourself"),
    ("user.username_invalid", "用户名无效", "Invalid username"),
    ("user.username_taken", "用户名已被使用", "Username taken"),
    (
        "backup.not_a_backup",
        "不是有效的备份文件",
        "Not a backup file",
    ),
    (
        "backup.target_not_empty",
        "目标数据库不为空",
        "The target database is not empty",
    ),
    ("job.duplicate", "任务已存在", "Duplicate job"),
    (
        "job.max_attempts",
        "任务重试次数已用完",
        "Job out of attempts",
    ),
    ("crypto.decrypt_failed", "数据解密失败", "Decryption failed"),
    ("crypto.unknown_key", "未知的密钥", "Unknown key"),
];

/// The text for `key` in `lang`: a page label or an error code's message. An unknown key
/// answers itself, so a missing text shows up rather than vanishing.
pub fn t(lang: Lang, key: &str) -> String {
    lookup(lang, key).map_or_else(|| key.to_owned(), str::to_owned)
}

/// The text for `key`, if the table has it.
pub fn lookup(lang: Lang, key: &str) -> Option<&'static str> {
    TEXTS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, zh, en)| match lang {
            Lang::Zh => *zh,
            Lang::En => *en,
        })
}

/// Every key of the table, for tests.
pub fn keys() -> impl Iterator<Item = &'static str> {
    TEXTS.iter().map(|(k, ..)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_present() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in TEXTS {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} lacks a text");
        }
        assert_eq!(t(Lang::Zh, "auth.required"), "请先登录");
        assert_eq!(t(Lang::En, "no.such"), "no.such");
    }
}
