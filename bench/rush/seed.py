#!/usr/bin/env python3
"""Households, residents and signed-in sessions for the reservation-rush benchmark.

Reads community node ids (one a line) on stdin and writes, for the given dialect, the SQL that
creates N households spread over those communities, one person in each (a plain name, no
document or phone: nothing to encrypt), and for each a resident account (`users`) linked to
that person (`user_people`) with a session (`sessions`) acting as that person. The session's
cookie token and CSRF token are random and only the token's SHA-256 is stored, exactly as
`accounts::create_session` stores it; the tokens go to the sessions file (`household_id token
csrf` lines) for `anxin-rushgen`. Sessions are stamped as used thirty minutes ahead so the
once-a-minute session touch (a write) does not enter the measurement: residents who signed in
just before the rush.

This is benchmark seeding only, written straight into a private database: the rows bypass the
change log (the app writes a household and a person through `Tx`, and a resident account is
made by signing in with an SMS code).

    bench/rush/seed.py sqlite|postgres N SESSIONS_FILE < communities.txt > seed.sql
"""
import datetime
import hashlib
import secrets
import sys
import uuid


def main():
    dialect, n, sessions_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    communities = [l.strip() for l in sys.stdin if l.strip()]
    if not communities:
        sys.exit("no communities on stdin")
    now = datetime.datetime.now(datetime.timezone.utc)
    seen = (now + datetime.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if dialect == "sqlite":
        blob = lambda b: "X'%s'" % b.hex()
        false = "0"
    elif dialect == "postgres":
        blob = lambda b: "'\\x%s'::bytea" % b.hex()
        false = "FALSE"
    else:
        sys.exit("dialect: sqlite or postgres")
    key_id = str(uuid.uuid4())
    tables = {
        "households": ("id, community_id, label, created_at, updated_at", []),
        "people": (
            "id, key_id, community_id, household_id, name, population_type, doc_type, created_at, updated_at",
            [],
        ),
        "users": (
            "id, key_id, kind, username, display_name, password_hash, totp_secret_ct, phone_bidx, disabled, created_at, updated_at",
            [],
        ),
        "user_people": ("user_id, person_id", []),
        "sessions": ("id, token_hash, user_id, person_id, csrf, mfa, ip, created_at, last_seen", []),
    }
    out_sessions = []
    for i in range(n):
        community = communities[i % len(communities)]
        household, person, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        tables["households"][1].append(
            f"('{household}', '{community}', '抢购{i // 1000 + 1}栋{i % 1000 + 1}号', '{at}', '{at}')"
        )
        tables["people"][1].append(
            f"('{person}', '{key_id}', '{community}', '{household}', '居民{i}', 'resident', 'none', '{at}', '{at}')"
        )
        tables["users"][1].append(
            f"('{user}', '{key_id}', 'resident', NULL, '居民', NULL, NULL, NULL, {false}, '{at}', '{at}')"
        )
        tables["user_people"][1].append(f"('{user}', '{person}')")
        tables["sessions"][1].append(
            f"('{uuid.uuid4()}', {blob(hashlib.sha256(token.encode()).digest())}, '{user}', '{person}', "
            f"'{csrf}', {false}, NULL, '{at}', '{seen}')"
        )
        out_sessions.append(f"{household} {token} {csrf}\n")
    w = sys.stdout.write
    w("BEGIN;\n")
    for table, (cols, rows) in tables.items():
        for i in range(0, len(rows), 1000):
            w(f"INSERT INTO {table} ({cols}) VALUES\n" + ",\n".join(rows[i : i + 1000]) + ";\n")
    w("COMMIT;\n")
    with open(sessions_path, "w") as s:
        s.writelines(out_sessions)
    print(f"{n} households with a resident session", file=sys.stderr)


if __name__ == "__main__":
    main()
