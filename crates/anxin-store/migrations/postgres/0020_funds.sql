-- The emergency fund ledger (应急资金, issue 7): sources and spending with attachments.
-- OWNER: fund ledger. SCAFFOLD.
SELECT 1;
