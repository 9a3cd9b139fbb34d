//! The pipeline: payloads → parsed readings → one readings-store transaction per batch (dedup,
//! rollups, rule evaluation, rule state, numbered events in the outbox) → alarm writes in the main
//! store (idempotent by event number) → outbox emptied → the caller acknowledges (MQTT `PUBACK`,
//! HTTP answer).
//!
//! Crash safety: the readings, the rule state and the events they produced commit together. If
//! Anxin dies before the alarm write, the events wait in the outbox and [`drain_outbox`] applies
//! them at the next start (and on every tick); if it dies after the alarm write but before the
//! outbox is emptied, applying them again is a no-op, because every alarm remembers the highest
//! event number applied to its device. An MQTT message not yet acknowledged is redelivered by the
//! broker; its `(device, seq)` is already stored, so it is recognised and not evaluated again.

use std::collections::HashMap;
use std::sync::Arc;

use anxin_store::monitor::{self as store_monitor, DeviceInfo, NumberedEvent};
use anxin_store::readings::{DeviceBatch, NewReading};
use anxin_store::WriteCtx;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::app::App;
use crate::monitor::Reject;

/// Values one reading may carry at most.
pub const MAX_VALUES: usize = 32;
/// Readings one message may carry at most (`{"readings": [...]}`).
pub const MAX_READINGS: usize = 100;
/// Bytes one message may have at most.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Where a message came from: an MQTT topic's device code, or a device authenticated over HTTP.
#[derive(Debug, Clone)]
pub enum Source {
    Code(String),
    Device(DeviceInfo),
}

/// One incoming message.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub source: Source,
    pub payload: Vec<u8>,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: how many readings were new and how many were duplicates.
    Stored { fresh: usize, duplicates: usize },
    /// Refused (counted; acknowledged so it does not block the stream).
    Rejected(Reject),
}

/// Parse a payload: `{"seq", "ts", "values"}` or `{"readings": [...]}` of those.
pub fn parse_payload(bytes: &[u8]) -> Result<Vec<NewReading>, Reject> {
    if bytes.len() > MAX_PAYLOAD {
        return Err(Reject::Malformed);
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| Reject::Malformed)?;
    let obj = v.as_object().ok_or(Reject::Malformed)?;
    if let Some(list) = obj.get("readings") {
        if obj.len() != 1 {
            return Err(Reject::Malformed);
        }
        let list = list.as_array().ok_or(Reject::Malformed)?;
        if list.is_empty() || list.len() > MAX_READINGS {
            return Err(Reject::Malformed);
        }
        return list.iter().map(parse_one).collect();
    }
    Ok(vec![parse_one(&v)?])
}

fn parse_one(v: &serde_json::Value) -> Result<NewReading, Reject> {
    let obj = v.as_object().ok_or(Reject::Malformed)?;
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "seq" | "ts" | "values"))
    {
        return Err(Reject::Malformed);
    }
    let seq = obj
        .get("seq")
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| i64::try_from(s).ok())
        .ok_or(Reject::Malformed)?;
    let at = obj
        .get("ts")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or(Reject::Malformed)?;
    let vals = obj
        .get("values")
        .and_then(serde_json::Value::as_object)
        .ok_or(Reject::Malformed)?;
    if vals.is_empty() || vals.len() > MAX_VALUES {
        return Err(Reject::Malformed);
    }
    let mut values = Vec::with_capacity(vals.len());
    for (k, x) in vals {
        let ok_name = !k.is_empty()
            && k.len() <= 40
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let x = x.as_f64().filter(|x| x.is_finite());
        match (ok_name, x) {
            (true, Some(x)) => values.push((k.clone(), x)),
            _ => return Err(Reject::Malformed),
        }
    }
    Ok(NewReading { seq, at, values })
}

/// Look a device up by its topic code, through the cache.
async fn device_by_code(app: &App, code: &str) -> anyhow::Result<Option<DeviceInfo>> {
    if let Some(d) = app.monitor.cached_device(code) {
        return Ok(Some(d));
    }
    let c = code.to_owned();
    let found = app
        .store
        .read(move |conn, _| store_monitor::device_by_code(conn, &c))
        .await?;
    if let Some(d) = &found {
        app.monitor.cache_device(d.clone());
    }
    Ok(found)
}

/// A device's compiled profile, through the cache.
pub async fn profile(
    app: &App,
    id: Uuid,
) -> anyhow::Result<Option<Arc<anxin_domain::rules::Profile>>> {
    if let Some(p) = app.monitor.cached_profile(id) {
        return Ok(Some(p));
    }
    let spec = app
        .store
        .read(move |conn, _| store_monitor::profile_spec(conn, id))
        .await?;
    let Some((spec, _)) = spec else {
        return Ok(None);
    };
    match spec.compile() {
        Ok(p) => {
            let p = Arc::new(p);
            app.monitor.cache_profile(id, p.clone());
            Ok(Some(p))
        }
        Err(e) => {
            tracing::error!(profile = %id, error = %e, "stored profile does not compile; its devices are not evaluated");
            Ok(None)
        }
    }
}

/// Process a batch of messages: one readings transaction, then the alarm writes. Returns one
/// outcome per message, in order. An error means nothing of the batch may be acknowledged
/// (the readings store failed); alarm-write failures are not errors (the outbox keeps the events).
pub async fn process(app: &App, items: Vec<Incoming>) -> anyhow::Result<Vec<Outcome>> {
    let outcomes = store(app, &items).await?;
    flush_alarms(app).await;
    Ok(outcomes)
}

/// [`process`] without waiting for the alarm write: once this returns `Ok`, the batch's
/// readings, rule state and rule events are committed (the events in the outbox and queued for
/// [`flush_alarms`]), so the messages may be acknowledged — a crash from here on loses nothing,
/// the outbox is applied at the next start. The MQTT ingest uses it and writes the alarms beside
/// (`mqtt.rs`), so one batch's alarm commit never delays the next batch's acknowledgements.
pub async fn store(app: &App, items: &[Incoming]) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; items.len()];
    // Per device: its batch, and which message each reading came from.
    let mut order: Vec<Uuid> = Vec::new();
    let mut by_device: HashMap<Uuid, (DeviceBatch, Vec<usize>)> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let device = match &item.source {
            Source::Device(d) => Some(d.clone()),
            Source::Code(code) => device_by_code(app, code).await?,
        };
        let Some(device) = device else {
            outcomes[i] = Some(app.monitor.reject(Reject::UnknownDevice));
            continue;
        };
        if !device.enabled {
            outcomes[i] = Some(app.monitor.reject(Reject::DisabledDevice));
            continue;
        }
        let readings = match parse_payload(&item.payload) {
            Ok(r) => r,
            Err(why) => {
                outcomes[i] = Some(app.monitor.reject(why));
                continue;
            }
        };
        let entry = match by_device.entry(device.id) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let p = match device.profile_id {
                    Some(pid) => profile(app, pid).await?,
                    None => None,
                };
                order.push(device.id);
                v.insert((
                    DeviceBatch {
                        device_id: device.id,
                        profile: p,
                        readings: Vec::new(),
                    },
                    Vec::new(),
                ))
            }
        };
        for r in readings {
            entry.0.readings.push(r);
            entry.1.push(i);
        }
    }
    let mut batches = Vec::with_capacity(order.len());
    let mut origins = Vec::with_capacity(order.len());
    for id in &order {
        if let Some((b, o)) = by_device.remove(id) {
            batches.push(b);
            origins.push(o);
        }
    }
    if !batches.is_empty() {
        // One batch at a time: the events are queued in the order the readings store numbered
        // them (parsing above needs no lock).
        let serial = app.monitor.pipeline_lock.lock().await;
        let now = app.clock.now();
        let readings = app.monitor.readings.clone();
        let applied = std::mem::take(
            &mut *app
                .monitor
                .applied
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let t0 = std::time::Instant::now();
        let result =
            tokio::task::spawn_blocking(move || readings.commit_batch_after(applied, batches, now))
                .await??;
        tracing::debug!(
            commit_us = t0.elapsed().as_micros() as u64,
            "readings commit"
        );
        enqueue(app, result.events);
        drop(serial);
        let mut per_msg: HashMap<usize, (usize, usize)> = HashMap::new();
        for (fresh, origin) in result.fresh.iter().zip(&origins) {
            for (f, i) in fresh.iter().zip(origin) {
                let e = per_msg.entry(*i).or_default();
                if *f {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
        for (i, (fresh, duplicates)) in per_msg {
            app.monitor.count_stored(fresh, duplicates);
            outcomes[i] = Some(Outcome::Stored { fresh, duplicates });
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Rejected(Reject::Malformed)))
        .collect())
}

/// Rule events committed and waiting for the alarm write (see [`flush_alarms`]).
#[derive(Debug, Default)]
pub struct Queued {
    events: Vec<(Uuid, Vec<NumberedEvent>)>,
    /// An alarm write failed: what it held is only in the outbox now, so the next write reads
    /// the outbox instead of the queue (applying in number order; applied ones are skipped).
    resync: bool,
}

/// Queue committed events for the alarm write. Called under `pipeline_lock`, right after the
/// commit that numbered them, so the queue is in number order per device.
fn enqueue(app: &App, events: Vec<(Uuid, Vec<NumberedEvent>)>) {
    if events.is_empty() {
        return;
    }
    app.monitor
        .queued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .events
        .extend(events);
}

/// A device's events of several batches together, each device's in their order.
fn coalesce(events: Vec<(Uuid, Vec<NumberedEvent>)>) -> Vec<(Uuid, Vec<NumberedEvent>)> {
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    let mut out: Vec<(Uuid, Vec<NumberedEvent>)> = Vec::with_capacity(events.len());
    for (d, evs) in events {
        match at.get(&d) {
            Some(&i) => out[i].1.extend(evs),
            None => {
                at.insert(d, out.len());
                out.push((d, evs));
            }
        }
    }
    out
}

/// Write every queued rule event to alarms, in one main-store transaction; returns how many
/// events it applied. One writer at a time (`apply_lock`): whoever queued events and then calls
/// this finds them applied when it returns (by itself or by the call it waited for). Failures
/// are logged; the events stay in the outbox and the next call reads them from there.
pub async fn flush_alarms(app: &App) -> usize {
    let _one = app.monitor.apply_lock.lock().await;
    let (events, resync) = {
        let mut q = app.monitor.queued.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut q.events), std::mem::take(&mut q.resync))
    };
    let events = if resync {
        // Everything queued is in the outbox too (queued only after its commit).
        let readings = app.monitor.readings.clone();
        match tokio::task::spawn_blocking(move || readings.pending_events()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the outbox failed; retrying later");
                app.monitor
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resync = true;
                return 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox task failed; retrying later");
                app.monitor
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resync = true;
                return 0;
            }
        }
    } else {
        coalesce(events)
    };
    let n = events.iter().map(|(_, v)| v.len()).sum();
    let t0 = std::time::Instant::now();
    let r = apply(app, events).await;
    if n > 0 {
        tracing::debug!(
            events = n,
            write_us = t0.elapsed().as_micros() as u64,
            "alarm write"
        );
    }
    match r {
        Some(done) => {
            app.monitor
                .applied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(done);
            n
        }
        None => {
            app.monitor
                .queued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .resync = true;
            0
        }
    }
}

/// Apply rule events to alarms, in one main-store transaction. Returns what was applied
/// (`(device, up to event number)`), for the caller to drop from the outbox; `None` when the
/// write failed (logged; the events stay in the outbox).
async fn apply(app: &App, events: Vec<(Uuid, Vec<NumberedEvent>)>) -> Option<Vec<(Uuid, i64)>> {
    if events.is_empty() {
        return Some(Vec::new());
    }
    // One main-store transaction for the whole batch (one commit, one fsync), set-based: the
    // devices, their applied event numbers and their active alarms read once, new alarms
    // inserted with multi-row statements.
    let r = app
        .store
        .write(WriteCtx::system("monitor.alarms"), move |tx| {
            let m = store_monitor::apply_many(tx, &events)?;
            Ok((m.done, m.raised))
        })
        .await;
    match r {
        Ok((done, raised)) => {
            if !raised.is_empty() {
                tracing::info!(alarms = raised.len(), "alarms raised");
                // Plans with a matching alarm trigger start, off the pipeline's path.
                let app = app.clone();
                tokio::spawn(async move {
                    let ids = with_plans(&app, raised).await;
                    if !ids.is_empty() {
                        crate::ops::triggers::on_alarms_raised(&app, ids).await;
                    }
                });
            }
            Some(done)
        }
        Err(e) => {
            tracing::error!(error = %e, "alarm write failed; events kept for retry");
            None
        }
    }
}

/// The raised alarms some active plan may start on: plans are looked up once per node, device
/// type, rule and alarm type among them (a burst of alarms of one profile at one node is one
/// look-up, not one per alarm), and only the alarms of a kind with candidate plans go on to the
/// triggers (which look each one up again and start what matches). A failed look-up passes
/// every alarm of its kind on, as before.
async fn with_plans(app: &App, raised: Vec<anxin_store::ops::plans::RaisedAlarm>) -> Vec<Uuid> {
    type Kind = (Uuid, String, String, String);
    let mut groups: Vec<(Kind, Vec<anxin_store::ops::plans::RaisedAlarm>)> = Vec::new();
    let mut at: HashMap<Kind, usize> = HashMap::new();
    for a in raised {
        let k = (
            a.node_id,
            a.device_type.clone(),
            a.rule_id.clone(),
            a.alarm_type.clone(),
        );
        match at.get(&k) {
            Some(&i) => groups[i].1.push(a),
            None => {
                at.insert(k.clone(), groups.len());
                groups.push((k, vec![a]));
            }
        }
    }
    let firsts: Vec<anxin_store::ops::plans::RaisedAlarm> =
        groups.iter().map(|(_, v)| v[0].clone()).collect();
    let found = app
        .store
        .read(move |c, _| {
            firsts
                .iter()
                .map(|a| Ok(!anxin_store::ops::plans::plans_for_alarm(c, a)?.is_empty()))
                .collect::<anxin_store::Result<Vec<bool>>>()
        })
        .await;
    let keep = match found {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "plans for raised alarms not looked up; asking per alarm");
            vec![true; groups.len()]
        }
    };
    groups
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .flat_map(|((_, v), _)| v.into_iter().map(|a| a.id))
        .collect()
}

/// Forget applied events now (their own readings transaction).
async fn drop_applied(app: &App) {
    let done = std::mem::take(
        &mut *app
            .monitor
            .applied
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    if done.is_empty() {
        return;
    }
    let readings = app.monitor.readings.clone();
    match tokio::task::spawn_blocking(move || readings.drop_events(done)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "outbox cleanup failed; replay is harmless"),
        Err(e) => tracing::warn!(error = %e, "outbox cleanup task failed"),
    }
}

/// Apply whatever a crash left in the outbox. Safe to run any time (idempotent). Returns how
/// many events the outbox held.
pub async fn drain_outbox(app: &App) -> anyhow::Result<usize> {
    let pending = {
        let _one = app.monitor.apply_lock.lock().await;
        // What is queued is in the outbox too (queued only after its commit): read the outbox.
        {
            let mut q = app.monitor.queued.lock().unwrap_or_else(|e| e.into_inner());
            q.events.clear();
            q.resync = false;
        }
        let readings = app.monitor.readings.clone();
        let pending = match tokio::task::spawn_blocking(move || readings.pending_events()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                app.monitor
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resync = true;
                return Err(e.into());
            }
            Err(e) => {
                app.monitor
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resync = true;
                return Err(e.into());
            }
        };
        let n = pending.iter().map(|(_, v)| v.len()).sum();
        match apply(app, pending).await {
            Some(done) => app
                .monitor
                .applied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(done),
            None => {
                app.monitor
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resync = true;
            }
        }
        n
    };
    drop_applied(app).await;
    Ok(pending)
}

/// Time passes: tick every device's rules (silence rules, sustained rules completing with time)
/// at the app clock's now, and apply the events. Returns how many events it produced.
pub async fn tick(app: &App) -> anyhow::Result<usize> {
    drain_outbox(app).await?;
    let devices = app
        .store
        .read(|conn, _| store_monitor::profiled_devices(conn))
        .await?;
    let mut with_profiles = Vec::with_capacity(devices.len());
    for (d, p) in devices {
        if let Some(p) = profile(app, p).await? {
            with_profiles.push((d, p));
        }
    }
    let n = {
        let _serial = app.monitor.pipeline_lock.lock().await;
        let now = app.clock.now();
        let readings = app.monitor.readings.clone();
        let events =
            tokio::task::spawn_blocking(move || readings.tick(with_profiles, now)).await??;
        let n = events.iter().map(|(_, v)| v.len()).sum();
        enqueue(app, events);
        n
    };
    flush_alarms(app).await;
    drop_applied(app).await;
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payloads_single_and_batch() {
        let r = parse_payload(br#"{"seq": 7, "ts": "2026-07-12T21:03:00+08:00", "values": {"level": 3.5, "t_2": -1}}"#)
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].seq, 7);
        assert_eq!(r[0].at.to_rfc3339(), "2026-07-12T13:03:00+00:00");
        assert_eq!(r[0].values.len(), 2);
        let b = parse_payload(
            br#"{"readings": [{"seq": 1, "ts": "2026-07-12T13:00:00Z", "values": {"a": 1}},
                              {"seq": 2, "ts": "2026-07-12T13:00:01Z", "values": {"a": 2}}]}"#,
        )
        .unwrap();
        assert_eq!(b.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let many: serde_json::Map<String, serde_json::Value> = (0..33)
            .map(|i| (format!("m{i}"), serde_json::json!(1)))
            .collect();
        let too_many = serde_json::json!({"seq": 1, "ts": "2026-07-12T13:00:00Z", "values": many});
        for bad in [
            &b"not json"[..],
            br#"[1, 2]"#,
            br#"{"seq": 1, "ts": "2026-07-12T13:00:00Z"}"#,
            br#"{"seq": 1, "ts": "2026-07-12 13:00", "values": {"a": 1}}"#,
            br#"{"seq": 18446744073709551615, "ts": "2026-07-12T13:00:00Z", "values": {"a": 1}}"#,
            br#"{"seq": 1, "ts": "2026-07-12T13:00:00Z", "values": {"A": 1}}"#,
            br#"{"seq": 1, "ts": "2026-07-12T13:00:00Z", "values": {"a": null}}"#,
            br#"{"seq": 1, "ts": "2026-07-12T13:00:00Z", "values": {"a": 1}, "extra": true}"#,
            br#"{"readings": []}"#,
            too_many.to_string().as_bytes(),
        ] {
            assert_eq!(
                parse_payload(bad),
                Err(Reject::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn topic_codes() {
        use crate::monitor::mqtt::topic_code;
        assert_eq!(
            topic_code("anxin/v1/devices/jjq-001/readings"),
            Some("jjq-001")
        );
        assert_eq!(topic_code("anxin/v1/devices//readings"), None);
        assert_eq!(topic_code("anxin/v1/devices/a/b/readings"), None);
        assert_eq!(topic_code("other/v1/devices/a/readings"), None);
    }
}
