//! Monitoring stories: devices, readings over MQTT and HTTP, rules, alarms, escalation.
