//! The reservation rush (owner: rush): reservations are queued to one writer that commits them
//! in batches — one transaction and one fsync for many requests — and answers each request only
//! after its batch is committed, so an acknowledged reservation survives a crash.
//!
//! - **Batched** (`campaigns.batch = true`, the default): [`Rush::reserve`] sends the request
//!   through a channel to one writer task (started on first use). The writer takes whatever is
//!   queued, up to `campaigns.batch_max`; when that is only a few requests it waits at most
//!   `campaigns.batch_wait_us` for more. It runs [`campaigns::reserve_many`] for the whole batch
//!   inside ONE store write (`Store::write`), and once that has committed answers each request
//!   through its oneshot. While a batch commits, the next one queues up: under a rush a batch is
//!   as large as the number of requests that arrived during one commit.
//! - **Naive** (`campaigns.batch = false`): one transaction and one commit per request, with
//!   [`Store::write_alone`]: on SQLite the store's writer otherwise group-commits concurrent
//!   writes (each in a savepoint of one transaction, one fsync for all), which would let the naive
//!   side share commits; a write that runs alone gets a `BEGIN … COMMIT` (and fsync) of its own.
//!   On PostgreSQL every write is its own transaction anyway. Same endpoint, same store, same
//!   durability, same `reserve_many` (with one request): the benchmark's anchor.
//!
//! Durability is the store's on both sides: SQLite commits with `synchronous=FULL` (WAL),
//! PostgreSQL with its `synchronous_commit` (on by default).
//!
//! **Whole-batch failure**: if the batch's write fails (an error of `reserve_many` itself, a
//! failed commit), nothing of it was acknowledged; each of its requests is then retried alone, so
//! one poisonous request cannot fail hundreds of others. The retry is safe because reserving is
//! idempotent per household (a household that already holds a reservation gets it back), so even
//! a commit whose outcome was unknown cannot give a household a second unit.
//!
//! **Who wrote it**: the change log stamps one actor per transaction, and a batch carries many
//! actors. A batch of one writes as its requester, exactly as the naive side; a larger batch
//! writes under a system context whose request id names the batch (`rush:<first request id>+N`),
//! and each reservation row records its own actor and whether it was made on the household's
//! behalf (代办) — `ReserveRequest::actor`/`on_behalf`, stored by `reserve_many` — so the row's
//! after-image in the change log still says who reserved.
//!
//! **No hot state in memory**: correctness rests on the database alone (the campaign's guarded
//! counter and the one-reservation-per-household unique index), so two servers on one PostgreSQL
//! stay correct. A memory short-cut for "sold out" was not added: a household that already holds
//! a reservation must get it back after the stock is gone (an idempotent retry), and a worker may
//! add stock, so a cached refusal could be wrong; refusals cost two indexed reads inside the
//! batch and no write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anxin_store::supplies::campaigns::{self, ReserveRequest, Reserved};
use anxin_store::tx::WriteCtx;
use anxin_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::app::App;

/// Requests queued for the writer before callers wait to enqueue (back-pressure).
const QUEUE: usize = 16_384;

type Answer = Result<Reserved, StoreError>;

struct Job {
    req: ReserveRequest,
    request_id: String,
    done: oneshot::Sender<Answer>,
}

/// How the writer batches, from `campaigns.*` (rush settings).
#[derive(Debug, Clone, Copy)]
struct Settings {
    batch_max: usize,
    wait: Duration,
}

/// Counters of the rush writer (what the benchmark reports: batches and their mean size).
#[derive(Debug, Default)]
pub struct RushStats {
    pub batches: AtomicU64,
    pub requests: AtomicU64,
    /// Batches whose write failed as a whole and were retried request by request.
    pub split: AtomicU64,
}

/// The rush writer of one app.
#[derive(Debug, Default)]
pub struct Rush {
    queue: OnceLock<mpsc::Sender<Job>>,
    stats: Arc<RushStats>,
}

impl Rush {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &RushStats {
        &self.stats
    }

    /// Reserve for `req`; answers once the reservation is committed (or refused). With
    /// `campaigns.batch` (the default) the request joins the writer's next batch; without, it is
    /// one transaction of its own.
    pub async fn reserve(&self, app: &App, req: ReserveRequest, request_id: String) -> Answer {
        let cfg = &app.config.campaigns;
        if !cfg.batch {
            return reserve_alone(&app.store, req, request_id).await;
        }
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let settings = Settings {
                batch_max: cfg.batch_max.max(1),
                wait: Duration::from_micros(cfg.batch_wait_us),
            };
            tokio::spawn(writer(app.store.clone(), rx, settings, self.stats.clone()));
            tx
        });
        let (done, answer) = oneshot::channel();
        queue
            .send(Job {
                req,
                request_id,
                done,
            })
            .await
            .map_err(|_| StoreError::Unavailable("reservation writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("reservation writer stopped".into()))?
    }
}

/// One request, one transaction and one commit of its own (`Store::write_alone`: on SQLite the
/// store's writer does not group it with other writes): the naive side, and the retry of a
/// failed batch.
async fn reserve_alone(store: &Store, req: ReserveRequest, request_id: String) -> Answer {
    let ctx = WriteCtx::by(req.actor, request_id);
    let mut out = store
        .write_alone(ctx, move |tx| campaigns::reserve_many(tx, &[req]))
        .await?;
    out.pop()
        .unwrap_or_else(|| Err(StoreError::Backend("reserve_many: no answer".into())))
}

/// The one writer: batches until every sender is gone (the app is dropped).
async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    settings: Settings,
    stats: Arc<RushStats>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(settings.batch_max);
    loop {
        let Some(first) = rx.recv().await else { return };
        batch.push(first);
        take_queued(&mut rx, &mut batch, settings.batch_max);
        // A short queue: wait a little for the requests that are on their way, so a trickle of
        // requests still shares commits. A long one is committed at once.
        if !settings.wait.is_zero() && batch.len() < (settings.batch_max / 8).max(2) {
            let deadline = tokio::time::Instant::now() + settings.wait;
            while batch.len() < settings.batch_max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(j)) => {
                        batch.push(j);
                        take_queued(&mut rx, &mut batch, settings.batch_max);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        commit_batch(&store, std::mem::take(&mut batch), &stats).await;
    }
}

fn take_queued(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

/// Write one batch in one transaction and answer each of its requests after the commit.
async fn commit_batch(store: &Store, jobs: Vec<Job>, stats: &RushStats) {
    // Requests whose caller has gone (connection closed) are still reserved: the client may
    // retry with the same household and gets the reservation back.
    let ctx = match jobs.as_slice() {
        [one] => WriteCtx::by(one.req.actor, one.request_id.clone()),
        [first, ..] => WriteCtx::system(format!("rush:{}+{}", first.request_id, jobs.len() - 1)),
        [] => return,
    };
    let reqs: Vec<ReserveRequest> = jobs.iter().map(|j| j.req.clone()).collect();
    let n = reqs.len();
    let started = std::time::Instant::now();
    match store
        .write(ctx, move |tx| campaigns::reserve_many(tx, &reqs))
        .await
    {
        Ok(answers) if answers.len() == n => {
            tracing::debug!(
                rush.batch = n,
                rush.ms = started.elapsed().as_secs_f64() * 1e3,
                "reservation batch committed"
            );
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.done.send(answer);
            }
        }
        Ok(answers) => {
            // reserve_many broke its contract; the batch committed, so its answers cannot be
            // matched to requests: retrying alone answers each (reservations are idempotent).
            tracing::error!(
                rush.batch = n,
                answers = answers.len(),
                "reserve_many answered the wrong number of requests"
            );
            retry_alone(store, jobs, stats).await;
        }
        Err(e) if n == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.done.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, rush.batch = n, "reservation batch failed; retrying its requests one by one");
            retry_alone(store, jobs, stats).await;
        }
    }
}

async fn retry_alone(store: &Store, jobs: Vec<Job>, stats: &RushStats) {
    stats.split.fetch_add(1, Ordering::Relaxed);
    for job in jobs {
        let answer = reserve_alone(store, job.req, job.request_id).await;
        let _ = job.done.send(answer);
    }
}
