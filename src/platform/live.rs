//! Live events for pages that update themselves: the change log as a stream, filtered per
//! caller.
//!
//! The store broadcasts a [`ChangeEvent`] after every commit (no image, so no personal data).
//! A stream here turns that broadcast into a gap-free sequence in change-log order:
//! - a receiver that falls behind (`Lagged`) reads what it missed from the change log itself
//!   instead of dropping it;
//! - PostgreSQL writers publish after their own commit, so two commits may be announced in the
//!   other order; a position that skips ahead is filled from the change log as well (every
//!   position before a committed one is committed: see `anxin_store::changelog`);
//! - positions already passed on are skipped, so nothing arrives twice.
//!
//! Events read back from the log get their node the way live ones do, from the record's image
//! (for a delete, the last image before it); an image sealed with a shredded key has none.

use std::collections::VecDeque;

use anxin_store::changelog::{self, ChangeEvent, Op, Place};
use anxin_store::{Conn, Env, Row};
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::app::App;

/// Entries read from the change log per catch-up query.
const CATCH_UP_PAGE: i64 = 500;

/// Events committed from the first poll of the stream on that `filter` accepts, in change-log
/// order, none missed.
pub fn stream_for(
    app: &App,
    filter: impl Fn(&ChangeEvent) -> bool + Send + 'static,
) -> impl Stream<Item = ChangeEvent> + Send + 'static {
    stream_from(app, None, filter)
}

/// Events after change-log position `after` (an SSE client's `Last-Event-ID`), then live ones.
pub fn stream_since(
    app: &App,
    after: i64,
    filter: impl Fn(&ChangeEvent) -> bool + Send + 'static,
) -> impl Stream<Item = ChangeEvent> + Send + 'static {
    stream_from(app, Some(after), filter)
}

/// The newest change-log position.
pub async fn current_pos(app: &App) -> anyhow::Result<i64> {
    Ok(app
        .store
        .read(|c, _| c.query_i64("SELECT max(pos) FROM change_log", &[]))
        .await?)
}

struct State<F> {
    app: App,
    rx: broadcast::Receiver<ChangeEvent>,
    /// The last position passed on (or skipped by the filter); `None` until the first poll.
    last: Option<i64>,
    ready: VecDeque<ChangeEvent>,
    /// Resuming from a position: replay the log from there before waiting for anything new.
    replay: bool,
    filter: F,
}

fn stream_from<F>(
    app: &App,
    after: Option<i64>,
    filter: F,
) -> impl Stream<Item = ChangeEvent> + Send + 'static
where
    F: Fn(&ChangeEvent) -> bool + Send + 'static,
{
    // Subscribe now, so nothing committed after this call is missed.
    let state = State {
        app: app.clone(),
        rx: app.store.subscribe(),
        last: after,
        ready: VecDeque::new(),
        replay: after.is_some(),
        filter,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        let ev = next(&mut s).await?;
        Some((ev, s))
    })
}

async fn next<F: Fn(&ChangeEvent) -> bool>(s: &mut State<F>) -> Option<ChangeEvent> {
    loop {
        if let Some(ev) = s.ready.pop_front() {
            s.last = Some(ev.pos);
            if (s.filter)(&ev) {
                return Some(ev);
            }
            continue;
        }
        let last = match s.last {
            Some(l) => l,
            None => match current_pos(&s.app).await {
                Ok(p) => {
                    s.last = Some(p);
                    p
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "live stream cannot read the change log");
                    return None;
                }
            },
        };
        if s.replay {
            s.replay = false;
            if let Err(e) = catch_up(s, last).await {
                tracing::error!(error = %format!("{e:#}"), "live stream replay failed");
                return None;
            }
            continue;
        }
        match s.rx.recv().await {
            Ok(ev) if ev.pos <= last => {}
            Ok(ev) if ev.pos == last + 1 => s.ready.push_back(ev),
            // Skipped ahead (announced out of order) or fell behind: read the log.
            Ok(_) | Err(RecvError::Lagged(_)) => {
                if let Err(e) = catch_up(s, last).await {
                    tracing::error!(error = %format!("{e:#}"), "live stream catch-up failed");
                    return None;
                }
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

/// Queue every entry after `last` that the log holds now.
async fn catch_up<F>(s: &mut State<F>, last: i64) -> anyhow::Result<()> {
    let mut after = last;
    loop {
        let page = s
            .app
            .store
            .read(move |c, env| {
                let rows = changelog::since(c, after, CATCH_UP_PAGE)?;
                rows.iter()
                    .map(|r| event_of(c, env, r))
                    .collect::<anxin_store::Result<Vec<_>>>()
            })
            .await?;
        let n = page.len();
        if let Some(ev) = page.last() {
            after = ev.pos;
        }
        s.ready.extend(page);
        if i64::try_from(n).unwrap_or(0) < CATCH_UP_PAGE {
            return Ok(());
        }
    }
}

fn event_of(c: &mut dyn Conn, env: &Env, r: &Row) -> anxin_store::Result<ChangeEvent> {
    let pos: i64 = r.get("pos")?;
    let kind: String = r.get("kind")?;
    let record_id: Uuid = r.get("record_id")?;
    let op = match r.get::<String>("op")?.as_str() {
        "insert" => Op::Insert,
        "update" => Op::Update,
        _ => Op::Delete,
    };
    let place = if op == Op::Delete {
        let prev = c.query_one(
            "SELECT after, after_ct FROM change_log WHERE kind = $1 AND record_id = $2 AND pos < $3 \
             AND op <> 'delete' ORDER BY pos DESC LIMIT 1",
            &anxin_store::params![kind.clone(), record_id, pos],
        )?;
        match prev {
            Some(p) => place_of_image(c, env, &kind, &p),
            None => Place::default(),
        }
    } else {
        place_of_image(c, env, &kind, r)
    };
    Ok(ChangeEvent {
        pos,
        kind,
        record_id,
        op,
        at: r.get("at")?,
        place,
    })
}

/// Where a logged image sits, the way the store finds it for live events; an image sealed with
/// a shredded key sits nowhere.
fn place_of_image(c: &mut dyn Conn, env: &Env, kind: &str, r: &Row) -> Place {
    let image: Option<serde_json::Value> =
        match r.get::<Option<serde_json::Value>>("after").ok().flatten() {
            Some(j) => Some(j),
            None => r
                .get::<Option<Vec<u8>>>("after_ct")
                .ok()
                .flatten()
                .and_then(|ct| env.keys.open(c, "change_log.after", &ct).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        };
    image.map(|i| Place::of_image(kind, &i)).unwrap_or_default()
}
