//! zh-CN and English texts for warnings, their channels, deliveries and CAP: page labels and error codes
//! (`area.reason`), in the shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    // ---- the resident's banner
    ("warn.banner.title", "预警信息", "Warnings"),
    ("warn.banner.none", "当前没有预警", "No warnings in force"),
    ("warn.banner.instruction", "防范指引", "What to do"),
    ("warn.banner.updated", "更新", "Updated"),
    ("warn.banner.expires", "有效期至", "In force until"),
    ("warn.ack.safe", "我已安全", "I am safe"),
    ("warn.ack.need_help", "我需要帮助", "I need help"),
    (
        "warn.ack.done_safe",
        "已报平安",
        "You reported you are safe",
    ),
    (
        "warn.ack.done_need_help",
        "已收到求助，工作人员会尽快联系您",
        "Help request received; staff will contact you soon",
    ),
    // ---- error codes
    (
        "warning.area_empty",
        "请划定预警范围（多边形、圆或社区节点）",
        "Give the warning an area (polygon, circle or tree nodes)",
    ),
    (
        "warning.area_too_large",
        "预警范围的组成部分过多",
        "The warning area has too many parts",
    ),
    (
        "warning.radius_invalid",
        "圆的半径须在 1 米到 200 公里之间",
        "A circle's radius must be between 1 m and 200 km",
    ),
    (
        "warning.wrong_status",
        "预警当前的状态不允许这一步操作",
        "The warning's status does not allow this step",
    ),
    (
        "warning.not_allowed",
        "您的角色不能对这条预警执行这一步",
        "Your role may not take this step on this warning",
    ),
    (
        "warning.expires_before_effective",
        "失效时间须晚于生效时间",
        "The expiry must be after the effective time",
    ),
    (
        "warning.too_long",
        "预警有效期不能超过 30 天",
        "A warning may stay in force for at most 30 days",
    ),
    (
        "warning.already_expired",
        "预警已过失效时间，不能发布",
        "The warning has already expired and cannot be issued",
    ),
    (
        "warning.node_fixed",
        "预警的发布节点不能修改",
        "The issuing node of a warning cannot be changed",
    ),
    (
        "warning.not_issued",
        "预警尚未发布，没有 CAP 文档",
        "The warning is not issued and has no CAP document",
    ),
    (
        "warning.nothing_changed",
        "更新须至少改变一项内容",
        "An update must change something",
    ),
    ("value.unknown_field", "不认识的字段", "Unknown field"),
    (
        "cap.too_large",
        "CAP 文档过大",
        "The CAP document is too large",
    ),
    (
        "cap.xml_invalid",
        "不是格式正确的 XML",
        "Not well-formed XML",
    ),
    (
        "cap.dtd_refused",
        "出于安全原因，不接受含文档类型定义（DTD）的 XML",
        "XML with a document type declaration (DTD) is refused for safety",
    ),
    (
        "cap.entity_refused",
        "出于安全原因，不接受自定义实体引用",
        "Custom entity references are refused for safety",
    ),
    (
        "cap.not_an_alert",
        "根元素须为 CAP 的 alert",
        "The root element must be a CAP alert",
    ),
    (
        "cap.namespace_invalid",
        "不是 CAP 1.2 命名空间",
        "Not in the CAP 1.2 namespace",
    ),
    (
        "cap.element_missing",
        "缺少 CAP 必填元素",
        "A required CAP element is missing",
    ),
    (
        "cap.value_invalid",
        "CAP 元素的取值不符合规范",
        "A CAP element has a value the standard does not allow",
    ),
    (
        "cap.datetime_invalid",
        "时间格式须为 YYYY-MM-DDThh:mm:ss±hh:mm",
        "Times must be YYYY-MM-DDThh:mm:ss±hh:mm",
    ),
    (
        "cap.polygon_invalid",
        "多边形须为至少 4 个“纬度,经度”点且首尾相同",
        "A polygon needs at least 4 \"lat,lon\" points, the first repeated last",
    ),
    (
        "cap.circle_invalid",
        "圆须写作“纬度,经度 半径公里”",
        "A circle must read \"lat,lon radius_km\"",
    ),
    (
        "cap.geocode_invalid",
        "GB/T 2260 代码须为 6 位或 12 位数字",
        "A GB/T 2260 code has 6 or 12 digits",
    ),
    // ---- XML signatures on imported CAP alerts (src/warn/dsig.rs)
    (
        "dsig.malformed",
        "XML 数字签名格式不正确",
        "The XML signature is not well-formed XML-DSig",
    ),
    (
        "dsig.unsupported",
        "不支持该 XML 数字签名写法（须为封装签名、排他规范化、SHA-256，RSA 或 ECDSA P-256）",
        "This XML signature is not supported (it must be enveloped, Exclusive C14N, SHA-256, RSA or ECDSA P-256)",
    ),
    ("warning.trust", "来源与可信度", "Sender and trust"),
    (
        "warning.trust.signature_valid",
        "签名有效，来自受信任发布方",
        "Signature valid: a trusted sender",
    ),
    (
        "warning.trust.sender_listed",
        "在受信任发布方名单中（仅凭名称，未验证签名）",
        "On the trusted list by name only (no signature checked)",
    ),
    (
        "warning.trust.sender_not_trusted",
        "发布方不在受信任名单中，须人工审核",
        "The sender is not trusted: a person must approve",
    ),
    (
        "warning.trust.signature_missing",
        "该发布方须带签名，但本预警未签名，按不可信处理",
        "This sender must sign, but the alert is unsigned: treated as untrusted",
    ),
    (
        "warning.trust.signature_digest_mismatch",
        "签名后内容被改动（或签名来自其他文档），按不可信处理",
        "The content was changed after signing (or the signature belongs to another document): treated as untrusted",
    ),
    (
        "warning.trust.signature_invalid",
        "签名与该发布方的密钥不符，按不可信处理",
        "The signature does not verify with this sender's key: treated as untrusted",
    ),
    (
        "warning.trust.signature_key_mismatch",
        "签名算法与该发布方的密钥类型不符，按不可信处理",
        "The signature method does not fit this sender's key type: treated as untrusted",
    ),
    (
        "warning.trust.key_unavailable",
        "无法读取该发布方的密钥（请检查配置），按不可信处理",
        "This sender's key cannot be read (check the configuration): treated as untrusted",
    ),
];
