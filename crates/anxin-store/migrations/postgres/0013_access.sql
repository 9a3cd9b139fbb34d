-- Passes and access records (issue 5, 出入管理).
CREATE TABLE ops_placeholder_0013 (id TEXT PRIMARY KEY);
DROP TABLE ops_placeholder_0013;
