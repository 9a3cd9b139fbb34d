-- Distribution campaigns (issue 7): campaigns, pickup places and slots, reservations with
-- single-use codes, delivery orders for vulnerable households.
-- OWNER: campaigns. SCAFFOLD.
SELECT 1;
