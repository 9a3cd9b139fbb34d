//! Test support: an isolated app per test on SQLite (a temporary file) or PostgreSQL (a fresh
//! database cloned from a migrated template), a manual clock, a fixed test master key, and a
//! server on port 0.
//!
//! PostgreSQL is reached at `ANXIN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `.ci/run` starts it when it is not running.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use anxin::app::{App, OpenOptions};
use anxin::config::Config;
use anxin_domain::{ManualClock, SeededIdGen};
use chrono::TimeZone;

/// A master key used only by tests (the PostgreSQL template is wrapped with it).
pub const TEST_MASTER_KEY: &str = "test1:aes-256-gcm:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub app: App,
    pub clock: ManualClock,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pg_db: Option<PgDbGuard>,
}

pub fn start_time() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 2, 1, 0, 0)
        .single()
        .unwrap()
}

pub fn pg_admin_url() -> String {
    std::env::var("ANXIN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url_for(db: &str) -> String {
    let admin = pg_admin_url();
    match admin.rfind('/') {
        Some(i) => format!("{}/{db}", &admin[..i]),
        None => format!("{admin}/{db}"),
    }
}

fn template_name() -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for m in anxin_store::migrate::POSTGRES {
        // The version too: a migration renumbered with the same SQL needs a new template.
        h.update(m.version.to_le_bytes());
        h.update(m.sql.as_bytes());
    }
    h.update(TEST_MASTER_KEY.as_bytes());
    format!("anxin_tpl_{}", &hex::encode(h.finalize())[..12])
}

/// Create a database for one test, cloned from the migrated template (made once, under a lock).
/// Runs on a plain thread: the blocking PostgreSQL client must not run on an async worker.
fn create_pg_db() -> String {
    std::thread::spawn(|| {
        let mut admin = postgres::Client::connect(&pg_admin_url(), postgres::NoTls)
            .expect("PostgreSQL must be running for the story tests (.ci/run starts it)");
        let tpl = template_name();
        admin.execute("SELECT pg_advisory_lock(4242)", &[]).unwrap();
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&tpl])
            .unwrap()
            .is_some();
        if !exists {
            let building = format!("{tpl}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .unwrap();
            let cfg = config_for(&pg_url_for(&building), std::path::Path::new("/nonexistent"));
            let app = App::open(cfg, OpenOptions::default()).unwrap();
            drop(app);
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {tpl}"))
                .unwrap();
        }
        let db = format!("anxin_t_{}", uuid::Uuid::now_v7().simple());
        let r = admin.batch_execute(&format!("CREATE DATABASE {db} TEMPLATE {tpl}"));
        admin
            .execute("SELECT pg_advisory_unlock(4242)", &[])
            .unwrap();
        r.unwrap();
        db
    })
    .join()
    .unwrap()
}

/// An empty PostgreSQL database (not from the template), for migration tests.
pub fn empty_pg_db() -> (String, PgDbGuard) {
    let db = format!("anxin_e_{}", uuid::Uuid::now_v7().simple());
    let name = db.clone();
    std::thread::spawn(move || {
        let mut admin = postgres::Client::connect(&pg_admin_url(), postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    })
    .join()
    .unwrap();
    (pg_url_for(&db), PgDbGuard(db))
}

fn drop_pg_db(db: String) {
    let _ = std::thread::spawn(move || {
        if let Ok(mut admin) = postgres::Client::connect(&pg_admin_url(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    })
    .join();
}

pub fn config_for(url: &str, dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.database.url = url.to_owned();
    c.database.max_connections = 8;
    c.crypto.master_keys = vec![anxin_crypto::Secret::new(TEST_MASTER_KEY.to_owned())];
    c.crypto.master_key_file = dir.join("master.keys");
    c.jobs.poll_ms = 50;
    c
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    /// An app whose configuration `tweak` may adjust before it opens.
    pub async fn with_config(
        backend: Backend,
        tweak: impl FnOnce(&mut Config) + Send + 'static,
    ) -> TestApp {
        tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            let (url, pg_db) = match backend {
                Backend::Sqlite => (
                    format!("sqlite://{}", dir.path().join("anxin.db").display()),
                    None,
                ),
                Backend::Postgres => {
                    let db = create_pg_db();
                    (pg_url_for(&db), Some(PgDbGuard(db)))
                }
            };
            let mut config = config_for(&url, dir.path());
            tweak(&mut config);
            let clock = ManualClock::new(start_time());
            let ids = Arc::new(SeededIdGen::new(Arc::new(clock.clone()), 42));
            let app = App::open(
                config.clone(),
                OpenOptions {
                    clock: Arc::new(clock.clone()),
                    ids: Some(ids),
                    migrate_upto: None,
                },
            )
            .unwrap();
            TestApp {
                app,
                clock,
                backend,
                dir,
                config,
                pg_db,
            }
        })
        .await
        .unwrap()
    }

    pub fn store(&self) -> &anxin_store::Store {
        &self.app.store
    }

    /// Serve the app on a free loopback port; returns its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = anxin::http::router(self.app.clone());
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        format!("http://{addr}")
    }
}

/// Drops the test's database; declared after the app so the app's connections close first.
pub struct PgDbGuard(String);

impl Drop for PgDbGuard {
    fn drop(&mut self) {
        drop_pg_db(std::mem::take(&mut self.0));
    }
}

/// A cookie-keeping HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Define a story test that runs once on SQLite and once on PostgreSQL:
/// `both_stores!(name, |t: TestApp| async move { … });`
macro_rules! both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = crate::support::TestApp::new(crate::support::Backend::Sqlite).await;
                ($body)(t).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let t = crate::support::TestApp::new(crate::support::Backend::Postgres).await;
                ($body)(t).await;
            }
        }
    };
}

/// Like [`both_stores!`] for a story that builds its own app (extra configuration): the body is
/// given the [`Backend`] — `both_backends!(name, |b: Backend| async move { … });`
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(crate::support::Backend::Postgres).await;
            }
        }
    };
}
