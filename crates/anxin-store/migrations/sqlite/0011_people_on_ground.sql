-- Volunteers, call-outs, attendance and welfare checks (issue 5, people on the ground).
CREATE TABLE ops_placeholder_0011 (id TEXT PRIMARY KEY);
DROP TABLE ops_placeholder_0011;
