#!/usr/bin/env python3
"""Anchor shared by the benchmarks: rows a benchmark's write created, inserted again by the
database itself into empty copies of their tables (same columns, indexes, constraints and
foreign keys), one `INSERT … SELECT` per table, in one transaction. No client round trips, no
application code: what the store costs for those rows alone.

SQLite goes through Python's sqlite3 with the server's pragmas (WAL, `synchronous=FULL`, foreign
keys on); PostgreSQL through psql with `\\timing` (the statements' server time, summed).

As a module: `copy_rows(database, [(table, where), …])` returns (milliseconds, rows).
As a command (bench/import/run):
    copies.py --database URL --tag floor TABLE=WHERE …
prints `floor_ms=… floor_rows=… floor_tables=…`.
"""
import argparse
import subprocess
import time


def copy_rows(database, selections):
    """Insert the rows `SELECT * FROM table WHERE where` of each (table, where) again into an
    empty copy of the table; return (ms, rows). The copies are dropped afterwards."""
    tables = [t for t, _ in selections]
    if database.startswith("sqlite://"):
        import sqlite3
        db = sqlite3.connect(database[len("sqlite://"):], isolation_level=None, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA cache_size=-262144")  # the server writer's
        ddl = []
        for t in tables:
            for (sql,) in db.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                    "ORDER BY type DESC", (t,)):
                ddl.append(sql.replace(f" {t} ", f" bench_{t} ", 1)
                              .replace(f" ON {t} ", f" ON bench_{t} ")
                              .replace(f"INDEX {t}", f"INDEX bench_{t}")
                              .replace(f'"{t}"', f"bench_{t}"))
        for t in tables:
            db.execute(f"DROP TABLE IF EXISTS bench_{t}")
        for d in ddl:
            # Foreign keys point at the real tables; the copies keep them (same checks).
            db.execute(d.replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ")
                        .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS "))
        n = sum(db.execute(f"SELECT count(*) FROM {t} WHERE {w}").fetchone()[0]
                for t, w in selections)
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for t, w in selections:
            db.execute(f"INSERT INTO bench_{t} SELECT * FROM {t} WHERE {w}")
        db.execute("COMMIT")
        ms = (time.perf_counter() - t0) * 1000
        for t in tables:
            db.execute(f"DROP TABLE bench_{t}")
        db.close()
        return ms, n

    def q(sql):
        return subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", database, "-c", sql],
                              check=True, capture_output=True, text=True).stdout
    setup = "".join(f"DROP TABLE IF EXISTS bench_{t}; CREATE TABLE bench_{t} (LIKE {t} INCLUDING ALL);"
                    for t in tables)
    # LIKE … INCLUDING ALL copies no foreign keys: add the originals' (pointing at the real
    # tables, as on SQLite), so the copies check what the real tables check.
    fks = q("SELECT conrelid::regclass::text || '|' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace")
    for line in fks.splitlines():
        t, d = line.split("|", 1)
        if t in tables:
            setup += f"ALTER TABLE bench_{t} ADD {d};"
    q(setup)
    n = sum(int(q(f"SELECT count(*) FROM {t} WHERE {w}")) for t, w in selections)
    script = ["\\timing on", "BEGIN;"]
    script += [f"INSERT INTO bench_{t} SELECT * FROM {t} WHERE {w};" for t, w in selections]
    script.append("COMMIT;")
    out = subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", database], input="\n".join(script),
                         check=True, capture_output=True, text=True).stdout
    ms = sum(float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:"))
    q("".join(f"DROP TABLE bench_{t};" for t in tables))
    return ms, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True)
    ap.add_argument("--tag", default="anchor")
    ap.add_argument("selections", nargs="+", metavar="TABLE=WHERE")
    a = ap.parse_args()
    sel = [tuple(s.split("=", 1)) for s in a.selections]
    ms, n = copy_rows(a.database, sel)
    print(f"{a.tag}_ms={ms:.0f} {a.tag}_rows={n} {a.tag}_tables={','.join(t for t, _ in sel)}")


if __name__ == "__main__":
    main()
