//! MQTT load generator for `bench/mqtt/run`: publishes readings of the documented shape
//! (`{"seq","ts","values":{"level","battery","temp"}}`, three values) with QoS 1, round-robin over
//! devices, on `anxin/v1/devices/{code}/readings`.
//!
//! * `bare`: publish only (the anchor: the script times a bare `mosquitto_sub` draining them).
//! * `run`: sign in as staff, create a profile (threshold rule with hysteresis) and the devices
//!   over the API, publish (as fast as the broker takes them, or paced with `--rate`), wait until
//!   every reading is committed (row count of the readings SQLite file, read-only, through the
//!   `sqlite3` command), check each device's alarms over the API (one per crossing: none missing,
//!   no duplicates), and with `--live` measure publish → alarm visible on `GET /api/v1/live`.
//!
//! Level per device, its k-th reading (k from 0) with period P: 5.0 when k % P == P/2 (crosses
//! "above 4.0": raises), 2.0 when k % P == P/2 + P/4 (below 2.5: clears), otherwise 3.0 (neither:
//! an open alarm stays open — the hysteresis band).
//!
//! Prints `key=value` lines for the script, and exits non-zero when a count does not match.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
struct Args {
    mode: String,
    broker: String,
    addr: String,
    user: String,
    password: String,
    community: String,
    devices: usize,
    prefix: String,
    messages: usize,
    rate: f64,
    period: usize,
    readings_db: String,
    live: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut a = Args {
        mode,
        broker: "127.0.0.1:1883".into(),
        addr: "127.0.0.1:8080".into(),
        user: "worker".into(),
        password: std::env::var("ANXIN_DEMO_PASSWORD").unwrap_or_else(|_| "Anxin-demo-2026".into()),
        community: "510104017001".into(),
        devices: 1000,
        prefix: "bench".into(),
        messages: 200_000,
        rate: 0.0,
        period: 100,
        readings_db: String::new(),
        live: false,
    };
    while let Some(k) = it.next() {
        if k == "--live" {
            a.live = true;
            continue;
        }
        let mut v = || it.next().ok_or_else(|| anyhow!("{k} needs a value"));
        match k.as_str() {
            "--broker" => a.broker = v()?,
            "--addr" => a.addr = v()?,
            "--user" => a.user = v()?,
            "--password" => a.password = v()?,
            "--community" => a.community = v()?,
            "--devices" => a.devices = v()?.parse().context("--devices")?,
            "--prefix" => a.prefix = v()?,
            "--messages" => a.messages = v()?.parse().context("--messages")?,
            "--rate" => a.rate = v()?.parse().context("--rate")?,
            "--period" => a.period = v()?.parse().context("--period")?,
            "--readings-db" => a.readings_db = v()?,
            _ => bail!(
                "usage: anxin-mqttgen bare|run [--broker H:P] [--addr H:P] [--user U] [--password P] \
                 [--community CODE] [--devices D] [--prefix P] [--messages N] [--rate MSGS_PER_S] \
                 [--period K] [--readings-db FILE] [--live]"
            ),
        }
    }
    if !matches!(a.mode.as_str(), "bare" | "run") {
        bail!("first argument: bare or run");
    }
    if a.devices == 0 || a.messages == 0 || a.period < 4 {
        bail!("--devices and --messages must be positive, --period at least 4");
    }
    if a.mode == "run" && a.readings_db.is_empty() {
        bail!("run needs --readings-db (the readings SQLite file)");
    }
    Ok(a)
}

fn code(prefix: &str, d: usize) -> String {
    format!("{prefix}-{d:05}")
}

/// The level of a device's k-th reading (see the module comment).
fn level(k: usize, period: usize) -> f64 {
    let r = k % period;
    if r == period / 2 {
        5.0
    } else if r == period / 2 + period / 4 {
        2.0
    } else {
        3.0
    }
}

/// Raises a device with `per_device` readings makes.
fn raises(per_device: usize, period: usize) -> usize {
    (0..per_device).filter(|k| k % period == period / 2).count()
}

/// The process's user and system CPU seconds (utime, stime in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    tick(11) + tick(12)
}

// ---- HTTP: a keep-alive HTTP/1.1 connection (as anxin-loadgen) --------------------------------

struct Conn {
    addr: String,
    stream: TcpStream,
    buf: Vec<u8>,
    cookie: String,
    csrf: String,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    async fn open(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr: addr.to_owned(),
            stream,
            buf: Vec::with_capacity(16 * 1024),
            cookie: String::new(),
            csrf: String::new(),
        })
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<()> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\n",
            self.addr
        );
        if !self.cookie.is_empty() {
            req.push_str(&format!("Cookie: {}\r\n", self.cookie));
        }
        if !self.csrf.is_empty() && method != "GET" {
            req.push_str(&format!("X-CSRF-Token: {}\r\n", self.csrf));
        }
        match body {
            Some(b) => req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => req.push_str("\r\n"),
        }
        self.stream.write_all(req.as_bytes()).await?;
        Ok(())
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Response> {
        self.send(method, path, body).await?;
        let (status, headers) = self.head().await?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if let Some(len) = header("content-length") {
            let len: usize = len.parse()?;
            while self.buf.len() < len {
                self.fill().await?;
            }
            self.buf.drain(..len).collect()
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(c) = self.chunk().await? {
                body.extend(c);
            }
            body
        } else {
            Vec::new()
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn head(&mut self) -> anyhow::Result<(u16, Vec<(String, String)>)> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok((status, headers))
    }

    /// One chunk of a chunked body; `None` at the last (empty) one.
    async fn chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let line_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&self.buf[..line_end]).trim(), 16)?;
        self.buf.drain(..line_end + 2);
        while self.buf.len() < size + 2 {
            self.fill().await?;
        }
        let c: Vec<u8> = self.buf.drain(..size).collect();
        self.buf.drain(..2);
        Ok((size > 0).then_some(c))
    }

    async fn json(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        want: u16,
    ) -> anyhow::Result<serde_json::Value> {
        let b = body.map(|b| b.to_string());
        let r = self.request(method, path, b.as_deref()).await?;
        if r.status != want {
            bail!(
                "{method} {path}: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        r.json()
    }
}

async fn sign_in(addr: &str, user: &str, password: &str) -> anyhow::Result<Conn> {
    let mut c = Conn::open(addr).await?;
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let r = c.request("POST", "/api/v1/auth/login", Some(&body)).await?;
    if r.status != 200 {
        bail!(
            "sign-in as {user}: HTTP {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    c.cookie = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    c.csrf = r.json()?["csrf"].as_str().unwrap_or_default().to_owned();
    Ok(c)
}

// ---- MQTT -------------------------------------------------------------------------------------

struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn connect(broker: &str, id: &str) -> anyhow::Result<Publisher> {
    let (host, port) = broker
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("--broker host:port"))?;
    let mut o = MqttOptions::new(id, host, port.parse::<u16>().context("--broker port")?);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_inflight(100);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let acked = Arc::new(AtomicU64::new(0));
    let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
    let a = acked.clone();
    let task = tokio::spawn(async move {
        let mut conn_tx = Some(conn_tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(t) = conn_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(anyhow!("mqtt: {e}")),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), conn_rx)
        .await
        .context("mqtt connect timed out")?
        .context("mqtt connection failed")?;
    Ok(Publisher {
        client,
        acked,
        task,
    })
}

/// Publish the messages round-robin; returns the publish instants of the raising messages per
/// device, the time until the last PUBACK, and the CPU seconds used meanwhile.
async fn publish(
    a: &Args,
    p: &Publisher,
) -> anyhow::Result<(Vec<Vec<Instant>>, Duration, f64, Instant)> {
    let topics: Vec<String> = (0..a.devices)
        .map(|d| format!("anxin/v1/devices/{}/readings", code(&a.prefix, d)))
        .collect();
    let mut crossings = vec![Vec::new(); a.devices];
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for m in 0..a.messages {
        let (d, k) = (m % a.devices, m / a.devices);
        if a.rate > 0.0 {
            let due = t0 + Duration::from_secs_f64(m as f64 / a.rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let v = level(k, a.period);
        let payload = format!(
            r#"{{"seq":{},"ts":"{}","values":{{"level":{v:.1},"battery":3.6,"temp":21.5}}}}"#,
            k + 1,
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        if k % a.period == a.period / 2 {
            crossings[d].push(Instant::now());
        }
        p.client
            .publish(&topics[d], QoS::AtLeastOnce, false, payload)
            .await?;
    }
    let want = a.messages as u64;
    while p.acked.load(Ordering::Relaxed) < want {
        if p.task.is_finished() {
            bail!("the MQTT connection ended before every PUBACK arrived");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((crossings, t0.elapsed(), cpu_seconds() - cpu0, t0))
}

// ---- readings count ---------------------------------------------------------------------------

/// Committed readings: in the readings SQLite file, or (a `postgres://` URL) in the
/// `anxin_readings` schema of the main PostgreSQL database.
fn readings_count(db: &str) -> anyhow::Result<u64> {
    let out = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        std::process::Command::new("psql")
            .args([
                "-qAtX",
                db,
                "-c",
                "SELECT count(*) FROM anxin_readings.readings",
            ])
            .output()
            .context("run psql")?
    } else {
        std::process::Command::new("sqlite3")
            .arg("-readonly")
            .arg(db)
            .arg("SELECT count(*) FROM readings")
            .output()
            .context("run sqlite3")?
    };
    if !out.status.success() {
        bail!("readings count: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

// ---- live stream ------------------------------------------------------------------------------

type Seen = Arc<Mutex<Vec<(String, Instant)>>>;

/// Open `GET /api/v1/live` and record every `alarms` insert (alarm id, arrival instant).
async fn live(addr: &str, user: &str, password: &str) -> anyhow::Result<Seen> {
    let mut c = sign_in(addr, user, password).await?;
    c.send("GET", "/api/v1/live", None).await?;
    let (status, _) = c.head().await?;
    if status != 200 {
        bail!("GET /api/v1/live: HTTP {status}");
    }
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = c.chunk().await {
            let now = Instant::now();
            text.push_str(&String::from_utf8_lossy(&chunk));
            // Events end with a blank line; keep a partial one for the next chunk.
            while let Some(end) = text.find("\n\n") {
                let ev: String = text.drain(..end + 2).collect();
                for line in ev.lines() {
                    let Some(data) = line.strip_prefix("data:") else {
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                        continue;
                    };
                    if v["kind"] == "alarms" && v["op"] == "insert" {
                        if let Some(id) = v["id"].as_str() {
                            if let Ok(mut g) = s.lock() {
                                g.push((id.to_owned(), now));
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(seen)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---- modes ------------------------------------------------------------------------------------

async fn bare(a: &Args) -> anyhow::Result<()> {
    let p = connect(
        &a.broker,
        &format!("{}-gen-{}", a.prefix, std::process::id()),
    )
    .await?;
    let (_, took, cpu, _) = publish(a, &p).await?;
    println!(
        "published={} publish_s={:.3} gen_cpu_s={cpu:.2}",
        a.messages,
        took.as_secs_f64()
    );
    let _ = p.client.disconnect().await;
    Ok(())
}

async fn run(a: &Args) -> anyhow::Result<()> {
    // Set-up over the API (not timed).
    let mut c = sign_in(&a.addr, &a.user, &a.password).await?;
    let node = c
        .json(
            "GET",
            &format!("/api/v1/nodes/by-code/{}", a.community),
            None,
            200,
        )
        .await?;
    let node_id = node["id"]
        .as_str()
        .ok_or_else(|| anyhow!("node without id: {node}"))?
        .to_owned();
    let rules = serde_json::json!({"rules": [{
        "id": "high", "name": "水位高", "alarm_type": "water_level_high", "severity": "major",
        "raise": {"kind": "threshold", "metric": "level", "op": "above", "value": 4.0},
        "clear": {"kind": "threshold", "metric": "level", "op": "below", "value": 2.5}
    }]});
    let profile = c
        .json(
            "POST",
            "/api/v1/device-profiles",
            Some(serde_json::json!({"node_id": node_id, "name": format!("基准 {}", a.prefix), "rules": rules})),
            201,
        )
        .await?;
    let profile_id = profile["id"].as_str().unwrap_or_default().to_owned();
    let t_setup = Instant::now();
    let mut ids = Vec::with_capacity(a.devices);
    for d in 0..a.devices {
        let v = c
            .json(
                "POST",
                "/api/v1/devices",
                Some(serde_json::json!({
                    "node_id": node_id, "kind": "water_level", "code": code(&a.prefix, d),
                    "name": format!("基准水位计 {d}"), "profile_id": profile_id
                })),
                201,
            )
            .await?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| anyhow!("device without id: {v}"))?;
        ids.push(id.to_owned());
    }
    eprintln!(
        "set-up: profile and {} devices in {:.1} s",
        a.devices,
        t_setup.elapsed().as_secs_f64()
    );
    let seen = if a.live {
        Some(live(&a.addr, &a.user, &a.password).await?)
    } else {
        None
    };
    let base = readings_count(&a.readings_db)?;
    let p = connect(
        &a.broker,
        &format!("{}-gen-{}", a.prefix, std::process::id()),
    )
    .await?;

    let (crossings, took, cpu, t0) = publish(a, &p).await?;
    let want = base + a.messages as u64;
    // Until every reading is committed (readings file, read-only).
    let limit = Duration::from_secs(20) + took * 20;
    let mut n = readings_count(&a.readings_db)?;
    while n < want {
        if t0.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = readings_count(&a.readings_db)?;
    }
    let committed = t0.elapsed();
    let _ = p.client.disconnect().await;
    println!(
        "published={} publish_s={:.3} committed={} committed_s={:.3} rate={:.0} gen_cpu_s={cpu:.2} gen_cpu_pct={:.0}",
        a.messages,
        took.as_secs_f64(),
        n - base,
        committed.as_secs_f64(),
        (n - base) as f64 / committed.as_secs_f64(),
        100.0 * cpu / took.as_secs_f64()
    );
    let mut bad = Vec::new();
    if n != want {
        bad.push(format!(
            "readings committed {} of {} published",
            n - base,
            a.messages
        ));
    }

    // Alarms per device: one per crossing, no more, no fewer (the last batch's alarm writes
    // follow its readings commit: allow a few seconds).
    let per = a.messages / a.devices;
    let expect = |d: usize| raises(per + usize::from(d < a.messages % a.devices), a.period);
    let mut device_of: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wrong;
    loop {
        wrong = 0;
        device_of.clear();
        let mut total = 0;
        for (d, id) in ids.iter().enumerate() {
            let v = c
                .json(
                    "GET",
                    &format!("/api/v1/alarms?device_id={id}&limit=100"),
                    None,
                    200,
                )
                .await?;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.len() != expect(d) {
                wrong += 1;
            }
            total += items.len();
            for it in items {
                if let Some(aid) = it["id"].as_str() {
                    device_of.insert(aid.to_owned(), d);
                }
            }
        }
        if wrong == 0 || Instant::now() > deadline {
            let want: usize = (0..a.devices).map(expect).sum();
            println!(
                "alarms={total} alarms_expected={want} devices_with_wrong_alarm_count={wrong}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if wrong > 0 {
        bad.push(format!("{wrong} devices have a wrong number of alarms"));
    }

    if let Some(seen) = seen {
        // Publish → alarm insert on the live stream, paired in order per device.
        let mut got: Vec<Vec<Instant>> = vec![Vec::new(); a.devices];
        for (id, at) in seen.lock().map_err(|_| anyhow!("poisoned"))?.iter() {
            if let Some(&d) = device_of.get(id) {
                got[d].push(*at);
            }
        }
        let mut lat = Vec::new();
        let mut unmatched = 0;
        for (d, pubs) in crossings.iter().enumerate() {
            got[d].sort();
            for (i, p) in pubs.iter().enumerate() {
                match got[d].get(i) {
                    Some(at) => lat.push(at.saturating_duration_since(*p).as_secs_f64() * 1000.0),
                    None => unmatched += 1,
                }
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "latency_n={} latency_unmatched={unmatched} p50_ms={:.1} p95_ms={:.1} p99_ms={:.1} max_ms={:.1}",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.95),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        if unmatched > 0 {
            bad.push(format!(
                "{unmatched} crossings without an alarm on the live stream"
            ));
        }
    }
    if !bad.is_empty() {
        bail!("MISMATCH: {}", bad.join("; "));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match a.mode.as_str() {
            "bare" => bare(&a).await,
            _ => run(&a).await,
        }
    })
}
