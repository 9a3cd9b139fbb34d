//! `anxin-loadgen`: the load generator of the people-list benchmark (`bench/list/run`).
//!
//! Signs in as each given account, then runs `--clients` keep-alive HTTP/1.1 connections for
//! `--duration` seconds; each client belongs to one account (clients alternate between them) and
//! cycles through a fixed mix of list requests: the first page, a deep page, a Chinese substring
//! search and a filter (alternately by grid and by population type). It prints throughput and
//! p50/p95/p99 per request kind and account, then its own CPU time (from /proc/self/stat), so
//! the benchmark can show the generator was not the bottleneck. One thread (a current-thread
//! runtime): run it pinned to its own core (`taskset -c 1`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Name fragments searched (one or two characters, as a worker types them).
const FRAGMENTS: &[&str] = &[
    "王", "李", "张伟", "明", "华", "欧阳", "子涵", "建", "陈", "秀英",
];
const KINDS: &[&str] = &["first", "deep", "search", "filter"];

struct Args {
    addr: String,
    users: Vec<String>,
    password: String,
    clients: usize,
    duration: Duration,
    deep_offset: i64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        users: Vec::new(),
        password: std::env::var("ANXIN_DEMO_PASSWORD").unwrap_or_else(|_| "Anxin-demo-2026".into()),
        clients: 32,
        duration: Duration::from_secs(30),
        deep_offset: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| anyhow!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v()?,
            "--user" => a.users.push(v()?),
            "--password" => a.password = v()?,
            "--clients" => a.clients = v()?.parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(v()?.parse()?),
            "--deep-offset" => a.deep_offset = v()?.parse()?,
            "-h" | "--help" => {
                println!("anxin-loadgen [--addr 127.0.0.1:8080] --user U [--user U2] [--password P] [--clients 32] [--duration SECS] [--deep-offset 10000]");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {k}"),
        }
    }
    if a.users.is_empty() {
        a.users = vec!["district".into(), "grid".into()];
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
    headers: Vec<(String, String)>,
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
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        cookie: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Response> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
            self.addr
        );
        if !cookie.is_empty() {
            req.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
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
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
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
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What one account's clients need: its session cookie and the parameters of its mix.
#[derive(Clone)]
struct Session {
    user: String,
    cookie: String,
    grid: String,
    deep: i64,
    total: i64,
}

async fn sign_in(
    addr: &str,
    user: &str,
    password: &str,
    deep_offset: i64,
) -> anyhow::Result<Session> {
    let mut c = Conn::open(addr).await?;
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let r = c
        .request("POST", "/api/v1/auth/login", "", Some(&body))
        .await?;
    if r.status != 200 {
        bail!(
            "sign-in as {user}: HTTP {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let cookie = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    // The total is counted up to 1,000 past the requested offset (then `total_capped`): ask
    // at the deep offset to learn whether the reach is that deep.
    let r = c
        .request(
            "GET",
            &format!("/api/v1/people?limit=1&offset={deep_offset}"),
            &cookie,
            None,
        )
        .await?;
    if r.status != 200 {
        bail!("first page as {user}: HTTP {}", r.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    let total = v["total"].as_i64().unwrap_or(0);
    let capped = v["total_capped"].as_bool().unwrap_or(false);
    // The grid filter uses the grid of the first person in reach.
    let r0 = c
        .request("GET", "/api/v1/people?limit=1", &cookie, None)
        .await?;
    let v0: serde_json::Value = serde_json::from_slice(&r0.body)?;
    let grid = v0["items"][0]["grid_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A deep page: the requested offset, or half-way when the reach holds fewer people.
    let deep = if capped || total > deep_offset + 20 {
        deep_offset
    } else {
        total / 2
    };
    Ok(Session {
        user: user.to_owned(),
        cookie,
        grid,
        deep,
        total,
    })
}

fn path(s: &Session, kind: &str, i: usize) -> String {
    match kind {
        "first" => "/api/v1/people?limit=20".into(),
        "deep" => format!("/api/v1/people?limit=20&offset={}", s.deep),
        "search" => format!(
            "/api/v1/people?limit=20&q={}",
            encode(FRAGMENTS[i % FRAGMENTS.len()])
        ),
        _ if i % 2 == 0 && !s.grid.is_empty() => format!("/api/v1/people?limit=20&grid={}", s.grid),
        _ => "/api/v1/people?limit=20&population_type=floating".into(),
    }
}

type Samples = BTreeMap<(String, &'static str), Vec<u32>>;

async fn client(
    addr: String,
    s: Session,
    start_at: usize,
    until: Instant,
) -> anyhow::Result<(Samples, usize)> {
    let mut c = Conn::open(&addr).await?;
    let mut samples: Samples = BTreeMap::new();
    let mut errors = 0usize;
    let mut i = start_at;
    while Instant::now() < until {
        let kind = KINDS[i % KINDS.len()];
        let p = path(&s, kind, i / KINDS.len());
        let t = Instant::now();
        let r = c.request("GET", &p, &s.cookie, None).await?;
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if r.status == 200 {
            samples.entry((s.user.clone(), kind)).or_default().push(us);
        } else {
            errors += 1;
            if errors <= 3 {
                eprintln!(
                    "{} {p}: HTTP {} {}",
                    s.user,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
        i += 1;
    }
    Ok((samples, errors))
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
    // After the command name: state is field 3 (index 0 here); utime field 14, stime field 15.
    (tick(11), tick(12))
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut sessions = Vec::new();
        for u in &a.users {
            let s = sign_in(&a.addr, u, &a.password, a.deep_offset).await?;
            println!(
                "account {}: {} people in reach, deep offset {}, filter grid {}",
                s.user, s.total, s.deep, s.grid
            );
            sessions.push(s);
        }
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let until = t0 + a.duration;
        let mut tasks = Vec::new();
        for k in 0..a.clients {
            let s = sessions[k % sessions.len()].clone();
            tasks.push(tokio::spawn(client(a.addr.clone(), s, k, until)));
        }
        let mut all: Samples = BTreeMap::new();
        let mut errors = 0;
        for t in tasks {
            let (s, e) = t.await??;
            errors += e;
            for (k, mut v) in s {
                all.entry(k).or_default().append(&mut v);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = cpu_seconds();
        let total: usize = all.values().map(Vec::len).sum();
        println!(
            "clients {} duration {:.1} s requests {} errors {} throughput {:.0} req/s",
            a.clients,
            secs,
            total,
            errors,
            total as f64 / secs
        );
        println!(
            "{:<10} {:<7} {:>8} {:>8} {:>9} {:>9} {:>9}",
            "account", "kind", "count", "req/s", "p50 ms", "p95 ms", "p99 ms"
        );
        let mut by_user: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut by_kind: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        let mut every = Vec::new();
        for ((u, k), v) in &mut all {
            v.sort_unstable();
            println!(
                "{:<10} {:<7} {:>8} {:>8.0} {:>9.2} {:>9.2} {:>9.2}",
                u,
                k,
                v.len(),
                v.len() as f64 / secs,
                pct(v, 0.5),
                pct(v, 0.95),
                pct(v, 0.99)
            );
            by_user.entry(u.clone()).or_default().extend_from_slice(v);
            by_kind.entry(k).or_default().extend_from_slice(v);
            every.extend_from_slice(v);
        }
        for (u, v) in &mut by_user {
            v.sort_unstable();
            println!(
                "{:<10} {:<7} {:>8} {:>8.0} {:>9.2} {:>9.2} {:>9.2}",
                u,
                "all",
                v.len(),
                v.len() as f64 / secs,
                pct(v, 0.5),
                pct(v, 0.95),
                pct(v, 0.99)
            );
        }
        for (k, v) in &mut by_kind {
            v.sort_unstable();
            println!(
                "{:<10} {:<7} {:>8} {:>8.0} {:>9.2} {:>9.2} {:>9.2}",
                "all",
                k,
                v.len(),
                v.len() as f64 / secs,
                pct(v, 0.5),
                pct(v, 0.95),
                pct(v, 0.99)
            );
        }
        every.sort_unstable();
        println!(
            "{:<10} {:<7} {:>8} {:>8.0} {:>9.2} {:>9.2} {:>9.2}",
            "all",
            "all",
            every.len(),
            every.len() as f64 / secs,
            pct(&every, 0.5),
            pct(&every, 0.95),
            pct(&every, 0.99)
        );
        let (u, s) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
        println!(
            "loadgen cpu: user {u:.2} s system {s:.2} s = {:.0}% of one core over {secs:.1} s",
            100.0 * (u + s) / secs
        );
        anyhow::Ok(())
    })
}
