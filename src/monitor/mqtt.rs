//! The MQTT ingest: one subscriber with a persistent session (`clean_session = false`, a fixed
//! client id), QoS 1 and manual acknowledgements. A message is acknowledged only after its batch
//! is committed to the readings store — readings, rule state and the rule events for the alarms,
//! in one transaction (or, refused, once counted) — so a crash of Anxin before that makes the
//! broker deliver it again, and the pipeline recognises the redelivery by `(device, seq)`. The
//! alarm write follows on its own task, off the acknowledgement path: its events are already
//! durable in the outbox, applied at the next start if Anxin dies first.
//!
//! Topic: `anxin/v1/devices/{code}/readings` (a shared subscription `$share/{group}/…` works the
//! same: the device code is the level before `readings`).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};

use crate::app::App;
use crate::monitor::config::MqttConfig;
use crate::monitor::pipeline::{self, Incoming, Source};
use crate::monitor::Reject;

/// The device code in a readings topic, if the topic is one.
pub fn topic_code(topic: &str) -> Option<&str> {
    let mut parts = topic.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("anxin"), Some("v1"), Some("devices"), Some(code), Some("readings"), None)
            if !code.is_empty() =>
        {
            Some(code)
        }
        _ => None,
    }
}

/// The running subscriber.
pub struct Running {
    pub task: tokio::task::JoinHandle<()>,
    /// Turns true once the broker has confirmed the subscription (or resumed the session).
    pub ready: watch::Receiver<bool>,
}

/// Connect and consume until `stop` turns true.
pub fn start(app: App, cfg: MqttConfig, stop: watch::Receiver<bool>) -> Running {
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(Duration::from_secs(cfg.keep_alive_seconds.max(5)));
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    opts.set_inflight(cfg.max_inflight.max(1));
    opts.set_max_packet_size(pipeline::MAX_PAYLOAD + 1024, pipeline::MAX_PAYLOAD + 1024);
    if !cfg.username.is_empty() {
        opts.set_credentials(
            cfg.username.clone(),
            cfg.password.clone().unwrap_or_default(),
        );
    }
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let batch_max = app.config.monitor.batch_max.max(1);
    // The event loop hands publishes to the processor and never waits for it: it must keep
    // polling so the processor's acknowledgements go out (a bounded hand-over deadlocks once the
    // request queue of acks fills). The queue is bounded by the broker instead: it sends at most
    // its inflight window (Mosquitto `max_inflight_messages`) of unacknowledged QoS 1 messages,
    // and Anxin acknowledges only after the commit.
    let (tx, rx) = mpsc::unbounded_channel::<Publish>();
    let processor = tokio::spawn(processor(app, client.clone(), rx, batch_max));
    let (ready_tx, ready) = watch::channel(false);
    let task = tokio::spawn(event_loop(
        client, eventloop, cfg, tx, stop, processor, ready_tx,
    ));
    Running { task, ready }
}

async fn event_loop(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    cfg: MqttConfig,
    tx: mpsc::UnboundedSender<Publish>,
    mut stop: watch::Receiver<bool>,
    processor: tokio::task::JoinHandle<()>,
    ready: watch::Sender<bool>,
) {
    loop {
        let ev = tokio::select! {
            _ = stop.changed() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(session_present = ack.session_present, "mqtt connected");
                if ack.session_present {
                    let _ = ready.send(true);
                } else {
                    // A new session: (re)subscribe. With a kept session the broker remembers.
                    let c = client.clone();
                    let topic = cfg.topic.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(topic, QoS::AtLeastOnce).await {
                            tracing::error!(error = %e, "mqtt subscribe failed");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = ready.send(true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "mqtt connection lost; reconnecting");
                tokio::select! {
                    _ = stop.changed() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    drop(tx);
    let _ = processor.await;
    let _ = client.disconnect().await;
    // Let the disconnect leave before the loop is dropped.
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}

async fn processor(
    app: App,
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<Publish>,
    batch_max: usize,
) {
    // The alarm writer: wakes after each committed batch and writes whatever rule events are
    // queued (several batches' in one main-store transaction when it falls behind). The
    // acknowledgements do not wait for it: the events are committed in the outbox with the
    // readings, so a crash before the alarm write loses nothing (the outbox is applied at start).
    let (wake, mut woken) = mpsc::channel::<()>(1);
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            while woken.recv().await.is_some() {
                pipeline::flush_alarms(&app).await;
            }
            pipeline::flush_alarms(&app).await;
        })
    };
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        // Adaptive: whatever arrived while the previous batch committed, up to batch_max.
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let t0 = std::time::Instant::now();
        let mut items = Vec::with_capacity(batch.len());
        for p in &batch {
            match topic_code(&p.topic) {
                Some(code) => {
                    items.push(Incoming {
                        source: Source::Code(code.to_owned()),
                        payload: p.payload.to_vec(),
                    });
                }
                None => {
                    app.monitor.count_reject(Reject::Malformed);
                }
            }
        }
        // Until the batch is committed nothing is acknowledged; on a store failure, retry the
        // same batch (the broker would only redeliver it after a reconnect).
        let mut delay = Duration::from_millis(200);
        loop {
            match pipeline::store(&app, &items).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "readings batch failed; retrying before acknowledging");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        let t1 = std::time::Instant::now();
        // The alarm writer first (the batch's rule events are queued), then the acknowledgements.
        let _ = wake.try_send(());
        for p in &batch {
            if let Err(e) = client.ack(p).await {
                tracing::warn!(error = %e, "mqtt ack failed");
            }
        }
        // Where a batch's time goes (`RUST_LOG=anxin::monitor=debug`).
        tracing::debug!(
            batch = batch.len(),
            queued = rx.len(),
            store_us = (t1 - t0).as_micros() as u64,
            ack_us = t1.elapsed().as_micros() as u64,
            "mqtt batch"
        );
    }
    drop(wake);
    let _ = writer.await;
}
