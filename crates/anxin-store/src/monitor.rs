//! Devices, profiles and rules, rule state and alarms.
