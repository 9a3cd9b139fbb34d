//! Background jobs: the registry of handlers, the workers, the recurring schedules.
//!
//! Jobs are rows in the database (`anxin_store::jobs`): they survive restarts, and several
//! server processes share them, each job taken by one worker under a lease. A worker renews the
//! lease while its handler runs; if the process dies, another worker takes the job over when the
//! lease runs out. A handler must therefore be safe to run again (idempotent), and its errors
//! are kept in the job row: no personal data in them.
//!
//! Recurring work (retention every night at 03:00 Asia/Shanghai) is scheduled by enqueuing the
//! next occurrence with a unique key naming it (`retention.purge@2026-11-23T03:00`): every
//! process's scheduler tries, the key lets exactly one row in.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use anxin_domain::SHANGHAI;
use anxin_store::jobs::{self as store_jobs, FailOutcome, Job};
use anxin_store::WriteCtx;
use anyhow::Context;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::App;
use crate::platform::metrics::KindLabels;

pub type HandlerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
pub type Handler = Arc<dyn Fn(App, Job) -> HandlerFuture + Send + Sync>;

/// A job enqueued every day at a local (Asia/Shanghai) time.
#[derive(Debug, Clone)]
pub struct Daily {
    pub kind: String,
    pub at: NaiveTime,
    pub payload: serde_json::Value,
}

/// The handlers and schedules of this process, and the workers' wake-up call. Lives in [`App`].
pub struct Jobs {
    handlers: RwLock<HashMap<String, Handler>>,
    daily: RwLock<Vec<Daily>>,
    /// The occurrence each schedule last enqueued, so the scheduler writes once per occurrence.
    scheduled: Mutex<HashMap<String, String>>,
    kick: tokio::sync::Notify,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<String> = self
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        kinds.sort();
        f.debug_struct("Jobs")
            .field("kinds", &kinds)
            .finish_non_exhaustive()
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    /// No handlers, no schedules.
    pub fn new() -> Self {
        Self {
            handlers: RwLock::new(HashMap::new()),
            daily: RwLock::new(Vec::new()),
            scheduled: Mutex::new(HashMap::new()),
            kick: tokio::sync::Notify::new(),
        }
    }

    /// The platform's own jobs: retention, nightly at 03:00; campaign notices.
    pub fn standard() -> Self {
        let j = Self::new();
        crate::platform::retention::register(&j);
        crate::supplies::notices::register(&j);
        j
    }

    /// Handle jobs of `kind` with `f`. A later registration of the same kind replaces it.
    pub fn register<F, Fut>(&self, kind: &str, f: F)
    where
        F: Fn(App, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |app, job| Box::pin(f(app, job)));
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_owned(), h);
    }

    /// Enqueue a `kind` job every day at `hour:minute` Asia/Shanghai.
    pub fn daily(
        &self,
        kind: &str,
        hour: u32,
        minute: u32,
        payload: serde_json::Value,
    ) -> anyhow::Result<()> {
        let at = NaiveTime::from_hms_opt(hour, minute, 0)
            .context("a daily schedule needs a valid time of day")?;
        self.daily
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Daily {
                kind: kind.to_owned(),
                at,
                payload,
            });
        Ok(())
    }

    fn handler(&self, kind: &str) -> Option<Handler> {
        self.handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }

    /// Wake an idle worker: a job is due now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }
}

/// Add a job and wake a worker. `None` when `unique_key` names a job that exists already.
pub async fn enqueue(
    app: &App,
    kind: &str,
    payload: serde_json::Value,
    run_at: DateTime<Utc>,
    unique_key: Option<&str>,
) -> anyhow::Result<Option<Uuid>> {
    let kind = kind.to_owned();
    let key = unique_key.map(str::to_owned);
    let id = app
        .store
        .write(
            WriteCtx::system(format!("jobs.enqueue.{kind}")),
            move |tx| store_jobs::enqueue(tx, &kind, &payload, run_at, key.as_deref()),
        )
        .await?;
    if id.is_some() && run_at <= app.clock.now() {
        app.jobs.kick();
    }
    Ok(id)
}

/// The next `at` (Asia/Shanghai) strictly after `now`.
pub fn next_daily(now: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let local = now.with_timezone(&SHANGHAI);
    let mut day = local.date_naive();
    loop {
        // A fixed offset maps every local time to exactly one instant.
        if let Some(t) = SHANGHAI.from_local_datetime(&day.and_time(at)).single() {
            let t = t.with_timezone(&Utc);
            if t > now {
                return t;
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
}

/// Enqueue the next occurrence of every schedule not enqueued yet. Returns how many this call
/// added (another process may have added the rest).
pub async fn schedule_tick(app: &App) -> anyhow::Result<usize> {
    let now = app.clock.now();
    let daily = app
        .jobs
        .daily
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut added = 0;
    for d in daily {
        let at = next_daily(now, d.at);
        let key = format!(
            "{}@{}",
            d.kind,
            at.with_timezone(&SHANGHAI).format("%Y-%m-%dT%H:%M")
        );
        let known = app
            .jobs
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&d.kind)
            .is_some_and(|k| *k == key);
        if known {
            continue;
        }
        if enqueue(app, &d.kind, d.payload.clone(), at, Some(&key))
            .await?
            .is_some()
        {
            added += 1;
            tracing::info!(job.kind = %d.kind, job.run_at = %at, "scheduled");
        }
        app.jobs
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(d.kind.clone(), key);
    }
    Ok(added)
}

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Done,
    Retry(DateTime<Utc>),
    Failed,
    /// The lease ran out while the handler ran and another worker took the job.
    LeaseLost,
}

fn lease(app: &App) -> Duration {
    Duration::seconds(app.config.jobs.lease_seconds.max(1))
}

/// Claim and run one due job as `owner`. `None` when nothing is due.
pub async fn run_one(app: &App, owner: &str) -> anyhow::Result<Option<(Job, RunOutcome)>> {
    let Some(job) = store_jobs::claim(&app.store, owner, app.clock.now(), lease(app)).await? else {
        return Ok(None);
    };
    let result = match app.jobs.handler(&job.kind) {
        None => Err(format!(
            "no handler for job kind {} in this process",
            job.kind
        )),
        Some(h) => run_handler(app, owner, &job, h).await,
    };
    app.metrics
        .jobs_run
        .get_or_create(&KindLabels {
            kind: job.kind.clone(),
        })
        .inc();
    let now = app.clock.now();
    let outcome = match result {
        Ok(()) => {
            if store_jobs::complete(&app.store, job.id, owner, now).await? {
                RunOutcome::Done
            } else {
                RunOutcome::LeaseLost
            }
        }
        Err(why) => match store_jobs::fail(&app.store, job.id, owner, &why, now).await? {
            FailOutcome::Retry(at) => RunOutcome::Retry(at),
            FailOutcome::Failed => RunOutcome::Failed,
            FailOutcome::LeaseLost => RunOutcome::LeaseLost,
        },
    };
    match &outcome {
        RunOutcome::Done => {
            tracing::info!(job.id = %job.id, job.kind = %job.kind, attempts = job.attempts, "job done")
        }
        other => {
            tracing::warn!(job.id = %job.id, job.kind = %job.kind, attempts = job.attempts, outcome = ?other, "job did not finish")
        }
    }
    Ok(Some((job, outcome)))
}

/// Run the handler in its own task (a panic fails the job, not the worker), renewing the lease
/// every third of its length while it runs.
async fn run_handler(app: &App, owner: &str, job: &Job, h: Handler) -> Result<(), String> {
    let mut task = tokio::spawn(h(app.clone(), job.clone()));
    let lease = lease(app);
    let beat = StdDuration::from_millis(
        u64::try_from(lease.num_milliseconds() / 3)
            .unwrap_or(1000)
            .max(100),
    );
    loop {
        tokio::select! {
            r = &mut task => {
                return match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(e) if e.is_panic() => Err("the handler panicked".into()),
                    Err(_) => Err("the handler was cancelled".into()),
                };
            }
            () = tokio::time::sleep(beat) => {
                let until = app.clock.now() + lease;
                match store_jobs::extend(&app.store, job.id, owner, until).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job.id = %job.id, "lease lost while running"),
                    Err(e) => tracing::error!(job.id = %job.id, error = %e, "renewing the lease failed"),
                }
            }
        }
    }
}

/// A worker: runs due jobs one after another; when none is due it waits for a kick or
/// `jobs.poll_ms`. Stops when `shutdown` turns true (after the job in hand).
pub async fn run_worker(app: App, owner: String, mut shutdown: watch::Receiver<bool>) {
    let poll = StdDuration::from_millis(app.config.jobs.poll_ms.max(10));
    loop {
        if *shutdown.borrow() {
            break;
        }
        match run_one(&app, &owner).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(worker = %owner, error = %format!("{e:#}"), "job worker step failed")
            }
        }
        tokio::select! {
            () = app.jobs.kick.notified() => {}
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The scheduler: enqueues the next occurrence of each schedule, checking every `jobs.poll_ms`
/// (cheap: it writes only when an occurrence is new to this process).
pub async fn run_scheduler(app: App, mut shutdown: watch::Receiver<bool>) {
    let poll = StdDuration::from_millis(app.config.jobs.poll_ms.max(10));
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = schedule_tick(&app).await {
            tracing::error!(error = %format!("{e:#}"), "scheduling failed");
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The running background services of one process.
pub struct Background {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// A name for this process's workers in lease columns: origin, a random part, the worker number.
fn owner_prefix(app: &App) -> String {
    let id = Uuid::now_v7().simple().to_string();
    format!(
        "{}:{}:{}",
        app.config.database.origin,
        std::process::id(),
        &id[id.len() - 8..]
    )
}

/// Start the notification dispatcher, `jobs.workers` job workers and the scheduler.
pub fn start(app: &App) -> Background {
    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    app.notifier.log_routes();
    tasks.push(tokio::spawn(crate::platform::notify::run_dispatcher(
        app.clone(),
        rx.clone(),
    )));
    let prefix = owner_prefix(app);
    for i in 0..app.config.jobs.workers.max(1) {
        tasks.push(tokio::spawn(run_worker(
            app.clone(),
            format!("{prefix}:w{i}"),
            rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(run_scheduler(app.clone(), rx)));
    Background {
        shutdown: tx,
        tasks,
    }
}

impl Background {
    /// Ask every task to stop after its current step, and wait for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
