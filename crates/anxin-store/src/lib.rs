//! Anxin's storage: SQLite or PostgreSQL behind one interface, with the change log, envelope
//! encryption of personal data and caller-scoped area stores.
//!
//! Layout:
//! - engine: [`value`], [`conn`] (dialect), `sqlite` (single writer, group commit), `pg`, `pool`,
//!   [`migrate`];
//! - cross-cutting: [`tx`] (writes that log themselves), [`changelog`], [`keys`];
//! - areas: one module per area of the domain, each a trait taking the caller's scope.
//!
//! The backend is picked from the URL: `sqlite://path` (or a bare path) or `postgres://…`.

pub mod accounts;
pub mod audit;
pub mod backup;
mod bulk;
pub mod changelog;
pub mod conn;
pub mod error;
pub mod hazards;
pub mod jobs;
pub mod keys;
pub mod lists;
pub mod maps;
pub mod migrate;
pub mod monitor;
pub mod notify;
pub mod ops;
pub mod people;
mod pg;
pub mod places;
mod pool;
pub mod readings;
pub mod resident_channels;
pub mod retention;
pub mod scope;
mod sqlite;
pub mod supplies;
pub mod tree;
pub mod tx;
pub mod value;
pub mod warnings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anxin_crypto::{Algorithm, KeyRing};
use anxin_domain::{Clock, IdGen};
use tokio::sync::broadcast;

pub use changelog::{ChangeEvent, Op};
pub use conn::{Conn, Dialect};
pub use error::{Result, StoreError};
pub use keys::Keys;
pub use tx::{Tx, WriteCtx};
pub use value::{FromValue, Row, Value};

/// What every read and write may use: time, identifiers, keys, this node's name, live events.
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub keys: Keys,
    /// The algorithm of new data keys (the bulk paths make them outside `Keys`).
    pub data_key_alg: Algorithm,
    /// This node's name in change-log origins (a community node later syncs with the city's).
    pub origin: String,
    pub events: broadcast::Sender<ChangeEvent>,
    /// Expanded node reaches per set of grants, dropped on any tree change (people lists).
    pub reach_cache: scope::ReachCache,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

pub struct StoreOptions {
    /// `sqlite://./data/anxin.db`, a plain path, or `postgres://…`.
    pub url: String,
    pub keyring: KeyRing,
    pub algorithm: Algorithm,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub origin: String,
    /// PostgreSQL connections (SQLite has one writer and a few readers).
    pub max_connections: usize,
    /// Stop after this schema version (upgrade tests); `None` applies all.
    pub migrate_upto: Option<i64>,
}

enum Engine {
    Sqlite(sqlite::SqliteEngine),
    Postgres(pg::PgEngine),
}

struct Inner {
    engine: Engine,
    env: Arc<Env>,
    /// Bumped after every committed write that changed sessions, person links, users, grants,
    /// API tokens or people: the session cache's generation (rush).
    auth_gen: std::sync::atomic::AtomicU64,
}

/// The store. Cheap to clone; every clone shares the engine.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.dialect().name())
    }
}

const POOL_WAIT: Duration = Duration::from_secs(30);

/// Where a `sqlite:` URL points.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let p = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Some(PathBuf::from(p))
}

impl Store {
    /// Open the database, apply migrations and load keys. Blocking: call at start-up, or from
    /// `spawn_blocking`.
    pub fn open(opts: StoreOptions) -> Result<Store> {
        let (events, _) = broadcast::channel(4096);
        let StoreOptions {
            url,
            keyring,
            algorithm,
            clock,
            ids,
            origin,
            max_connections,
            migrate_upto,
        } = opts;
        let now = clock.now();
        let mut keys_slot = None;
        let engine = match sqlite_path(&url) {
            Some(path) => {
                let tx_events = events.clone();
                let e = sqlite::SqliteEngine::open(
                    &path,
                    move |evs| {
                        for ev in evs {
                            let _ = tx_events.send(ev);
                        }
                    },
                    |conn| {
                        migrate::migrate(conn, migrate_upto)?;
                        keys_slot = Some(Keys::bootstrap(
                            conn,
                            keyring,
                            algorithm,
                            now,
                            ids.new_id(),
                        )?);
                        Ok(())
                    },
                )?;
                Engine::Sqlite(e)
            }
            None => {
                let e = pg::PgEngine::open(&url, max_connections)?;
                {
                    let mut entry = e.pool.get(POOL_WAIT)?;
                    let pg::PgEntry { client, stmts } = &mut *entry;
                    let mut c = pg::PgConn { client, stmts };
                    migrate::migrate(&mut c, migrate_upto)?;
                    keys_slot = Some(Keys::bootstrap(
                        &mut c,
                        keyring,
                        algorithm,
                        now,
                        ids.new_id(),
                    )?);
                }
                Engine::Postgres(e)
            }
        };
        let keys = keys_slot.ok_or_else(|| StoreError::Backend("keys not loaded".into()))?;
        let env = Arc::new(Env {
            clock,
            ids,
            keys,
            data_key_alg: algorithm,
            origin,
            events,
            reach_cache: scope::ReachCache::default(),
        });
        Ok(Store {
            inner: Arc::new(Inner {
                engine,
                env,
                auth_gen: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner.engine {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn env(&self) -> &Arc<Env> {
        &self.inner.env
    }

    /// The SQLite file, when this is a SQLite store.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        match &self.inner.engine {
            Engine::Sqlite(e) => Some(&e.path),
            Engine::Postgres(_) => None,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.env.events.subscribe()
    }

    /// Run `f` on a reader connection, blocking the current thread.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&mut dyn Conn, &Env) -> Result<T>) -> Result<T> {
        let env = &self.inner.env;
        match &self.inner.engine {
            Engine::Sqlite(e) => {
                let c = e.readers.get(POOL_WAIT)?;
                f(&mut sqlite::SqliteConn(&c), env)
            }
            Engine::Postgres(e) => {
                let mut entry = e.pool.get(POOL_WAIT)?;
                let pg::PgEntry { client, stmts } = &mut *entry;
                let r = f(&mut pg::PgConn { client, stmts }, env);
                if entry.client.is_closed() {
                    entry.discard();
                }
                r
            }
        }
    }

    /// Run `f` on a reader connection.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn, &Env) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || s.read_blocking(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task: {e}")))?
    }

    /// Run `f` as one write transaction, blocking the current thread. Answered only once the
    /// transaction has committed.
    pub fn write_blocking<T: Send + 'static>(
        &self,
        ctx: WriteCtx,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write_with(ctx, false, f)
    }

    // Writes that run alone and the auth generation (rush).
    /// [`Store::write_blocking`], but never sharing its transaction: on SQLite the writer thread
    /// does not group it with other queued writes (one `BEGIN … COMMIT`, one fsync, for this
    /// write alone); on PostgreSQL every write is its own transaction anyway.
    pub fn write_alone_blocking<T: Send + 'static>(
        &self,
        ctx: WriteCtx,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write_with(ctx, true, f)
    }

    /// [`Store::write_alone_blocking`] on the blocking pool.
    pub async fn write_alone<T: Send + 'static>(
        &self,
        ctx: WriteCtx,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || s.write_alone_blocking(ctx, f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("write task: {e}")))?
    }

    /// A counter bumped after every committed write of this store that ended or changed a
    /// session, changed a person link, or changed users, grants, API tokens or people (the
    /// once-a-minute session touch and new sessions do not count): what a cache of resolved
    /// sessions compares to know its entries are still current in this process.
    pub fn auth_generation(&self) -> u64 {
        self.inner
            .auth_gen
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump_auth(&self, touched: bool) {
        if touched {
            self.inner
                .auth_gen
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    fn write_with<T: Send + 'static>(
        &self,
        ctx: WriteCtx,
        alone: bool,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let env = self.inner.env.clone();
        match &self.inner.engine {
            Engine::Sqlite(e) => {
                let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Result<(T, bool)>>(1);
                let job: sqlite::WriteJob = Box::new(move |conn| {
                    let mut tx = Tx::new(conn, &ctx, &env);
                    let res = f(&mut tx).and_then(|v| {
                        let auth = tx.touches_auth();
                        tx.finish().map(|evs| ((v, auth), evs))
                    });
                    match res {
                        Ok((v, events)) => sqlite::JobOutcome {
                            ok: true,
                            events,
                            finish: Box::new(move |r| {
                                let _ = done_tx.send(r.map(|()| v));
                            }),
                        },
                        Err(err) => sqlite::JobOutcome {
                            ok: false,
                            events: Vec::new(),
                            finish: Box::new(move |_| {
                                let _ = done_tx.send(Err(err));
                            }),
                        },
                    }
                });
                if alone {
                    e.writer.send_alone(job)
                } else {
                    e.writer.send(job)
                }
                .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
                let (v, auth) = done_rx
                    .recv()
                    .map_err(|_| StoreError::Unavailable("write aborted".into()))??;
                self.bump_auth(auth);
                Ok(v)
            }
            Engine::Postgres(e) => {
                let mut entry = e.pool.get(POOL_WAIT)?;
                let result = (|| -> Result<(T, bool, Vec<ChangeEvent>)> {
                    let pg::PgEntry { client, stmts } = &mut *entry;
                    let mut t = client.transaction()?;
                    let (v, auth, events) = {
                        let mut c = pg::PgConn {
                            client: &mut t,
                            stmts,
                        };
                        let mut tx = Tx::new(&mut c, &ctx, &env);
                        let v = f(&mut tx)?;
                        let auth = tx.touches_auth();
                        (v, auth, tx.finish()?)
                    };
                    t.commit()?;
                    Ok((v, auth, events))
                })();
                if entry.client.is_closed() {
                    entry.discard();
                }
                let (v, auth, events) = result?;
                self.bump_auth(auth);
                for ev in events {
                    let _ = env.events.send(ev);
                }
                Ok(v)
            }
        }
    }

    // end of writes that run alone and the auth generation (rush)

    /// Re-wrap every data key under the current master key; returns how many were re-wrapped.
    pub fn rotate_keys_blocking(&self) -> Result<u64> {
        self.write_blocking(WriteCtx::system("rotate-key"), |tx| {
            let env = tx.env();
            env.keys.rotate(tx.conn())
        })
    }

    /// Run `f` as one write transaction.
    pub async fn write<T: Send + 'static>(
        &self,
        ctx: WriteCtx,
        f: impl FnOnce(&mut Tx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || s.write_blocking(ctx, f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("write task: {e}")))?
    }
}
