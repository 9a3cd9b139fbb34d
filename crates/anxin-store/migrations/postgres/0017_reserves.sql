-- Emergency reserves (issue 7): items, depots (facilities), lots with expiry, the append-only
-- movement ledger, reserve norms per 1,000 residents, dispatch plans and their transfers.
-- OWNER: reserves & dispatch. SCAFFOLD.
SELECT 1;
