-- Incident operations (issue 5): situation reports, shelter stays, after-action reviews.
CREATE TABLE ops_placeholder_0012 (id TEXT PRIMARY KEY);
DROP TABLE ops_placeholder_0012;
