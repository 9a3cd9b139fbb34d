//! Monitoring: ingestion (MQTT, HTTP), the rule pipeline, alarms and their escalation.

pub mod config;
