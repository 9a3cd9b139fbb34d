//! zh-CN and English texts for devices, readings, rules and alarms: page labels and error codes
//! (`area.reason`), in the shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    // Devices and profiles.
    (
        "device.code_invalid",
        "设备编码只能包含字母、数字、下划线、连字符和点",
        "The device code may hold only letters, digits, underscores, hyphens and dots",
    ),
    (
        "device.code_taken",
        "该设备编码已被使用",
        "This device code is already in use",
    ),
    (
        "device.has_alarms",
        "设备已有告警记录，不能删除；请停用",
        "The device has alarms and cannot be deleted; disable it instead",
    ),
    (
        "profile.in_use",
        "仍有设备使用该规则模板，不能删除",
        "Devices still use this profile; it cannot be deleted",
    ),
    // Rules (validation names the rule and field in details.field).
    (
        "rules.shape_invalid",
        "规则格式不正确",
        "The rules are not in the expected format",
    ),
    (
        "rules.invalid",
        "规则设置不正确",
        "A rule setting is invalid",
    ),
    (
        "rules.too_large",
        "规则数量或规模超出限制",
        "Too many rules, or a rule is too large",
    ),
    (
        "rules.duplicate_id",
        "规则编号重复",
        "Two rules share an id",
    ),
    (
        "rules.silent_misplaced",
        "“静默”条件不能放在组合条件中",
        "A silence condition cannot be part of a combination",
    ),
    // Alarms.
    (
        "alarm.already_acknowledged",
        "该告警已被确认",
        "The alarm was already acknowledged",
    ),
    (
        "alarm.already_cleared",
        "该告警已解除",
        "The alarm is already cleared",
    ),
    (
        "alarm.assignee_invalid",
        "该用户不能处置此告警",
        "This user cannot handle this alarm",
    ),
    // Ingest.
    (
        "ingest.token_invalid",
        "设备令牌缺失或无效",
        "The device token is missing or unknown",
    ),
    (
        "ingest.device_disabled",
        "设备已停用",
        "The device is disabled",
    ),
    (
        "ingest.payload_invalid",
        "数据格式不正确：需要 seq、ts 和 1 至 32 个数值",
        "Malformed payload: seq, ts and 1 to 32 numeric values are required",
    ),
];
