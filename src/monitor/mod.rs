//! Monitoring: ingestion (MQTT, HTTP), the rule pipeline, alarms and their escalation.
//!
//! - [`pipeline`]: payload → readings store (dedup, rollups, rule state, outbox) → alarms;
//! - [`mqtt`]: the broker subscription (QoS 1, persistent session, manual acks);
//! - [`escalation`]: unacknowledged alarms go up the tree and notify the officers there;
//! - [`Monitor`] (in [`crate::app::App`]): the readings store, caches, counters.
//!
//! See docs/MONITORING.md for the topic scheme, the payload and the broker settings.

pub mod config;
pub mod escalation;
pub mod mqtt;
pub mod pipeline;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anxin_domain::rules::Profile;
use anxin_store::monitor::DeviceInfo;
use anxin_store::readings::{self, ReadingsStore};
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::App;
use crate::config::Config;

/// Why a message was refused. Counted per reason; logged without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    Malformed,
    UnknownDevice,
    DisabledDevice,
    BadToken,
}

impl Reject {
    pub const ALL: [Reject; 4] = [
        Reject::Malformed,
        Reject::UnknownDevice,
        Reject::DisabledDevice,
        Reject::BadToken,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::UnknownDevice => "unknown_device",
            Reject::DisabledDevice => "disabled_device",
            Reject::BadToken => "bad_token",
        }
    }
    fn index(self) -> usize {
        match self {
            Reject::Malformed => 0,
            Reject::UnknownDevice => 1,
            Reject::DisabledDevice => 2,
            Reject::BadToken => 3,
        }
    }
}

/// Ingest counters (rendered with the other metrics).
#[derive(Debug, Default)]
pub struct Counters {
    rejected: [AtomicU64; 4],
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
}

impl Counters {
    pub fn rejected(&self, why: Reject) -> u64 {
        self.rejected[why.index()].load(Ordering::Relaxed)
    }
    /// Prometheus text lines (`anxin_ingest_*`).
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# HELP anxin_ingest_rejected Messages refused by the ingest, by reason.\n\
             # TYPE anxin_ingest_rejected counter\n",
        );
        for r in Reject::ALL {
            s.push_str(&format!(
                "anxin_ingest_rejected_total{{reason=\"{}\"}} {}\n",
                r.as_str(),
                self.rejected(r)
            ));
        }
        s.push_str(&format!(
            "# TYPE anxin_ingest_readings counter\nanxin_ingest_readings_total{{result=\"stored\"}} {}\n\
             anxin_ingest_readings_total{{result=\"duplicate\"}} {}\n",
            self.stored.load(Ordering::Relaxed),
            self.duplicates.load(Ordering::Relaxed)
        ));
        s
    }
}

/// What the monitor keeps for the running app.
pub struct Monitor {
    pub readings: ReadingsStore,
    pub counters: Counters,
    /// One batch at a time per process: rule state is read and written inside each batch.
    pub(crate) pipeline_lock: tokio::sync::Mutex<()>,
    /// Outbox events applied to alarms, forgotten in the next readings transaction.
    pub(crate) applied: std::sync::Mutex<Vec<(Uuid, i64)>>,
    /// Rule events committed to the readings store and not yet written to alarms, in commit
    /// order (queued under `pipeline_lock`, right after their commit; see
    /// [`pipeline::flush_alarms`]).
    pub(crate) queued: std::sync::Mutex<pipeline::Queued>,
    /// One alarm write at a time, so a device's events reach its alarms in their numbered order.
    pub(crate) apply_lock: tokio::sync::Mutex<()>,
    devices: RwLock<HashMap<String, DeviceInfo>>,
    profiles: RwLock<HashMap<Uuid, Arc<Profile>>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("readings", &self.readings)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Open the readings store beside the main store.
    pub fn open(config: &Config) -> anyhow::Result<Monitor> {
        let m = &config.monitor;
        let readings = match anxin_store::sqlite_path(&config.database.url) {
            Some(main) => {
                let path = if m.readings_path.as_os_str().is_empty() {
                    readings::default_sqlite_path(&main)
                } else {
                    m.readings_path.clone()
                };
                ReadingsStore::open_sqlite(&path)?
            }
            None => {
                ReadingsStore::open_postgres(&config.database.url, m.readings_connections.max(1))?
            }
        };
        Ok(Monitor {
            readings,
            counters: Counters::default(),
            pipeline_lock: tokio::sync::Mutex::new(()),
            applied: std::sync::Mutex::new(Vec::new()),
            queued: std::sync::Mutex::new(pipeline::Queued::default()),
            apply_lock: tokio::sync::Mutex::new(()),
            devices: RwLock::new(HashMap::new()),
            profiles: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn reject(&self, why: Reject) -> pipeline::Outcome {
        self.counters.rejected[why.index()].fetch_add(1, Ordering::Relaxed);
        tracing::info!(reason = why.as_str(), "ingest refused a message");
        pipeline::Outcome::Rejected(why)
    }

    /// Count a refusal that never reached the pipeline (a bad HTTP token).
    pub fn count_reject(&self, why: Reject) {
        self.counters.rejected[why.index()].fetch_add(1, Ordering::Relaxed);
        tracing::info!(reason = why.as_str(), "ingest refused a message");
    }

    pub(crate) fn count_stored(&self, fresh: usize, duplicates: usize) {
        self.counters
            .stored
            .fetch_add(fresh as u64, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(duplicates as u64, Ordering::Relaxed);
    }

    fn cached_device(&self, code: &str) -> Option<DeviceInfo> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(code)
            .cloned()
    }
    fn cache_device(&self, d: DeviceInfo) {
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(d.code.clone(), d);
    }
    fn cached_profile(&self, id: Uuid) -> Option<Arc<Profile>> {
        self.profiles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
    fn cache_profile(&self, id: Uuid, p: Arc<Profile>) {
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, p);
    }

    /// Forget cached devices and profiles (a device or profile changed).
    pub fn invalidate(&self) {
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The monitor's background work while serving.
pub struct Services {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Services {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Start the cache invalidation, the outbox drain, the rule ticks, escalation, retention and (when
/// configured) the MQTT subscription.
pub fn start(app: &App) -> Services {
    let (stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    // Devices and profiles changed anywhere (this process or another's change-log events).
    {
        let app = app.clone();
        let mut events = app.store.subscribe();
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = rx.changed() => break,
                    ev = events.recv() => match ev {
                        Ok(e) if e.kind == "devices" || e.kind == "device_profiles" => app.monitor.invalidate(),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => app.monitor.invalidate(),
                        Err(_) => break,
                    }
                }
            }
        }));
    }
    // Ticks (which drain the outbox first), escalation and retention on one timer.
    {
        let app = app.clone();
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            let every = Duration::from_secs(app.config.monitor.tick_seconds.max(1));
            let mut last_purge: Option<chrono::DateTime<chrono::Utc>> = None;
            loop {
                if let Err(e) = pipeline::tick(&app).await {
                    tracing::warn!(error = %e, "rule tick failed");
                }
                if let Err(e) = escalation::run(&app).await {
                    tracing::warn!(error = %e, "alarm escalation failed");
                }
                if let Err(e) = crate::ops::welfare::run(&app).await {
                    tracing::warn!(error = %e, "welfare-check escalation failed");
                }
                if let Err(e) = crate::hazards::run(&app).await {
                    tracing::warn!(error = %e, "hazard jobs failed");
                }
                if let Err(e) = crate::supplies::run(&app).await {
                    tracing::warn!(error = %e, "supplies jobs failed");
                }
                let now = app.clock.now();
                if last_purge.is_none_or(|t| now - t > chrono::Duration::hours(1)) {
                    last_purge = Some(now);
                    if let Err(e) = purge(&app).await {
                        tracing::warn!(error = %e, "readings purge failed");
                    }
                }
                tokio::select! {
                    _ = rx.changed() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        }));
    }
    if app.config.monitor.mqtt.enabled {
        let h = mqtt::start(app.clone(), app.config.monitor.mqtt.clone(), rx.clone());
        tasks.push(h.task);
    }
    Services { stop, tasks }
}

/// Delete raw readings older than the retention.
pub async fn purge(app: &App) -> anyhow::Result<u64> {
    let before =
        app.clock.now() - chrono::Duration::days(i64::from(app.config.monitor.retention_days));
    let readings = app.monitor.readings.clone();
    Ok(tokio::task::spawn_blocking(move || readings.purge(before)).await??)
}
