//! `anxin-rushgen`: the load generator of the reservation-rush benchmark (`bench/rush/run`).
//!
//! Reads resident sessions (one line each: `household_id token csrf`, made by the bench script),
//! makes the request list — every household `--repeat` times (a resident tapping twice, or
//! retrying), shuffled with a fixed seed — and sends it as `POST /api/v1/campaigns/{id}/
//! reservations` over `--clients` keep-alive HTTP/1.1 connections, each client taking the next
//! request from the shared list. Prints answers/s and reservations/s, p50/p95/p99 latency, the
//! statuses, and its own CPU time (from /proc/self/stat), so the benchmark can show the generator
//! was not the bottleneck. Then checks what it was told: no household was given two different
//! codes, no code was given to two households, and no more households hold a code than the
//! stock (`--stock`). `--acked FILE` writes every acknowledged `household_id code` for the
//! script's check against the database. One thread (a current-thread runtime): run it pinned to
//! its own core (`taskset -c 1`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    addr: String,
    sessions: String,
    campaign: String,
    body: String,
    clients: usize,
    requests: Option<usize>,
    repeat: usize,
    duration: Option<Duration>,
    seed: u64,
    stock: Option<usize>,
    acked: Option<String>,
}

const USAGE: &str =
    "anxin-rushgen --sessions FILE --campaign ID [--addr 127.0.0.1:8080] [--body '{}'] \
[--clients 64] [--repeat 2] [--requests N] [--duration SECS] [--seed 7] [--stock N] [--acked FILE]";

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        sessions: String::new(),
        campaign: String::new(),
        body: "{}".into(),
        clients: 64,
        requests: None,
        repeat: 2,
        duration: None,
        seed: 7,
        stock: None,
        acked: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| anyhow!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v()?,
            "--sessions" => a.sessions = v()?,
            "--campaign" => a.campaign = v()?,
            "--body" => a.body = v()?,
            "--clients" => a.clients = v()?.parse()?,
            "--requests" => a.requests = Some(v()?.parse()?),
            "--repeat" => a.repeat = v()?.parse()?,
            "--duration" => a.duration = Some(Duration::from_secs_f64(v()?.parse()?)),
            "--seed" => a.seed = v()?.parse()?,
            "--stock" => a.stock = Some(v()?.parse()?),
            "--acked" => a.acked = Some(v()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {k}\n{USAGE}"),
        }
    }
    if a.sessions.is_empty() || a.campaign.is_empty() {
        bail!("{USAGE}");
    }
    if a.clients == 0 || a.repeat == 0 {
        bail!("--clients and --repeat must be at least 1");
    }
    Ok(a)
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: String,
    stream: TcpStream,
    buf: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
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
        })
    }

    async fn post(
        &mut self,
        path: &str,
        cookie: &str,
        csrf: &str,
        body: &str,
    ) -> anyhow::Result<Response> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nCookie: {cookie}\r\n\
             X-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.stream.write_all(req.as_bytes()).await?;
        self.read_response().await
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

    async fn read_response(&mut self) -> anyhow::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line"))?;
        let mut len = None;
        let mut chunked = false;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    len = Some(v.trim().parse::<usize>()?);
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                    chunked = true;
                }
            }
        }
        let body = if let Some(len) = len {
            while self.buf.len() < len {
                self.fill().await?;
            }
            self.buf.drain(..len).collect()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill().await?;
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await?;
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            Vec::new()
        };
        Ok(Response { status, body })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Session {
    household: String,
    cookie: String,
    csrf: String,
}

fn read_sessions(path: &str) -> anyhow::Result<Vec<Session>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [household, token, csrf] = f.as_slice() else {
            bail!("{path}:{}: expected `household_id token csrf`", i + 1);
        };
        out.push(Session {
            household: (*household).to_owned(),
            cookie: format!("anxin_session={token}"),
            csrf: (*csrf).to_owned(),
        });
    }
    Ok(out)
}

/// What the clients share: the request list, the next request to send, and what was answered.
struct Shared {
    addr: String,
    sessions: Vec<Session>,
    order: Vec<u32>,
    next: Cell<usize>,
    until: Option<Instant>,
    path: String,
    body: String,
    /// Latency in µs per status.
    samples: RefCell<BTreeMap<u16, Vec<u32>>>,
    /// household index → codes it was given (2xx answers).
    codes: RefCell<HashMap<u32, Vec<String>>>,
    /// A few refusal bodies per status, to show what the refusals were.
    examples: RefCell<BTreeMap<u16, Vec<String>>>,
    /// Requests whose connection failed (no answer).
    failed: Cell<usize>,
}

async fn client(sh: Rc<Shared>) -> anyhow::Result<()> {
    let mut c = Conn::open(&sh.addr).await?;
    loop {
        if sh.until.is_some_and(|u| Instant::now() >= u) {
            return Ok(());
        }
        let i = sh.next.get();
        if i >= sh.order.len() {
            return Ok(());
        }
        sh.next.set(i + 1);
        let h = sh.order[i];
        let s = &sh.sessions[h as usize];
        let t = Instant::now();
        let r = match c.post(&sh.path, &s.cookie, &s.csrf, &sh.body).await {
            Ok(r) => r,
            Err(e) => {
                // The server closed the connection: count it, open another, go on.
                sh.failed.set(sh.failed.get() + 1);
                if sh.failed.get() <= 3 {
                    eprintln!("request failed: {e:#}");
                }
                c = Conn::open(&sh.addr).await?;
                continue;
            }
        };
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        sh.samples
            .borrow_mut()
            .entry(r.status)
            .or_default()
            .push(us);
        if (200..300).contains(&r.status) {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let code = v["code"].as_str().unwrap_or_default().to_owned();
            sh.codes.borrow_mut().entry(h).or_default().push(code);
        } else {
            let mut ex = sh.examples.borrow_mut();
            let e = ex.entry(r.status).or_default();
            if e.len() < 2 {
                e.push(String::from_utf8_lossy(&r.body).chars().take(200).collect());
            }
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

/// The process's user and system CPU seconds (utime, stime in clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let sessions = read_sessions(&a.sessions)?;
    if sessions.is_empty() {
        bail!("no sessions in {}", a.sessions);
    }
    let n = u32::try_from(sessions.len())?;
    let mut order: Vec<u32> = (0..a.repeat).flat_map(|_| 0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    order.shuffle(&mut rng);
    if let Some(r) = a.requests {
        order.truncate(r);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let t0 = Instant::now();
        let sh = Rc::new(Shared {
            addr: a.addr.clone(),
            sessions,
            order,
            next: Cell::new(0),
            until: a.duration.map(|d| t0 + d),
            path: format!("/api/v1/campaigns/{}/reservations", a.campaign),
            body: a.body.clone(),
            samples: RefCell::new(BTreeMap::new()),
            codes: RefCell::new(HashMap::new()),
            examples: RefCell::new(BTreeMap::new()),
            failed: Cell::new(0),
        });
        let cpu0 = cpu_seconds();
        let mut tasks = Vec::new();
        for _ in 0..a.clients {
            tasks.push(tokio::task::spawn_local(client(sh.clone())));
        }
        for t in tasks {
            t.await??;
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = cpu_seconds();
        report(&a, &sh, secs, cpu0, cpu1)
    })
}

fn report(
    a: &Args,
    sh: &Shared,
    secs: f64,
    cpu0: (f64, f64),
    cpu1: (f64, f64),
) -> anyhow::Result<()> {
    let mut samples = sh.samples.borrow_mut();
    let mut all: Vec<u32> = Vec::new();
    let mut ok: Vec<u32> = Vec::new();
    for (status, v) in samples.iter_mut() {
        v.sort_unstable();
        all.extend_from_slice(v);
        if (200..300).contains(status) {
            ok.extend_from_slice(v);
        }
    }
    all.sort_unstable();
    ok.sort_unstable();
    let codes = sh.codes.borrow();
    let households_with_code = codes.len();
    println!(
        "requests sent {} of {} ({} households x {}), clients {}, {:.2} s, connection failures {}",
        sh.next.get(),
        sh.order.len(),
        sh.sessions.len(),
        a.repeat,
        a.clients,
        secs,
        sh.failed.get()
    );
    println!(
        "answers {} = {:.0}/s; successful (2xx) {} = {:.0}/s; households holding a code {}",
        all.len(),
        all.len() as f64 / secs,
        ok.len(),
        ok.len() as f64 / secs,
        households_with_code
    );
    println!(
        "{:<8} {:>8} {:>9} {:>9} {:>9}",
        "status", "count", "p50 ms", "p95 ms", "p99 ms"
    );
    for (status, v) in samples.iter() {
        println!(
            "{:<8} {:>8} {:>9.2} {:>9.2} {:>9.2}",
            status,
            v.len(),
            pct(v, 0.5),
            pct(v, 0.95),
            pct(v, 0.99)
        );
    }
    println!(
        "{:<8} {:>8} {:>9.2} {:>9.2} {:>9.2}",
        "2xx",
        ok.len(),
        pct(&ok, 0.5),
        pct(&ok, 0.95),
        pct(&ok, 0.99)
    );
    println!(
        "{:<8} {:>8} {:>9.2} {:>9.2} {:>9.2}",
        "all",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.95),
        pct(&all, 0.99)
    );
    for (status, ex) in sh.examples.borrow().iter() {
        for e in ex {
            println!("  e.g. {status}: {e}");
        }
    }
    let (u, s) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    println!(
        "rushgen cpu: user {u:.2} s system {s:.2} s = {:.0}% of one core over {secs:.1} s",
        100.0 * (u + s) / secs
    );

    // What the answers must satisfy.
    let mut problems = Vec::new();
    let mut holder: HashMap<&str, u32> = HashMap::new();
    for (h, cs) in codes.iter() {
        if cs.iter().any(String::is_empty) {
            problems.push(format!(
                "household {}: a 2xx answer without a code",
                sh.sessions[*h as usize].household
            ));
        }
        if cs.iter().any(|c| c != &cs[0]) {
            problems.push(format!(
                "household {} was given two codes: {cs:?}",
                sh.sessions[*h as usize].household
            ));
        }
        if let Some(other) = holder.insert(cs[0].as_str(), *h) {
            if other != *h {
                problems.push(format!("code {} given to two households", cs[0]));
            }
        }
    }
    if let Some(stock) = a.stock {
        if households_with_code > stock {
            problems.push(format!(
                "oversold: {households_with_code} households hold a code, stock {stock}"
            ));
        }
    }
    if let Some(path) = &a.acked {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (h, cs) in codes.iter() {
            writeln!(f, "{} {}", sh.sessions[*h as usize].household, cs[0])?;
        }
        f.flush()?;
    }
    if problems.is_empty() {
        println!(
            "answers check: OK (one code per household, no code twice{})",
            if a.stock.is_some() {
                ", not oversold"
            } else {
                ""
            }
        );
        Ok(())
    } else {
        for p in problems.iter().take(20) {
            println!("PROBLEM: {p}");
        }
        bail!("{} problems in the answers", problems.len())
    }
}
