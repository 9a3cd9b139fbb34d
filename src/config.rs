//! Typed configuration: one struct per concern, read from an optional TOML file and overridden
//! by environment variables prefixed `ANXIN_` with `__` between levels
//! (`ANXIN_DATABASE__URL=postgres://…`). Secrets are [`Secret`]s: they print as `[redacted]` and
//! are never serialised, so the generated example (`anxin config example`) cannot leak them.

use std::path::{Path, PathBuf};

use anxin_crypto::Secret;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub crypto: CryptoConfig,
    pub auth: AuthConfig,
    pub notify: NotifyConfig,
    pub jobs: JobsConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
    pub map: MapConfig,
    pub monitor: crate::monitor::config::MonitorConfig,
    pub warnings: crate::warn::config::WarningsConfig,
    pub ops: OpsConfig,
    pub hazards: crate::hazards::config::HazardsConfig,
    pub risks: crate::hazards::config::RisksConfig,
    pub supervision: crate::hazards::config::SupervisionConfig,
    pub supplies: crate::supplies::config::SuppliesConfig,
    pub campaigns: crate::supplies::config::CampaignsConfig,
    pub funds: crate::supplies::config::FundsConfig,
}

/// Emergency operations: how triggered plans start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// A plan started by an issued warning or a raised alarm waits for a person's confirmation
    /// (imported warnings always do).
    pub confirm_triggered: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            confirm_triggered: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Requests per minute allowed from one client address.
    pub rate_per_minute_per_address: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            secure_cookies: false,
            rate_per_minute_per_address: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://./data/anxin.db` or `postgres://user@host/db`.
    pub url: String,
    /// PostgreSQL connections in the pool.
    pub max_connections: usize,
    /// This node's name in the change log (a community node syncing with the city's).
    pub origin: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://./data/anxin.db".into(),
            max_connections: 16,
            origin: "local".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// Master keys as `id:algorithm:base64key` (algorithm `aes-256-gcm` or `sm4-gcm`). When
    /// empty, keys are read from `master_key_file`, which is created on first start.
    #[serde(skip_serializing)]
    pub master_keys: Vec<Secret<String>>,
    /// The id of the master key that wraps new data keys; default: the last one listed.
    pub current: Option<String>,
    /// Where master keys live when none are configured. Keep it out of backups of the database.
    pub master_key_file: PathBuf,
    /// Algorithm for new data keys: `aes-256-gcm` or `sm4-gcm` (GB/T 32907).
    pub algorithm: String,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        Self {
            master_keys: Vec::new(),
            current: None,
            master_key_file: PathBuf::from("./data/master.keys"),
            algorithm: "aes-256-gcm".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed sign-ins before an account is locked.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked, in minutes.
    pub lockout_minutes: i64,
    /// A session with no request for this many minutes ends.
    pub session_idle_minutes: i64,
    /// A resident's one-time sign-in code is valid for this many minutes.
    pub code_ttl_minutes: i64,
    /// Wrong guesses allowed for one sign-in code.
    pub code_max_attempts: u32,
    /// Sign-in attempts per minute for one account or phone.
    pub rate_per_minute_per_account: u32,
    /// Resolved sessions are kept in memory this many milliseconds (0: off). Sign-out,
    /// revocation, disabling, password, grant and person-link changes made through this server
    /// take effect at once; made by another server sharing the database or by `anxin admin`,
    /// within this bound (rush).
    pub session_cache_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            lockout_threshold: 5,
            lockout_minutes: 15,
            session_idle_minutes: 30,
            code_ttl_minutes: 5,
            code_max_attempts: 5,
            rate_per_minute_per_account: 10,
            session_cache_ms: 10_000, // rush
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// SMTP relay for e-mail; e-mail is off when absent.
    pub smtp: Option<SmtpConfig>,
    /// SMS template id for the resident sign-in code (Chinese SMS providers send approved
    /// templates with parameters, not free text). `notify.sms.templates.login_code` wins.
    pub sms_login_template: Option<String>,
    /// SMS provider; SMS goes to the outbox when absent.
    pub sms: Option<SmsConfig>,
    /// WeChat service account (template messages); off when absent.
    pub wechat: Option<WechatConfig>,
    /// Voice-call provider (text to speech); off when absent.
    pub voice: Option<VoiceConfig>,
    /// Shared secret of the provider callbacks (`/api/v1/notify/sms/receipts`, `/replies`):
    /// given as `?token=` or `X-Anxin-Token`, or as the HMAC-SHA256 of the body in
    /// `X-Anxin-Signature`. Callbacks are refused while it is unset.
    #[serde(default, skip_serializing)]
    pub callback_secret: Option<Secret<String>>,
    /// Group robots (WeCom, DingTalk): the recipient of a robot message is the robot's name.
    pub robots: Vec<RobotConfig>,
}

/// An SMS provider's HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// `tencent` (Tencent Cloud SMS `SendSms`, TC3-HMAC-SHA256) or `generic` (JSON to
    /// `endpoint`, see docs/CHANNELS.md).
    pub provider: String,
    /// The API address: `https://sms.tencentcloudapi.com` for Tencent.
    pub endpoint: String,
    /// Tencent region (`ap-guangzhou`).
    #[serde(default = "default_sms_region")]
    pub region: String,
    /// Tencent `SmsSdkAppId`.
    #[serde(default)]
    pub app_id: String,
    /// The approved signature (`安心社区`).
    #[serde(default)]
    pub sign_name: String,
    /// Tencent `SecretId`.
    #[serde(default)]
    pub secret_id: String,
    /// Tencent `SecretKey`, or the generic gateway's bearer key / signing secret.
    #[serde(default, skip_serializing)]
    pub secret_key: Option<Secret<String>>,
    /// The provider's template id for each Anxin template (`login_code = "1234567"`).
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

/// A WeChat service account (公众号) sending template messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    pub app_id: String,
    #[serde(default, skip_serializing)]
    pub app_secret: Option<Secret<String>>,
    /// `https://api.weixin.qq.com`.
    #[serde(default = "default_wechat_api")]
    pub api_base: String,
    /// The account's template id for each Anxin template; the data keys are the template's
    /// parameter names.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    /// Page opened when the message is tapped.
    #[serde(default)]
    pub url: Option<String>,
    /// WeChat's OAuth authorize page (residents bind their WeChat there): `https://open.weixin.qq.com`.
    #[serde(default = "default_wechat_oauth")]
    pub oauth_base: String,
    /// The absolute address WeChat sends residents back to after binding, as registered with the
    /// service account: `https://<this server>/resident/channels/wechat/callback`. Residents
    /// cannot bind WeChat while it is unset.
    #[serde(default)]
    pub oauth_redirect: Option<String>,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

/// A voice-call provider speaking a TTS template (generic JSON API, see docs/CHANNELS.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    pub endpoint: String,
    /// Bearer key and signing secret.
    #[serde(default, skip_serializing)]
    pub api_key: Option<Secret<String>>,
    /// The provider's TTS template id for each Anxin template.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    /// Times the message is spoken in one call.
    #[serde(default = "default_voice_repeat")]
    pub repeat: u32,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

/// A group robot's webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// The name messages are addressed to (the recipient).
    pub name: String,
    /// `wecom` or `dingtalk`.
    pub kind: String,
    /// The webhook address with its key or access token: a secret.
    #[serde(default, skip_serializing)]
    pub webhook: Option<Secret<String>>,
    /// DingTalk 加签 secret (`SEC…`); requests are signed when set.
    #[serde(default, skip_serializing)]
    pub secret: Option<Secret<String>>,
    /// `markdown` (default) or `text`.
    #[serde(default = "default_robot_format")]
    pub format: String,
    #[serde(default = "default_provider_timeout")]
    pub timeout_seconds: u64,
}

fn default_sms_region() -> String {
    "ap-guangzhou".into()
}
fn default_wechat_api() -> String {
    "https://api.weixin.qq.com".into()
}
fn default_wechat_oauth() -> String {
    "https://open.weixin.qq.com".into()
}
fn default_voice_repeat() -> u32 {
    2
}
fn default_robot_format() -> String {
    "markdown".into()
}
fn default_provider_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// `none` (loopback relays only), `starttls` or `tls`.
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<Secret<String>>,
}

fn default_smtp_tls() -> String {
    "starttls".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// How often idle workers look for due jobs, in milliseconds.
    pub poll_ms: u64,
    /// How long a worker holds a job before another may take it over, in seconds.
    pub lease_seconds: i64,
    /// Job workers in this process.
    pub workers: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            poll_ms: 1000,
            lease_seconds: 60,
            workers: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days the audit log is kept (at least 180: 等保 asks for six months).
    pub audit_days: i64,
    /// Days ended sessions and used sign-in codes are kept.
    pub sessions_days: i64,
    /// Days delivery records are kept.
    pub notifications_days: i64,
    /// Days finished jobs are kept.
    pub jobs_days: i64,
    /// Days gate records (whereabouts, 出入记录) are kept, change-log entries included.
    pub gate_records_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            audit_days: 190,
            sessions_days: 30,
            notifications_days: 90,
            jobs_days: 14,
            gate_records_days: 28,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info,anxin=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// The map's base layer. `offline` (the default) needs no network: Anxin's own vector layers
/// (outlines, grids, buildings, facilities) on a plain background. The others load raster tiles
/// from `tile_url` in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MapBase {
    #[default]
    Offline,
    /// 天地图 (CGCS2000, shown as WGS84): needs `tianditu_key`.
    Tianditu,
    /// A GCJ-02 tile service such as AMap (高德): overlays are shifted to GCJ-02 for display and
    /// drawings shifted back to WGS84 before they are stored.
    Gcj02,
    /// Any XYZ tile service, e.g. tiles served on the local network; `crs` says its system.
    Custom,
    /// Raster tiles from `tiles_dir` (`{z}/{x}/{y}.png`), served by Anxin itself at `/tiles/…`:
    /// a real map with no network at all; `crs` says their system.
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapConfig {
    /// `offline`, `tianditu`, `gcj02`, `custom` or `local`.
    pub base: MapBase,
    /// XYZ tile URL template (`{s}`, `{z}`, `{x}`, `{y}`); empty: the base's usual service.
    pub tile_url: String,
    /// Tile server subdomains substituted for `{s}`.
    pub subdomains: String,
    /// The tiles' coordinate system (`wgs84`, `cgcs2000`, `gcj02`); `custom` only.
    pub crs: anxin_domain::geo::Crs,
    /// Attribution shown on the map, as the tile licence requires.
    pub attribution: String,
    /// Directory of `{z}/{x}/{y}.png` tiles for `local`.
    pub tiles_dir: PathBuf,
    /// The 天地图 browser key (`tk`); set ANXIN_MAP__TIANDITU_KEY.
    #[serde(skip_serializing)]
    pub tianditu_key: Option<Secret<String>>,
    /// Where the map opens when the caller's layers are empty.
    pub center_lon: f64,
    pub center_lat: f64,
    pub zoom: u8,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            base: MapBase::Offline,
            tile_url: String::new(),
            subdomains: String::new(),
            crs: anxin_domain::geo::Crs::Wgs84,
            attribution: String::new(),
            tiles_dir: PathBuf::new(),
            tianditu_key: None,
            center_lon: 104.08,
            center_lat: 30.65,
            zoom: 13,
        }
    }
}

impl MapConfig {
    /// The coordinate system the base layer is drawn in: overlays are shown in it and drawings
    /// arrive in it.
    pub fn display_crs(&self) -> anxin_domain::geo::Crs {
        use anxin_domain::geo::Crs;
        match self.base {
            MapBase::Offline => Crs::Wgs84,
            MapBase::Tianditu => Crs::Cgcs2000,
            MapBase::Gcj02 => Crs::Gcj02,
            MapBase::Custom | MapBase::Local => self.crs,
        }
    }

    /// The tile URL template in use (the key filled in), with its subdomains; `None` offline.
    pub fn tiles(&self) -> Option<(String, String)> {
        let key = self
            .tianditu_key
            .as_ref()
            .map(|k| k.expose().clone())
            .unwrap_or_default();
        let (url, subs) = match self.base {
            MapBase::Offline => return None,
            MapBase::Tianditu => (
                "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0\
                 &LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}\
                 &TILECOL={x}&tk={key}",
                "01234567",
            ),
            MapBase::Gcj02 => (
                "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8\
                 &x={x}&y={y}&z={z}",
                "1234",
            ),
            MapBase::Custom => ("", ""),
            MapBase::Local => ("/tiles/{z}/{x}/{y}.png", ""),
        };
        let url = if self.tile_url.is_empty() {
            url
        } else {
            self.tile_url.as_str()
        };
        let subs = if self.subdomains.is_empty() {
            subs
        } else {
            self.subdomains.as_str()
        };
        Some((url.replace("{key}", &key), subs.to_owned()))
    }
}

impl Config {
    /// Defaults, then the file (if given), then `ANXIN_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = file {
            f = f.merge(Toml::file_exact(p));
        }
        // Only ANXIN_<SECTION>__<KEY> is configuration; other ANXIN_ variables (ANXIN_CONFIG,
        // ANXIN_NEW_PASSWORD, ANXIN_TEST_PG) belong to the command line and the tests.
        f.merge(
            Env::prefixed("ANXIN_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        )
        .extract()
        .map_err(Box::new)
    }

    /// Check what types cannot: values in range.
    pub fn validate(&self) -> Result<(), String> {
        if self.retention.gate_records_days < 1 {
            return Err("retention.gate_records_days must be at least 1".into());
        }
        if self.retention.audit_days < 180 {
            return Err("retention.audit_days must be at least 180 (six months)".into());
        }
        if self.auth.lockout_threshold == 0 {
            return Err("auth.lockout_threshold must be at least 1".into());
        }
        if self.auth.session_cache_ms > 300_000 {
            // rush: the session cache's staleness bound across servers stays short
            return Err("auth.session_cache_ms must be at most 300000 (5 minutes)".into());
        }
        self.algorithm()?;
        self.hazards.validate()?;
        self.supplies.validate()?;
        self.campaigns.validate()?;
        self.funds.validate()?;
        self.warnings.validate()?;
        match self.map.base {
            MapBase::Tianditu
                if self.map.tianditu_key.is_none() && self.map.tile_url.is_empty() =>
            {
                return Err(
                    "map.base = \"tianditu\" needs map.tianditu_key (ANXIN_MAP__TIANDITU_KEY)"
                        .into(),
                );
            }
            MapBase::Custom if self.map.tile_url.is_empty() => {
                return Err("map.base = \"custom\" needs map.tile_url".into());
            }
            MapBase::Local if self.map.tiles_dir.as_os_str().is_empty() => {
                return Err("map.base = \"local\" needs map.tiles_dir".into());
            }
            // Baidu's tiles are in its own projection too, not just BD-09 coordinates.
            MapBase::Custom | MapBase::Local if self.map.crs == anxin_domain::geo::Crs::Bd09 => {
                return Err("map.crs: Baidu (bd09) tiles are not supported as a base layer".into());
            }
            _ => {}
        }
        Ok(())
    }

    pub fn algorithm(&self) -> Result<anxin_crypto::Algorithm, String> {
        self.crypto.algorithm.parse().map_err(|_| {
            format!(
                "crypto.algorithm: unknown algorithm {}",
                self.crypto.algorithm
            )
        })
    }
}

/// The documented example configuration, generated from the defaults and the field docs above.
pub fn example() -> String {
    let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
    let mut out = String::from(
        "# Anxin configuration. Every value shown is the default; remove what you do not change.\n\
         # Each key can also be set from the environment: ANXIN_<SECTION>__<KEY>, e.g.\n\
         # ANXIN_DATABASE__URL=postgres://anxin@127.0.0.1/anxin\n\
         # Secrets (crypto.master_keys, notify.smtp.password) are never written here: set them\n\
         # in the environment or in a file readable only by the service account.\n",
    );
    for line in body.lines() {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push('\n');
            if let Some(doc) = SECTION_DOCS.iter().find(|(s, _)| *s == section) {
                out.push_str(&format!("# {}\n", doc.1));
            }
        } else if let Some((key, _)) = line.split_once(" = ") {
            if let Some(doc) = KEY_DOCS.iter().find(|(k, _)| *k == key) {
                out.push_str(&format!("# {}\n", doc.1));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(
        "\n# [notify.smtp]\n# host = \"smtp.example.gov.cn\"\n# port = 587\n# from = \"anxin@example.gov.cn\"\n\
         # tls = \"starttls\"\n# username = \"anxin\"\n# password: set ANXIN_NOTIFY__SMTP__PASSWORD\n",
    );
    out.push_str(
        "\n# Provider callbacks (SMS receipts and replies) authenticate with\n\
         # ANXIN_NOTIFY__CALLBACK_SECRET. See docs/CHANNELS.md for every channel.\n\
         \n# [notify.sms]\n# provider = \"tencent\"   # or \"generic\"\n\
         # endpoint = \"https://sms.tencentcloudapi.com\"\n# region = \"ap-guangzhou\"\n\
         # app_id = \"1400000000\"\n# sign_name = \"安心社区\"\n# secret_id = \"AKID…\"\n\
         # secret_key: set ANXIN_NOTIFY__SMS__SECRET_KEY\n# timeout_seconds = 10\n\
         # [notify.sms.templates]\n# login_code = \"1234567\"\n\
         \n# [notify.wechat]\n# app_id = \"wx0123456789abcdef\"\n\
         # app_secret: set ANXIN_NOTIFY__WECHAT__APP_SECRET\n# api_base = \"https://api.weixin.qq.com\"\n\
         # oauth_redirect = \"https://anxin.example.gov.cn/resident/channels/wechat/callback\"   # residents bind WeChat (warnings)\n\
         # [notify.wechat.templates]\n# notice = \"TEMPLATE_ID\"\n# warning = \"TEMPLATE_ID\"\n\
         \n# [notify.voice]\n# endpoint = \"https://voice.example.com/api/calls\"\n\
         # api_key: set ANXIN_NOTIFY__VOICE__API_KEY\n# repeat = 2\n\
         # [notify.voice.templates]\n# login_code = \"TTS_001\"\n\
         \n# [[notify.robots]]\n# name = \"duty-group\"\n# kind = \"dingtalk\"   # or \"wecom\"\n\
         # format = \"markdown\"   # or \"text\"\n\
         # webhook and secret: set ANXIN_NOTIFY__ROBOTS='[{name=\"duty-group\",kind=\"dingtalk\",webhook=\"https://oapi.dingtalk.com/robot/send?access_token=…\",secret=\"SEC…\"}]'\n",
    );
    out
}

const SECTION_DOCS: &[(&str, &str)] = &[
    ("server", "The HTTP server."),
    ("database", "Storage: SQLite (default, no set-up) or PostgreSQL."),
    ("crypto", "Encryption of personal data. master_keys: set ANXIN_CRYPTO__MASTER_KEYS='[\"k1:aes-256-gcm:BASE64\"]'."),
    ("auth", "Sign-in, lockout and sessions."),
    ("notify", "Notification channels."),
    ("jobs", "Durable background jobs."),
    ("retention", "How long operational records are kept."),
    ("log", "Structured logs (never contain personal data)."),
    ("monitor", "Monitoring: the readings store, rule ticks, retention of raw readings, escalation of unacknowledged alarms. [monitor.mqtt]: the broker subscription; password: set ANXIN_MONITOR__MQTT__PASSWORD."),
    ("warnings", "Warnings to people: this platform's CAP sender and the CAP senders it trusts."),
    ("ops", "Emergency operations: whether plans started by a warning or an alarm wait for a person's confirmation (imported warnings always do)."),
    ("hazards", "The hazard ledger: what each grade requires ([[hazards.grades]]: fix_within, plan_within, needs_acceptance; terms such as \"3 days\", \"7 working days\", \"24 hours\") and how overdue hazards escalate."),
    ("risks", "The risk register: the longest time between reviews and when owners are reminded."),
    ("supervision", "Supervision (红黄牌): the thresholds that give a community a yellow or a red card."),
    ("supplies", "Emergency reserves: expiry warnings and reserve norms per 1,000 residents."),
    ("campaigns", "Distribution campaigns: reservations, pickup codes and the reservation rush."),
    ("funds", "The emergency fund ledger and its public page."),
    ("map", "The map's base layer. offline (default) needs no network: Anxin's own outlines, grids, buildings and facilities. tianditu_key: set ANXIN_MAP__TIANDITU_KEY."),
];

const KEY_DOCS: &[(&str, &str)] = &[
    (
        "escalate_every_hours",
        "Hours past its deadline after which an open hazard goes up one more level.",
    ),
    (
        "max_review_months",
        "The longest a risk may go between reviews, in months.",
    ),
    (
        "remind_days_before",
        "Days before a risk review is due that its owner is reminded.",
    ),
    (
        "yellow_on_time_below",
        "Yellow card below this share of hazards closed on time.",
    ),
    (
        "red_on_time_below",
        "Red card below this share of hazards closed on time.",
    ),
    (
        "yellow_overdue_at_least",
        "Yellow card at this many overdue hazards.",
    ),
    (
        "red_overdue_at_least",
        "Red card at this many overdue hazards.",
    ),
    (
        "yellow_inspections_below",
        "Yellow card below this share of scheduled inspections done.",
    ),
    (
        "red_inspections_below",
        "Red card below this share of scheduled inspections done.",
    ),
    (
        "yellow_plan_late_at_least",
        "Yellow card at this many major hazards whose plan was not started in time (0: never).",
    ),
    (
        "red_plan_late_at_least",
        "Red card at this many major hazards whose plan was not started in time (0: never).",
    ),
    (
        "confirm_triggered",
        "Plans started by an issued warning or a raised alarm wait for confirmation.",
    ),
    (
        "expiry_warn_days",
        "Days before a lot of reserves expires that its community's staff are warned.",
    ),
    (
        "batch",
        "Reservations are committed in batches by one writer (false: one transaction per request).",
    ),
    (
        "batch_wait_us",
        "Microseconds the reservation writer waits for more requests when its queue is short.",
    ),
    (
        "allow_overdraft",
        "Allow spending beyond a fund account's balance.",
    ),
    (
        "public_months",
        "Months of entries the public fund page shows.",
    ),
    ("listen", "Address to listen on."),
    (
        "secure_cookies",
        "Mark cookies Secure (set when served over HTTPS).",
    ),
    (
        "rate_per_minute_per_address",
        "Requests per minute allowed from one client address.",
    ),
    (
        "url",
        "sqlite://./data/anxin.db or postgres://user@host/db.",
    ),
    ("max_connections", "PostgreSQL connections in the pool."),
    ("origin", "This node's name in the change log."),
    (
        "current",
        "Id of the master key that wraps new data keys (default: the last one).",
    ),
    (
        "master_key_file",
        "Master keys file used when none are configured; created on first start.",
    ),
    (
        "algorithm",
        "Algorithm for new data keys: aes-256-gcm or sm4-gcm (GB/T 32907).",
    ),
    (
        "lockout_threshold",
        "Failed sign-ins before an account is locked.",
    ),
    ("lockout_minutes", "Minutes a locked account stays locked."),
    (
        "session_idle_minutes",
        "Minutes without a request after which a session ends.",
    ),
    (
        "code_ttl_minutes",
        "Minutes a resident's one-time sign-in code is valid.",
    ),
    (
        "code_max_attempts",
        "Wrong guesses allowed for one sign-in code.",
    ),
    (
        "rate_per_minute_per_account",
        "Sign-in attempts per minute for one account or phone.",
    ),
    (
        "session_cache_ms",
        "Milliseconds a resolved session is kept in memory (0: off); changes made through \
         another server sharing the database take effect here within this bound.",
    ),
    (
        "sms_login_template",
        "SMS template id for the resident sign-in code.",
    ),
    ("poll_ms", "Milliseconds between idle job polls."),
    (
        "lease_seconds",
        "Seconds a worker holds a job before another may take it over.",
    ),
    ("workers", "Job workers in this process."),
    ("audit_days", "Days the audit log is kept (at least 180)."),
    (
        "sessions_days",
        "Days ended sessions and used sign-in codes are kept.",
    ),
    ("notifications_days", "Days delivery records are kept."),
    ("jobs_days", "Days finished jobs are kept."),
    (
        "gate_records_days",
        "Days gate records (whereabouts, 出入记录) are kept, change-log entries included.",
    ),
    ("format", "Log format: text or json."),
    ("filter", "Log filter, e.g. info,anxin=debug."),
    (
        "base",
        "Base layer: offline, tianditu (天地图, CGCS2000), gcj02 (e.g. AMap), custom or local.",
    ),
    (
        "tiles_dir",
        "For local: a directory of {z}/{x}/{y}.png tiles that Anxin serves at /tiles/.",
    ),
    (
        "tile_url",
        "XYZ tile URL template ({s} {z} {x} {y}); empty: the base's usual service.",
    ),
    ("subdomains", "Tile server subdomains substituted for {s}."),
    (
        "crs",
        "The custom or local tiles' coordinate system: wgs84, cgcs2000 or gcj02.",
    ),
    ("attribution", "Attribution shown on the map."),
    (
        "center_lon",
        "Where the map opens when nothing is in reach (longitude).",
    ),
    (
        "center_lat",
        "Where the map opens when nothing is in reach (latitude).",
    ),
    ("zoom", "Zoom level the map opens at."),
];
