-- Warnings, targets and deliveries.
CREATE TABLE warnings_placeholder_0008 (id INTEGER PRIMARY KEY);
