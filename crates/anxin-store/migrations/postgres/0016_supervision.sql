-- Supervision (红黄牌, issue 6): scoring rounds and cards. OWNER: supervision. SCAFFOLD.
CREATE TABLE hz_placeholder_0016 (id TEXT PRIMARY KEY);
DROP TABLE hz_placeholder_0016;
