//! Building the running application from configuration: keys, store, services.

use std::path::Path;
use std::sync::Arc;

use anxin_crypto::{KeyRing, MasterKey};
use anxin_domain::{Clock, IdGen, SystemClock, SystemIdGen};
use anxin_store::{Store, StoreOptions};
use anyhow::{bail, Context};

use crate::config::Config;

/// Everything a request handler, a job or a command needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<crate::platform::metrics::Metrics>,
    /// Request windows per client address and per account (in memory, per process).
    pub limits: Arc<crate::platform::ratelimit::RateLimits>,
    /// SMS and e-mail channels and the dispatcher's wake-up call.
    pub notifier: Arc<crate::platform::notify::Notifier>,
    /// Job handlers, schedules and the workers' wake-up call.
    pub jobs: Arc<crate::platform::jobs::Jobs>,
    /// Monitoring: the readings store, device and profile caches, ingest counters.
    pub monitor: Arc<crate::monitor::Monitor>,
    /// The reservation rush: batched, durable reservations for distribution campaigns.
    pub rush: Arc<crate::supplies::rush::Rush>,
    /// Resolved sessions (rush): see `http::guard::SessionCache`.
    pub sessions: Arc<crate::http::guard::SessionCache>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// How to open the app: the real clock and ids in production, injected ones in tests and demo.
pub struct OpenOptions {
    pub clock: Arc<dyn Clock>,
    pub ids: Option<Arc<dyn IdGen>>,
    pub migrate_upto: Option<i64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            ids: None,
            migrate_upto: None,
        }
    }
}

impl App {
    pub fn open(config: Config, opts: OpenOptions) -> anyhow::Result<App> {
        config.validate().map_err(anyhow::Error::msg)?;
        let keyring = keyring(&config)?;
        let ids = opts
            .ids
            .unwrap_or_else(|| Arc::new(SystemIdGen::new(opts.clock.clone())));
        let store = Store::open(StoreOptions {
            url: config.database.url.clone(),
            keyring,
            algorithm: config.algorithm().map_err(anyhow::Error::msg)?,
            clock: opts.clock.clone(),
            ids,
            origin: config.database.origin.clone(),
            max_connections: config.database.max_connections,
            migrate_upto: opts.migrate_upto,
        })
        .with_context(|| {
            format!(
                "opening the {} database",
                backend_name(&config.database.url)
            )
        })?;
        let notifier = crate::platform::notify::Notifier::from_config(&config)?;
        let monitor =
            crate::monitor::Monitor::open(&config).context("opening the readings store")?;
        Ok(App {
            store,
            config: Arc::new(config),
            clock: opts.clock,
            metrics: Arc::new(crate::platform::metrics::Metrics::new()),
            limits: Arc::new(crate::platform::ratelimit::RateLimits::default()),
            notifier: Arc::new(notifier),
            jobs: Arc::new(crate::platform::jobs::Jobs::standard()),
            monitor: Arc::new(monitor),
            rush: Arc::new(crate::supplies::rush::Rush::new()),
            sessions: Arc::default(),
        })
    }
}

fn backend_name(url: &str) -> &'static str {
    if anxin_store::sqlite_path(url).is_some() {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// The master keys: from configuration, or from the key file (created on first start).
pub fn keyring(config: &Config) -> anyhow::Result<KeyRing> {
    let lines: Vec<String> = if config.crypto.master_keys.is_empty() {
        read_or_create_key_file(&config.crypto.master_key_file)?
    } else {
        config
            .crypto
            .master_keys
            .iter()
            .map(|s| s.expose().clone())
            .collect()
    };
    let mut keys = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let k: MasterKey = l.parse().map_err(|e| {
            anyhow::anyhow!("master key {} is not id:algorithm:base64 ({e})", i + 1)
        })?;
        keys.push(k);
    }
    let Some(last) = keys.last() else {
        bail!("no master key configured");
    };
    let current = config
        .crypto
        .current
        .clone()
        .unwrap_or_else(|| last.id().to_owned());
    KeyRing::new(&current, keys).map_err(|e| anyhow::anyhow!("master keys: {e}"))
}

pub fn read_key_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading master keys from {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

pub fn write_key_file(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut body = String::from(
        "# Anxin master keys, one per line: id:algorithm:base64. The last line wraps new keys.\n\
         # Keep this file secret and back it up apart from the database.\n",
    );
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<Vec<String>> {
    if path.exists() {
        return read_key_file(path);
    }
    let k = MasterKey::generate("k1", anxin_crypto::Algorithm::Aes256Gcm)
        .map_err(|e| anyhow::anyhow!("generating a master key: {e}"))?;
    let line = k.to_config_string().expose().clone();
    write_key_file(path, std::slice::from_ref(&line))?;
    tracing::warn!(path = %path.display(), "generated a new master key file; back it up apart from the database");
    Ok(vec![line])
}
