-- Platform services, second step: indexes for the retention purge, which ages each
-- operational table by one time column.

CREATE INDEX sessions_last_seen ON sessions (last_seen);
CREATE INDEX login_codes_expires ON login_codes (expires_at);
CREATE INDEX jobs_finished ON jobs (status, finished_at);
CREATE INDEX notifications_created ON notifications (status, created_at);
