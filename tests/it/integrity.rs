//! The guarantees the rest of Anxin leans on: the change log mirrors every record, personal data
//! never sits in plaintext, master keys rotate away, migrations upgrade old databases.

use std::sync::Arc;

use anxin::app::{App, OpenOptions};
use anxin_domain::{DocType, Document};
use anxin_store::changelog::LOGGED_TABLES;
use anxin_store::people::{self, PersonPatch};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};

use crate::support::{self, Backend, TestApp};
use crate::world;

/// Some of everything: a tree, people with sealed fields, edits, a move, an erasure.
async fn workload(t: &TestApp) -> world::World {
    let w = world::build(t.store()).await;
    let (a, b, hb) = (w.person_a1, w.person_a1n, w.hh_b1);
    t.store()
        .write(WriteCtx::system("edits"), move |tx| {
            let sys = Caller::system();
            people::update_person(
                tx,
                &sys,
                a,
                &PersonPatch {
                    name: Some("张三".into()),
                    phone: Some("".into()),
                    ..Default::default()
                },
            )?;
            people::join_household(
                tx,
                &sys,
                hb,
                b,
                anxin_domain::HouseholdRole::Tenant,
                chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default(),
            )?;
            people::add_vulnerable(
                tx,
                &sys,
                &people::VulnerableInput {
                    person_id: a,
                    category: "elderly_alone".into(),
                    helper_user_id: None,
                    contact_channel: "no_smartphone".into(),
                    notes: Some("住三楼，听力差".into()),
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let gone = w.person_b1;
    t.store()
        .write(WriteCtx::system("erase"), move |tx| {
            people::erase_person(tx, &Caller::system(), gone)
        })
        .await
        .unwrap();
    w
}

both_stores!(change_log_mirrors_every_record, |t: TestApp| async move {
    workload(&t).await;
    t.clock.advance(chrono::Duration::minutes(5));
    anxin::divisions::import(
        &t.app,
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/divisions/chengdu"
        )),
        None,
        "nbs-2023",
    )
    .await
    .unwrap();
    let checked = t
        .store()
        .read(|c, env| {
            let mut checked = 0;
            for table in LOGGED_TABLES {
                let rows = c.query(&format!("SELECT * FROM {table}"), &[])?;
                for row in &rows {
                    let id: uuid::Uuid = row.get("id")?;
                    let last = c
                        .query_one(
                            "SELECT op, after, after_ct FROM change_log WHERE kind = $1 AND record_id = $2 ORDER BY pos DESC LIMIT 1",
                            &params![*table, id],
                        )?
                        .unwrap_or_else(|| panic!("{table} {id} has no change-log entry"));
                    assert_ne!(last.get::<String>("op")?, "delete", "{table} {id}");
                    let image: serde_json::Value = match last.get::<Option<Vec<u8>>>("after_ct")? {
                        Some(ct) => serde_json::from_slice(&env.keys.open(c, "change_log.after", &ct)?).unwrap(),
                        None => last.get("after")?,
                    };
                    assert_eq!(image, row.to_json(), "{table} {id}: last image differs from the stored record");
                    checked += 1;
                }
            }
            // Deleted records: the last entry says so and the row is gone.
            let deletes = c.query("SELECT kind, record_id FROM change_log WHERE op = 'delete'", &[])?;
            for d in &deletes {
                let kind: String = d.get("kind")?;
                let id: uuid::Uuid = d.get("record_id")?;
                let n = c.query_i64(&format!("SELECT count(*) FROM {kind} WHERE id = $1"), &params![id])?;
                assert_eq!(n, 0, "{kind} {id} deleted but still stored");
            }
            assert!(!deletes.is_empty());
            Ok(checked)
        })
        .await
        .unwrap();
    assert!(checked > 3329, "checked {checked} records");
});

/// A valid ID number and a phone used only here: they must never be found in plaintext. Both are
/// chosen so no data generator produces them (a 1903 birth date in 石河子; a UK number from the
/// range Ofcom reserves for fiction), because PostgreSQL's WAL is shared with every other test
/// and benchmark on the machine.
const CANARY_ID: &str = "659001190303030000";
const CANARY_PHONE: &str = "+447700900123";
/// The digits of the phone without its country code, as any formatting would still show them.
const CANARY_PHONE_DIGITS: &str = "7700900123";

fn assert_no_canary(what: &str, bytes: &[u8]) {
    let hay = String::from_utf8_lossy(bytes);
    for needle in [CANARY_ID, &CANARY_ID[6..14], CANARY_PHONE_DIGITS] {
        assert!(
            !hay.contains(needle),
            "canary {needle} found in plaintext in {what}"
        );
    }
}

/// For files shared with other tests (PostgreSQL's WAL): the whole values only.
fn assert_no_whole_canary(what: &str, bytes: &[u8]) {
    let hay = String::from_utf8_lossy(bytes);
    for needle in [CANARY_ID, CANARY_PHONE_DIGITS] {
        assert!(
            !hay.contains(needle),
            "canary {needle} found in plaintext in {what}"
        );
    }
}

both_stores!(canary_never_in_plaintext, |t: TestApp| async move {
    // Logs of this test process go to a file we can read back.
    let log_path = t.dir.path().join("test.log");
    let file = std::fs::File::create(&log_path).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    assert_eq!(
        anxin_domain::gb11643_check_digit(&CANARY_ID[..17]),
        Some('0')
    );
    let w = world::build(t.store()).await;
    let input = world::person_input(
        "金丝雀",
        Some(CANARY_ID),
        Some(CANARY_PHONE),
        w.comm_a,
        w.grid_a1,
        w.hh_a1,
    );
    let id = t
        .store()
        .write(WriteCtx::system("canary"), move |tx| {
            people::create_person(tx, &Caller::system(), &people::NewPerson::parse(&input)?)
        })
        .await
        .unwrap()
        .id;
    t.store()
        .write(WriteCtx::system("canary-edit"), move |tx| {
            people::update_person(
                tx,
                &Caller::system(),
                id,
                &PersonPatch {
                    name: Some("金丝雀二".into()),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    // Found by blind index; unmasked on request (the plaintext lives only in that answer).
    let doc = Document::parse(DocType::MainlandId, CANARY_ID).unwrap();
    let found = t
        .store()
        .read(move |c, env| people::find_by_document(c, env, &Caller::system(), &doc))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let u = t
        .store()
        .read(move |c, env| people::unmask_person(c, env, &Caller::system(), id))
        .await
        .unwrap();
    assert_eq!(u.doc_number.as_deref(), Some(CANARY_ID));
    // The whole database, change log included, as text.
    let dump = t
        .store()
        .read(|c, _| {
            let mut all = String::new();
            let tables: Vec<String> = match c.dialect() {
                anxin_store::Dialect::Sqlite => {
                    c.query("SELECT name FROM sqlite_master WHERE type = 'table'", &[])?
                }
                anxin_store::Dialect::Postgres => c.query(
                    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
                    &[],
                )?,
            }
            .iter()
            .map(|r| r.get("name"))
            .collect::<Result<_, _>>()?;
            for tname in tables {
                for r in c.query(&format!("SELECT * FROM {tname}"), &[])? {
                    all.push_str(&r.to_json().to_string());
                    for v in r.values() {
                        if let anxin_store::Value::Bytes(b) = v {
                            all.push_str(&String::from_utf8_lossy(b));
                        }
                    }
                }
            }
            Ok(all)
        })
        .await
        .unwrap();
    assert!(
        dump.contains("金丝雀"),
        "the dump really covers the people table"
    );
    assert_no_canary("database rows", dump.as_bytes());
    // The files themselves: SQLite's database, WAL and shared memory.
    if let Some(path) = t.store().sqlite_file() {
        for suffix in ["", "-wal", "-shm"] {
            let p = format!("{}{suffix}", path.display());
            if let Ok(bytes) = std::fs::read(&p) {
                assert_no_canary(&p, &bytes);
            }
        }
    }
    // PostgreSQL's WAL, when this process may read it (CI runs as root).
    if t.backend == Backend::Postgres {
        for dir in std::fs::read_dir("/var/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
        {
            let wal = dir.path().join("main/pg_wal");
            for f in std::fs::read_dir(&wal).into_iter().flatten().flatten() {
                if let Ok(bytes) = std::fs::read(f.path()) {
                    assert_no_whole_canary(&f.path().display().to_string(), &bytes);
                }
            }
        }
    }
    // An export by a worker who may read the person: masked.
    let base = t.serve().await;
    let worker = world::staff(
        &t,
        "worker_a",
        anxin_domain::Role::CommunityWorker,
        anxin_domain::Scope::Node(w.comm_a),
    )
    .await;
    let csv = crate::support::client()
        .get(format!("{base}/api/v1/people.csv"))
        .header("cookie", &worker.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    let csv = csv.bytes().await.unwrap();
    assert!(
        String::from_utf8_lossy(&csv).contains("金丝雀二"),
        "the export covers the person"
    );
    assert_no_canary("CSV export", &csv);
    // A backup.
    let backup = t.dir.path().join("backup.jsonl");
    anxin::platform::backup::backup(&t.app, &backup)
        .await
        .unwrap();
    let bytes = std::fs::read(&backup).unwrap();
    assert!(
        String::from_utf8_lossy(&bytes).contains("金丝雀二"),
        "the backup covers the person"
    );
    assert_no_canary("backup", &bytes);
    assert_no_canary("logs", &std::fs::read(&log_path).unwrap_or_default());
});

both_stores!(
    rotation_retires_the_old_master_key,
    |t: TestApp| async move {
        let w = workload(&t).await;
        let config = t.config.clone();
        let TestApp { app, .. } = &t;
        let url = app
            .store
            .sqlite_file()
            .map(|p| format!("sqlite://{}", p.display()))
            .unwrap_or_else(|| config.database.url.clone());
        let (new_key, new_line) =
            anxin_crypto::KeyRing::generate_master_key("k2", anxin_crypto::Algorithm::Sm4Gcm)
                .unwrap();
        let new_line = new_line.expose().clone();
        let old_line = support::TEST_MASTER_KEY.to_owned();
        let (a, a1n) = (w.person_a1, w.person_a1n);
        let keys = t
            .store()
            .read(|c, _| {
                Ok(c.query_i64("SELECT count(*) FROM data_keys", &[])?
                    + c.query_i64("SELECT count(*) FROM keyring", &[])?)
            })
            .await
            .unwrap();
        tokio::task::spawn_blocking(move || {
        // Rotate with both keys present, the new one current.
        let mut c = config.clone();
        c.database.url = url.clone();
        c.crypto.master_keys = vec![anxin_crypto::Secret::new(old_line), anxin_crypto::Secret::new(new_line.clone())];
        c.crypto.current = Some(new_key.id().to_owned());
        let app = App::open(c.clone(), OpenOptions::default()).unwrap();
        let n = app.store.rotate_keys_blocking().unwrap();
        assert_eq!(i64::try_from(n).unwrap(), keys, "every wrapped key is re-wrapped");
        drop(app);
        // Now only the new key: everything still opens and every blind index still finds.
        c.crypto.master_keys = vec![anxin_crypto::Secret::new(new_line)];
        c.crypto.current = None;
        let app = App::open(c, OpenOptions::default()).unwrap();
        let left = app
            .store
            .read_blocking(|conn, _| conn.query_i64("SELECT count(*) FROM data_keys WHERE kek_id <> 'k2'", &[]))
            .unwrap();
        assert_eq!(left, 0);
        app.store
            .read_blocking(|conn, env| {
                let sys = Caller::system();
                let u = people::unmask_person(conn, env, &sys, a1n)?;
                assert_eq!(u.doc_number.as_deref(), Some("510104199001011230"));
                let doc = Document::parse(DocType::MainlandId, "510104199001011230").unwrap();
                assert_eq!(people::find_by_document(conn, env, &sys, &doc)?.len(), 1);
                let phone = anxin_domain::Phone::parse("13900000001").unwrap();
                assert_eq!(people::find_by_phone(conn, env, &sys, &phone)?.len(), 1);
                let v = people::list_vulnerable(conn, env, &sys, Some(anxin_domain::VulnerableCategory::ElderlyAlone))?;
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].person_id, a);
                assert_eq!(v[0].notes.as_deref(), Some("住三楼，听力差"));
                for r in conn.query("SELECT after_ct FROM change_log WHERE after_ct IS NOT NULL AND key_id IN (SELECT id FROM data_keys)", &[])? {
                    env.keys.open(conn, "change_log.after", &r.get::<Vec<u8>>("after_ct")?)?;
                }
                Ok(())
            })
            .unwrap();
    })
    .await
    .unwrap();
    }
);

/// A fresh empty database of `backend`, and its URL (dropped with the guard).
fn empty_db(backend: Backend, dir: &std::path::Path) -> (String, Option<support::PgDbGuard>) {
    match backend {
        Backend::Sqlite => (format!("sqlite://{}", dir.join("empty.db").display()), None),
        Backend::Postgres => {
            let (url, guard) = support::empty_pg_db();
            (url, Some(guard))
        }
    }
}

fn upgrade_from_previous_release(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = empty_db(backend, dir.path());
    let releases = anxin_store::migrate::RELEASES;
    let (prev_name, prev_version) = releases[releases.len() - 2];
    let mut config = support::config_for(&url, dir.path());
    config.database.url = url.clone();
    let old = App::open(
        config.clone(),
        OpenOptions {
            migrate_upto: Some(prev_version),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let v = old
        .store
        .read_blocking(|c, _| anxin_store::migrate::current_version(c))
        .unwrap();
    assert_eq!(v, prev_version, "database made by release {prev_name}");
    let w = old
        .store
        .write_blocking(WriteCtx::system("old"), |tx| {
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "nodes",
                &[
                    ("id", id.into()),
                    ("level", "city".into()),
                    ("name", "成都市".into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(id)
        })
        .unwrap();
    drop(old);
    let clock = anxin_domain::ManualClock::new(support::start_time());
    let new = App::open(
        config,
        OpenOptions {
            clock: Arc::new(clock),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let v = new
        .store
        .read_blocking(|c, _| anxin_store::migrate::current_version(c))
        .unwrap();
    assert_eq!(v, anxin_store::migrate::latest());
    let name: String = new
        .store
        .read_blocking(move |c, _| {
            c.query_one("SELECT name FROM nodes WHERE id = $1", &params![w])?
                .unwrap()
                .get("name")
        })
        .unwrap();
    assert_eq!(name, "成都市");
}

#[test]
fn migrations_upgrade_previous_release_sqlite() {
    upgrade_from_previous_release(Backend::Sqlite);
}

#[test]
fn migrations_upgrade_previous_release_postgres() {
    upgrade_from_previous_release(Backend::Postgres);
}

/// Both backends' migrations give the same tables with the same columns, in the same order.
#[test]
fn schemas_of_both_backends_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut shapes = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, _guard) = empty_db(backend, dir.path());
        let app = App::open(
            support::config_for(&url, dir.path()),
            OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(
            anxin_store::migrate::list(app.store.dialect()).len(),
            anxin_store::migrate::SQLITE.len()
        );
        let shape = app
            .store
            .read_blocking(|c, _| {
                let sql = match c.dialect() {
                    anxin_store::Dialect::Sqlite => "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
                        WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
                    anxin_store::Dialect::Postgres => "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                        WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
                };
                c.query(sql, &[])?.iter().map(|r| Ok(format!("{}.{}", r.get::<String>("t")?, r.get::<String>("c")?))).collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        shapes.push(shape);
        drop(app);
    }
    assert_eq!(shapes[0], shapes[1]);
}

#[test]
fn cli_definition_is_valid() {
    use clap::CommandFactory;
    anxin::cli::Cli::command().debug_assert();
}

#[test]
fn config_example_is_current_and_secrets_stay_hidden() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
            .unwrap();
    assert_eq!(
        committed,
        anxin::config::example(),
        "regenerate with: anxin config example > config.example.toml"
    );
    let mut c = anxin::config::Config::default();
    c.crypto.master_keys = vec![anxin_crypto::Secret::new(
        support::TEST_MASTER_KEY.to_owned(),
    )];
    let printed = format!("{c:?}");
    assert!(!printed.contains("AAECAwQF"), "{printed}");
    // The example parses back into the defaults.
    let parsed: anxin::config::Config = toml::from_str(&committed).unwrap();
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", anxin::config::Config::default())
    );
}

#[test]
fn newest_release_is_the_latest_migration() {
    let releases = anxin_store::migrate::RELEASES;
    assert_eq!(
        releases.last().map(|r| r.1),
        Some(anxin_store::migrate::latest())
    );
    let versions: Vec<i64> = anxin_store::migrate::POSTGRES
        .iter()
        .map(|m| m.version)
        .collect();
    let sqlite: Vec<i64> = anxin_store::migrate::SQLITE
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, sqlite, "both backends have the same migrations");
}

/// The demo gives the same records, ids included, on every run.
#[test]
fn demo_is_deterministic() {
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("demo.db").display());
        let config = support::config_for(&url, dir.path());
        anxin::demo::build_seeded_with(&config, 3_000).unwrap();
        let app = App::open(config, OpenOptions::default()).unwrap();
        let snap = app
            .store
            .read_blocking(|c, _| {
                let mut out = Vec::new();
                for sql in [
                    "SELECT id || ':' || name FROM people ORDER BY id",
                    "SELECT id || ':' || name FROM nodes ORDER BY id",
                    "SELECT id || ':' || username FROM users ORDER BY id",
                    "SELECT id || ':' || person_id FROM vulnerable ORDER BY id",
                ] {
                    for r in c.query(sql, &[])? {
                        out.push(r.values()[0].to_json().to_string());
                    }
                }
                Ok(out)
            })
            .unwrap();
        assert!(snap.len() > 3329 + 100, "{}", snap.len());
        snapshots.push(snap);
    }
    assert_eq!(snapshots[0], snapshots[1]);
}

/// Environment overrides reach the configuration; other ANXIN_ variables are left alone.
#[test]
fn environment_overrides_configuration() {
    std::env::set_var("ANXIN_DATABASE__URL", "postgres://anxin@127.0.0.1/anxin");
    std::env::set_var("ANXIN_AUTH__LOCKOUT_THRESHOLD", "7");
    std::env::set_var("ANXIN_NEW_PASSWORD", "not configuration");
    std::env::set_var("ANXIN_CONFIG", "/nonexistent.toml");
    let c = anxin::config::Config::load(None).unwrap();
    assert_eq!(c.database.url, "postgres://anxin@127.0.0.1/anxin");
    assert_eq!(c.auth.lockout_threshold, 7);
    std::env::set_var("ANXIN_AUTH__NO_SUCH_KEY", "1");
    assert!(
        anxin::config::Config::load(None).is_err(),
        "a misspelt key is an error, not ignored"
    );
}
