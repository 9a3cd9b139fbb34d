-- Providers (服务商端, issue 7): providers and the accounts that speak for them, offers, orders
-- and their lines; receiving books stock into a depot through the reserves ledger.
-- OWNER: providers. SCAFFOLD.
SELECT 1;
