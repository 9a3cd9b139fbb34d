//! Monitoring rules: what a device's readings must do to raise, and to clear, an alarm.
