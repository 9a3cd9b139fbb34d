-- Notification channels: SMS segments, provider receipts and replies, bulk enqueue.
ALTER TABLE notifications ADD COLUMN segments BIGINT;
ALTER TABLE notifications ADD COLUMN recipient_bidx BYTEA;
ALTER TABLE notifications ADD COLUMN receipt_status TEXT CHECK (receipt_status IN ('delivered', 'failed'));
ALTER TABLE notifications ADD COLUMN receipt_code TEXT;
ALTER TABLE notifications ADD COLUMN receipt_at TIMESTAMPTZ;
ALTER TABLE notifications ADD COLUMN replied_at TIMESTAMPTZ;
CREATE INDEX notifications_provider_ref ON notifications (channel, provider_ref);
CREATE INDEX notifications_recipient_bidx ON notifications (recipient_bidx, created_at);

CREATE TABLE notification_replies (
    id UUID PRIMARY KEY,
    notification_id UUID,
    key_id UUID NOT NULL,
    channel TEXT NOT NULL,
    sender_bidx BYTEA,
    sender_mask TEXT,
    text_ct BYTEA NOT NULL,
    provider_ref TEXT,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notification_replies_notification ON notification_replies (notification_id);
CREATE INDEX notification_replies_received ON notification_replies (received_at);
