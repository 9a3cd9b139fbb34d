-- Search and list speed (issue 3).
--
-- The people list is read in (name, id) order: keyset pages (`after=`) and bounded offsets walk
-- this index and stop after a page. The index carries the columns the list filters on (reach by
-- community or grid, population type), so rows that do not match are skipped without reading
-- the table.
CREATE INDEX people_name_order ON people (name, id, community_id, grid_id, population_type);
-- A grid's people in name order (the grid worker's list, the grid filter) without a sort.
CREATE INDEX people_grid_name ON people (grid_id, name, id);

-- Every distinct 1- and 2-character substring of each person's name, so a search for part of a
-- Chinese name (one or two characters, anywhere in the name) is an index lookup that comes out
-- in list order. Derived data, kept by the store's Tx on every insert, update and delete of
-- `people` (not a record: not logged).
CREATE TABLE person_name_grams (
    gram TEXT NOT NULL,
    name TEXT NOT NULL,
    person_id TEXT NOT NULL,
    community_id TEXT NOT NULL,
    PRIMARY KEY (gram, name, person_id)
) WITHOUT ROWID;
CREATE INDEX person_name_grams_person ON person_name_grams (person_id);

INSERT OR IGNORE INTO person_name_grams (gram, name, person_id, community_id)
WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 64),
     k(len) AS (SELECT 1 UNION ALL SELECT 2)
SELECT substr(p.name, i.n, k.len), p.name, p.id, p.community_id
FROM people p JOIN i ON i.n <= length(p.name) JOIN k ON i.n + k.len - 1 <= length(p.name);
