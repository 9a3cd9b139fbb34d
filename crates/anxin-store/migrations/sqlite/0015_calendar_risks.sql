-- The working-day calendar (holidays and adjusted working weekends, as data an administrator
-- updates) and the risk register (issue 6). OWNER: calendar & risks. SCAFFOLD.
CREATE TABLE hz_placeholder_0015 (id TEXT PRIMARY KEY);
DROP TABLE hz_placeholder_0015;
