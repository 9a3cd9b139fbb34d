-- Devices, profiles, rules, rule state and alarms.
CREATE TABLE monitor_placeholder_0007 (id INTEGER PRIMARY KEY);
