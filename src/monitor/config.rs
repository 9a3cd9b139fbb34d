//! The `[monitor]` section.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// The readings store's SQLite file; empty: `<main database file>.readings.db`. (PostgreSQL:
    /// the `anxin_readings` schema of the main database.)
    pub readings_path: PathBuf,
    /// PostgreSQL connections of the readings store.
    pub readings_connections: usize,
    /// Days raw readings (and minute rollups) are kept; hour rollups stay.
    pub retention_days: u32,
    /// Readings committed together at most (one transaction, one fsync).
    pub batch_max: usize,
    /// Seconds between rule ticks (silence rules, sustained rules completing with time).
    pub tick_seconds: u64,
    /// Minutes an alarm may stay unacknowledged before it goes up one level of the tree.
    pub escalation_minutes: u32,
    /// Levels an alarm may go up at most.
    pub escalation_max_levels: u32,
    pub mqtt: MqttConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            readings_path: PathBuf::new(),
            readings_connections: 4,
            retention_days: 30,
            batch_max: 256,
            tick_seconds: 10,
            escalation_minutes: 15,
            escalation_max_levels: 2,
            mqtt: MqttConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Subscribe to the broker when serving.
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Fixed, so the broker keeps this subscriber's session (clean_session = false) and queues
    /// QoS 1 messages while it is away. Give each Anxin server its own.
    pub client_id: String,
    pub username: String,
    /// Set it in the environment (ANXIN_MONITOR__MQTT__PASSWORD); never written to the example.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// The subscription. Several Anxin servers share the load with a shared subscription:
    /// `$share/anxin/anxin/v1/devices/+/readings`.
    pub topic: String,
    pub keep_alive_seconds: u64,
    /// Unacknowledged incoming messages the broker may have in flight to us.
    pub max_inflight: u16,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "anxin-ingest-1".into(),
            username: String::new(),
            password: None,
            topic: "anxin/v1/devices/+/readings".into(),
            keep_alive_seconds: 30,
            max_inflight: 100,
        }
    }
}
