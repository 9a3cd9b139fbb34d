#!/usr/bin/env python3
"""Drive one activation benchmark against a running `anxin serve` (called by bench/activation/run).

Signs in as the demo's district officer, writes a district plan (every vulnerable person checked,
a set of tasks, volunteers called out, the district's shelters opened), adopts it, waits
`--settle` seconds (the latency generator runs meanwhile), activates it and prints
`activate_ms=`, the incident id and the step counts as key=value lines. Then the anchor, in the
same run: the rows the activation created, bulk-inserted again into empty copies of their tables
(indexes included) in one transaction — SQLite through Python's sqlite3 with the server's pragmas,
PostgreSQL through psql — `anchor_ms=` and `anchor_rows=`.
"""
import argparse
import http.cookiejar
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
from copies import copy_rows  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--database", required=True)
    ap.add_argument("--user", default="district")
    ap.add_argument("--password", default="Anxin-demo-2026")
    ap.add_argument("--district", default="510104")
    ap.add_argument("--volunteers", type=int, default=200)
    ap.add_argument("--settle", type=float, default=3.0)
    a = ap.parse_args()

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    csrf = ""

    def call(method, path, body=None, ok=(200, 201)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(a.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if csrf:
            req.add_header("x-csrf-token", csrf)
        try:
            with opener.open(req, timeout=600) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in ok:
            sys.exit(f"{method} {path}: HTTP {status} {text}")
        return json.loads(text) if text else None

    me = call("POST", "/api/v1/auth/login", {"username": a.user, "password": a.password})
    csrf = me["csrf"]
    user_id = call("GET", "/api/v1/auth/me")["user"]["id"]
    district = call("GET", f"/api/v1/nodes/by-code/{a.district}")["id"]
    shelters = call("GET", f"/api/v1/facilities?under={district}&kind=shelter&limit=100")["items"]
    body = {
        "risks": ["flood"],
        "triggers": [{"kind": "warning", "min_level": "red", "categories": ["flood"]}],
        "roles": [
            {"key": "commander", "name": "指挥长", "user_id": user_id},
            {"key": "liaison", "name": "联络员", "user_id": None},
        ],
        "tasks": [
            {"title": f"防汛任务 {i + 1}", "role": "commander" if i % 2 else "liaison",
             "due_minutes": 30 + 10 * i}
            for i in range(12)
        ],
        "shelters": [s["id"] for s in shelters],
        "volunteers": {"count": a.volunteers, "skills": []},
        "welfare_checks": True,
        "welfare_escalate_minutes": 30,
        # The supplies step (issue 7): a mask campaign for the district, whose opening gives
        # every household with a vulnerable person a delivery order.
        "supplies": [{"item": "mask", "quantity_per_household": 5, "stock": 250000,
                      "title": "防汛口罩发放", "place": "社区居委会", "hours": 72}],
    }
    plan = call("POST", "/api/v1/plans",
                {"node_id": district, "name": f"锦江区防汛预案 {int(time.time())}",
                 "review_period_days": 365})
    version = call("POST", f"/api/v1/plans/{plan['id']}/versions",
                   {"body": body, "change_summary": "benchmark"})
    call("POST", f"/api/v1/plan-versions/{version['id']}/adopt")
    time.sleep(a.settle)

    def activate(label):
        t0 = time.perf_counter()
        inc = call("POST", f"/api/v1/plans/{plan['id']}/activate", {"exercise": True})
        ms = (time.perf_counter() - t0) * 1000
        incident = inc.get("incident", inc)
        print(f"{label}_ms={ms:.0f} incident={incident['id']} shelters={len(shelters)}")
        summary = {k: {c: n for c, n in v.items() if not isinstance(n, list)}
                   if isinstance(v, dict) else v
                   for k, v in incident.get("summary", {}).items()}
        print("summary=" + json.dumps(summary, ensure_ascii=False, separators=(",", ":")))
        return incident

    # The first activation after the server starts reads the people, households and buildings
    # from disk into the writer's page cache; a server that has run a while (and the anchor,
    # which copies rows it has just written) has them in memory. Both are reported: the first,
    # then — after deactivating it — the same plan activated again.
    first = activate("activate_cold")
    time.sleep(a.settle / 2)
    call("POST", f"/api/v1/incidents/{first['id']}/deactivate")
    time.sleep(a.settle / 2)
    incident = activate("activate")
    time.sleep(a.settle)
    anchor(a.database, incident["id"])
    # The same rows plus the change-log entries the activation appended for them (the log is
    # part of every write here: one entry per row, with its after-image).
    anchor(a.database, incident["id"], with_log=True)


def tables_with_incident(cols_of):
    """The activation's rows: tables keyed by the incident, then the campaigns' slots, counters
    and delivery orders, keyed by a campaign of the incident."""
    direct = [t for t, cols in cols_of.items() if "incident_id" in cols]
    by_campaign = [t for t, cols in cols_of.items()
                   if "campaign_id" in cols and "incident_id" not in cols]
    return direct + sorted(by_campaign)


def where(t, cols_of, incident, param):
    if t == "incidents":
        return f"id = {param}"
    if t == "change_log":
        # Every entry the activation's write appended (its request id is the incident's).
        return ("request_id = (SELECT request_id FROM change_log WHERE kind = 'incidents' "
                f"AND op = 'insert' AND record_id = {param})")
    if "incident_id" in cols_of[t]:
        return f"incident_id = {param}"
    return f"campaign_id IN (SELECT id FROM campaigns WHERE incident_id = {param})"


def anchor(database, incident, with_log=False):
    if database.startswith("sqlite://"):
        import sqlite3
        db = sqlite3.connect(database[len("sqlite://"):], timeout=60)
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'bench_%'")]
        cols_of = {n: [r[1] for r in db.execute(f"PRAGMA table_info({n})")] for n in names}
        db.close()
        tables = ["incidents"] + tables_with_incident(cols_of)
    else:
        cols_of = {}
        out = subprocess.run(
            ["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", database, "-c",
             "SELECT table_name, column_name FROM information_schema.columns "
             "WHERE column_name IN ('incident_id', 'campaign_id') "
             "AND table_schema = current_schema()"],
            check=True, capture_output=True, text=True).stdout
        for line in out.split():
            t, c = line.split("|")
            cols_of.setdefault(t, []).append(c)
        cols_of["incidents"] = ["id"]
        tables = ["incidents"] + [t for t in tables_with_incident(cols_of) if t != "incidents"]
    if with_log:
        tables.append("change_log")
    ms, n = copy_rows(database, [(t, where(t, cols_of, incident, f"'{incident}'")) for t in tables])
    tag = "anchor_log" if with_log else "anchor"
    print(f"{tag}_ms={ms:.0f} {tag}_rows={n} {tag}_tables={','.join(tables)}")


if __name__ == "__main__":
    main()
