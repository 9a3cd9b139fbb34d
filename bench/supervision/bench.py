#!/usr/bin/env python3
"""Helpers of bench/supervision/run.

generate    N hazards spread evenly over every community (found 2025-07-01 .. 2026-12-31, 10%
            major; 75% closed on time, 20% closed late, 5% still open), one monthly schedule per
            community with inspections done for none to all of 2026-Q3's three months; all in SQL
            (SQLite through Python's sqlite3, PostgreSQL through psql), then ANALYZE.
wait-round  wait for the server's quarterly job to store its round (it scores the last ended
            quarter at start-up), printing how long that took.
time        sign in as the city's district officer, time GET /api/v1/supervision?quarter=2026-Q3
            (`--runs` times, the first one included) and check it ranks every community; then the
            anchor: a plain SQL aggregate (GROUP BY community with CASE sums) of the same hazard
            figures over the same rows, timed in the database (`--runs` times). Prints key=value.
"""
import argparse
import http.cookiejar
import json
import statistics
import subprocess
import sys
import time
import urllib.request

# 2026-Q3 in Asia/Shanghai, as UTC instants in the store's text form.
QS = "2026-06-30T16:00:00.000000Z"
QE = "2026-09-30T16:00:00.000000Z"
QS_PG = "2026-07-01 00:00:00+08"
QE_PG = "2026-10-01 00:00:00+08"
SPAN = 549 * 86400  # 2025-07-01 .. 2026-12-31
TEMPLATE = "01940000-0016-7000-8000-00000000be01"


def sqlite_path(url):
    return url[len("sqlite://"):] if url.startswith("sqlite://") else None


def psql(url, sql, timing=False):
    args = ["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", url]
    if timing:
        sql = "\\timing on\n" + sql
        args = ["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", url]
    return subprocess.run(args, input=sql, check=True, capture_output=True, text=True).stdout


def ts(x):
    return f"strftime('%Y-%m-%dT%H:%M:%S', {x}, 'unixepoch') || '.000000Z'"


def generate_sqlite(path, n):
    import sqlite3
    db = sqlite3.connect(path, isolation_level=None, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    comms = [r[0] for r in db.execute("SELECT id FROM nodes WHERE level = 'community' ORDER BY id")]
    c = len(comms)
    db.execute("CREATE TEMP TABLE bench_comm (k INTEGER PRIMARY KEY, id TEXT NOT NULL)")
    db.executemany("INSERT INTO bench_comm VALUES (?, ?)", list(enumerate(comms)))
    start = "CAST(strftime('%s', '2025-06-30 16:00:00') AS INTEGER)"
    db.execute("BEGIN IMMEDIATE")
    db.execute(f"""
        INSERT INTO hazards (id, node_id, place_kind, place_id, place_label, source, category,
            finding, grade, state, responsible_party, found_at, plan_due_at, fix_due_at,
            plan_started_at, fixed_at, closed_at, closed_on_time, created_at, updated_at)
        WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}),
        g AS (SELECT i, (i * 2654435761) % 4294967296 AS h FROM seq),
        t AS (SELECT i, c.id AS node, {start} + (h % {SPAN}) AS found,
                     CASE WHEN h % 10 = 0 THEN 'major' ELSE 'minor' END AS grade,
                     (h / 16) % 100 AS r
              FROM g JOIN bench_comm c ON c.k = g.i % {c}),
        u AS (SELECT *, CASE WHEN grade = 'major' THEN 9 ELSE 3 END * 86400 AS term FROM t)
        SELECT printf('%08x-0000-7000-8000-%012x', i / 65536, i), node, 'node', node, '基准隐患',
            'staff', 'bench', '基准隐患', grade,
            CASE WHEN r < 95 THEN 'closed' ELSE 'remediating' END, '物业服务企业',
            {ts('found')},
            CASE WHEN grade = 'major' THEN {ts('found + 86400')} END,
            {ts('found + term')},
            CASE WHEN grade = 'major' THEN {ts('found + (r % 30) * 3600')} END,
            CASE WHEN r < 75 THEN {ts('found + term - 86400')}
                 WHEN r < 95 THEN {ts('found + term + 2 * 86400')} END,
            CASE WHEN r < 75 THEN {ts('found + term - 82800')}
                 WHEN r < 95 THEN {ts('found + term + 2 * 86400 + 3600')} END,
            CASE WHEN r < 75 THEN (grade = 'minor' OR r % 30 <= 24) WHEN r < 95 THEN 0 END,
            {ts('found')}, {ts('found')}
        FROM u
    """)
    now = "'2026-01-01T00:00:00.000000Z'"
    db.execute(f"""INSERT INTO inspection_templates (id, name, target_kind, status, created_at,
        updated_at) VALUES ('{TEMPLATE}', '基准月检', 'node', 'active', {now}, {now})""")
    db.execute(f"""INSERT INTO inspection_schedules (id, node_id, template_id, name, target_kind,
        target_id, period, starts_on, active, created_at, updated_at)
        SELECT printf('01940000-0016-7000-8001-%012x', k), id, '{TEMPLATE}', '基准月检', 'node', id,
            'monthly', '2025-01-01', 1, {now}, {now} FROM bench_comm""")
    for m, key in ((0, "2026-07"), (1, "2026-08"), (2, "2026-09")):
        db.execute(f"""INSERT INTO inspections (id, node_id, template_id, schedule_id, period_key,
            target_kind, target_id, place_label, status, started_at, done_at, created_at, updated_at)
            SELECT printf('01940000-0016-7000-800{2 + m}-%012x', k), id, '{TEMPLATE}',
                printf('01940000-0016-7000-8001-%012x', k), '{key}', 'node', id, '社区', 'done',
                '{key}-10T02:00:00.000000Z', '{key}-10T03:00:00.000000Z', {now}, {now}
            FROM bench_comm WHERE k % 4 > {m}""")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    return c


def generate_pg(url, n):
    c = int(psql(url, "SELECT count(*) FROM nodes WHERE level = 'community'").strip())
    psql(url, f"""
        BEGIN;
        CREATE TEMP TABLE bench_comm AS
            SELECT (row_number() OVER (ORDER BY id)) - 1 AS k, id FROM nodes WHERE level = 'community';
        CREATE INDEX ON bench_comm (k);
        INSERT INTO hazards (id, node_id, place_kind, place_id, place_label, source, category,
            finding, grade, state, responsible_party, found_at, plan_due_at, fix_due_at,
            plan_started_at, fixed_at, closed_at, closed_on_time, created_at, updated_at)
        WITH g AS (SELECT i, (i * 2654435761) % 4294967296 AS h FROM generate_series(0, {n - 1}::bigint) i),
        t AS (SELECT i, c.id AS node,
                     timestamptz '2025-07-01 00:00:00+08' + (h % {SPAN}) * interval '1 second' AS found,
                     CASE WHEN h % 10 = 0 THEN 'major' ELSE 'minor' END AS grade,
                     (h / 16) % 100 AS r
              FROM g JOIN bench_comm c ON c.k = g.i % {c}),
        u AS (SELECT *, CASE WHEN grade = 'major' THEN 9 ELSE 3 END * interval '1 day' AS term FROM t)
        SELECT lpad(to_hex(i), 32, '0')::uuid, node, 'node', node, '基准隐患', 'staff', 'bench',
            '基准隐患', grade, CASE WHEN r < 95 THEN 'closed' ELSE 'remediating' END, '物业服务企业',
            found,
            CASE WHEN grade = 'major' THEN found + interval '1 day' END,
            found + term,
            CASE WHEN grade = 'major' THEN found + (r % 30) * interval '1 hour' END,
            CASE WHEN r < 75 THEN found + term - interval '1 day'
                 WHEN r < 95 THEN found + term + interval '2 days' END,
            CASE WHEN r < 75 THEN found + term - interval '23 hours'
                 WHEN r < 95 THEN found + term + interval '2 days 1 hour' END,
            CASE WHEN r < 75 THEN (grade = 'minor' OR r % 30 <= 24) WHEN r < 95 THEN false END,
            found, found
        FROM u;
        INSERT INTO inspection_templates (id, name, target_kind, status, created_at, updated_at)
            VALUES ('{TEMPLATE}', '基准月检', 'node', 'active', now(), now());
        INSERT INTO inspection_schedules (id, node_id, template_id, name, target_kind, target_id,
            period, starts_on, active, created_at, updated_at)
            SELECT ('01940000-0016-7000-8001-' || lpad(to_hex(k), 12, '0'))::uuid, id, '{TEMPLATE}',
                '基准月检', 'node', id, 'monthly', '2025-01-01', true, now(), now() FROM bench_comm;
        INSERT INTO inspections (id, node_id, template_id, schedule_id, period_key, target_kind,
            target_id, place_label, status, started_at, done_at, created_at, updated_at)
            SELECT ('01940000-0016-7000-800' || (2 + m) || '-' || lpad(to_hex(k), 12, '0'))::uuid, id,
                '{TEMPLATE}', ('01940000-0016-7000-8001-' || lpad(to_hex(k), 12, '0'))::uuid,
                key, 'node', id, '社区', 'done', (key || '-10 10:00+08')::timestamptz,
                (key || '-10 11:00+08')::timestamptz, now(), now()
            FROM bench_comm, (VALUES (0, '2026-07'), (1, '2026-08'), (2, '2026-09')) AS months(m, key)
            WHERE k % 4 > m;
        COMMIT;
        ANALYZE;
    """)
    return c


def anchor_sql(dialect, ids_filter):
    qs, qe = (QS, QE) if dialect == "sqlite" else (QS_PG, QE_PG)
    true = "1" if dialect == "sqlite" else "true"
    due = (f"(h.fix_due_at >= '{qs}' AND h.fix_due_at < '{qe}' AND (h.fix_due_at <= '{qe}' "
           f"OR (h.state = 'closed' AND h.closed_at <= '{qe}')))")
    overdue = f"(h.fix_due_at < '{qe}' AND (h.state <> 'closed' OR h.closed_at > '{qe}'))"
    plan_late = (f"(h.grade = 'major' AND h.plan_due_at >= '{qs}' AND h.plan_due_at < '{qe}' "
                 f"AND (h.plan_started_at IS NULL OR h.plan_started_at > h.plan_due_at))")
    return (f"SELECT h.node_id, sum(CASE WHEN {due} THEN 1 ELSE 0 END) AS due, "
            f"sum(CASE WHEN {due} AND h.closed_on_time = {true} THEN 1 ELSE 0 END) AS on_time, "
            f"sum(CASE WHEN {overdue} THEN 1 ELSE 0 END) AS overdue, "
            f"sum(CASE WHEN {plan_late} THEN 1 ELSE 0 END) AS plan_late "
            f"FROM hazards h {ids_filter} GROUP BY h.node_id")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["generate", "wait-round", "time"])
    ap.add_argument("--database", required=True)
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base")
    ap.add_argument("--user", default="city")
    ap.add_argument("--password")
    a = ap.parse_args()
    path = sqlite_path(a.database)

    if a.cmd == "generate":
        c = generate_sqlite(path, a.n) if path else generate_pg(a.database, a.n)
        print(f"   hazards={a.n} communities={c}")
        return

    if a.cmd == "wait-round":
        t0 = time.perf_counter()
        sql = "SELECT count(*) FROM supervision_rounds WHERE cause = 'quarterly'"
        while time.perf_counter() - t0 < 300:
            if path:
                import sqlite3
                n = sqlite3.connect(path, timeout=60).execute(sql).fetchone()[0]
            else:
                n = int(psql(a.database, sql).strip())
            if n > 0:
                print(f"   quarterly job stored its round within {time.perf_counter() - t0:.1f} s of start-up")
                return
            time.sleep(0.2)
        print("   quarterly job stored no round within 300 s (timing anyway)")
        return

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    req = urllib.request.Request(a.base + "/api/v1/auth/login", method="POST",
                                 data=json.dumps({"username": a.user, "password": a.password}).encode(),
                                 headers={"content-type": "application/json"})
    with opener.open(req, timeout=60) as r:
        json.loads(r.read())
    api = []
    lines = 0
    for _ in range(a.runs):
        t0 = time.perf_counter()
        with opener.open(a.base + "/api/v1/supervision?quarter=2026-Q3", timeout=600) as r:
            body = r.read()
        api.append((time.perf_counter() - t0) * 1000)
        table = json.loads(body)
        lines = len(table["lines"])
    cards = {k: table[k] for k in ("red", "yellow", "clean", "nothing_to_score")}
    print(f"api_ms={statistics.median(api):.0f} api_first_ms={api[0]:.0f} api_min_ms={min(api):.0f} "
          f"communities={lines} bytes={len(body)} cards={json.dumps(cards, separators=(',', ':'))}")

    anchor = []
    if path:
        import sqlite3
        db = sqlite3.connect(path, timeout=60)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            rows = db.execute(anchor_sql("sqlite", "")).fetchall()
            anchor.append((time.perf_counter() - t0) * 1000)
    else:
        script = ";\n".join([anchor_sql("postgres", "")] * a.runs) + ";\n"
        out = psql(a.database, script, timing=True)
        anchor = [float(l.split()[1]) for l in out.splitlines() if l.startswith("Time:")]
        rows = [l for l in out.splitlines() if "|" in l][: len(out.splitlines())]
        rows = rows[: len(rows) // max(a.runs, 1)]
    print(f"anchor_ms={statistics.median(anchor):.0f} anchor_min_ms={min(anchor):.0f} "
          f"anchor_groups={len(rows)}")
    # The table's figures must be the aggregate's, community by community.
    if not path:
        rows = [l.split("|") for l in rows]
    plain = {str(r[0]): tuple(int(x) for x in r[1:5]) for r in rows}
    ours = {l["community_id"]: (l["hazards_due"], l["closed_on_time"], l["overdue"], l["plan_late"])
            for l in table["lines"]}
    wrong = [k for k, v in ours.items() if plain.get(k, (0, 0, 0, 0)) != v]
    print(f"figures_match={'yes' if not wrong else 'NO'} ({len(ours) - len(wrong)} of {len(ours)} communities)")
    if wrong:
        k = wrong[0]
        print(f"   first difference: {k} table={ours[k]} aggregate={plain.get(k)}")
        sys.exit(1)
    print(f"ratio={statistics.median(api) / max(statistics.median(anchor), 1):.2f} "
          f"(table over the API / plain aggregate in the database; target: table < 1000 ms)")


if __name__ == "__main__":
    sys.exit(main())
