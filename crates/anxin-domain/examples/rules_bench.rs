//! Rule-evaluation benchmark: readings per second through [`Profile::evaluate`] on one core, against
//! the irreducible floor (the same stream through a loop that only finds the device's state and
//! compares each value with one constant).
//!
//! N devices (default 10,000) share one realistic profile: water level (threshold + sustained +
//! hysteresis, and a rate rule), gas (repeated), a silence rule (seen by ticks) and a night-time
//! rule with a schedule. Each device sends one reading a minute with 3 values (level, gas, rain);
//! a few devices flood, leak gas or go quiet so rules do raise and clear. Every 5 simulated
//! minutes (`--tick-every`) every device is ticked (the monitor's silence timer); ticks are counted
//! in the engine's time. Readings are generated up front from a fixed seed, so every run sees the same stream.
//!
//!   cargo run --release -p anxin-domain --example rules_bench -- [--devices N] [--rounds R]
//!       [--runs K] [--seed S] [--tick-every MINUTES] [--smoke]
//!
//! Use `bench/rules/run`, which builds it and pins it to one CPU.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anxin_domain::rules::{DeviceState, Event, Profile, ProfileSpec, Reading};
use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NAMES: [&str; 3] = ["level", "gas", "rain"];

struct Rec {
    dev: u32,
    at: DateTime<Utc>,
    vals: [f64; 3],
}

enum Item {
    Reading(Rec),
    /// Tick every device at this time.
    Tick(DateTime<Utc>),
}

fn profile() -> Profile {
    let spec: ProfileSpec = serde_json::from_value(serde_json::json!({"rules": [
        {"id": "level_high", "name": "水位持续超限", "alarm_type": "water_level_high", "severity": "critical",
         "raise": {"kind": "sustained", "seconds": 120,
                   "cond": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}},
         "clear": {"kind": "threshold", "metric": "level", "op": "below", "value": 2.5}},
        {"id": "level_rising", "name": "水位快速上涨", "alarm_type": "water_level_rising", "severity": "major",
         "raise": {"kind": "rate", "metric": "level", "op": "above", "per_minute": 0.15}},
        {"id": "gas_leak", "name": "燃气浓度反复超标", "alarm_type": "gas_high", "severity": "critical",
         "raise": {"kind": "repeated", "count": 3, "window_seconds": 300,
                   "cond": {"kind": "threshold", "metric": "gas", "op": "above", "value": 20.0}}},
        {"id": "offline", "name": "设备离线", "alarm_type": "device_silent", "severity": "minor",
         "raise": {"kind": "silent", "seconds": 300}},
        {"id": "night_flood", "name": "夜间积水", "alarm_type": "night_flood", "severity": "major",
         "raise": {"kind": "all", "all": [
             {"kind": "threshold", "metric": "level", "op": "above", "value": 2.0},
             {"kind": "threshold", "metric": "rain", "op": "above", "value": 8.0}]},
         "schedule": {"from": "22:00:00", "until": "06:00:00"}}
    ]}))
    .expect("profile parses");
    spec.compile().expect("profile compiles")
}

/// One reading per device per simulated minute, devices in a shuffled order each minute.
fn generate(devices: usize, rounds: usize, tick_every: usize, seed: u64) -> (Vec<Item>, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Start at 20:00 Shanghai so the night rule's window opens during a long run.
    let t0 = Utc
        .with_ymd_and_hms(2026, 7, 3, 12, 0, 0)
        .single()
        .expect("t0");
    let mut level: Vec<f64> = (0..devices).map(|_| rng.gen_range(0.5..2.0)).collect();
    // 2% flood (level climbs 0.2/min for 15 minutes, then falls), 1% leak gas, 1% go quiet.
    let flood_at: Vec<Option<usize>> = (0..devices)
        .map(|_| rng.gen_bool(0.02).then(|| rng.gen_range(0..rounds.max(1))))
        .collect();
    let leaky: Vec<bool> = (0..devices).map(|_| rng.gen_bool(0.01)).collect();
    let quiet_at: Vec<Option<usize>> = (0..devices)
        .map(|_| rng.gen_bool(0.01).then(|| rng.gen_range(0..rounds.max(1))))
        .collect();
    let mut order: Vec<u32> = (0..devices as u32).collect();
    let mut items = Vec::with_capacity(devices * rounds + rounds + 1);
    let mut readings = 0;
    for r in 0..rounds {
        let minute = t0 + chrono::Duration::minutes(r as i64);
        // Fisher–Yates; the stream interleaves devices like a broker does.
        for i in (1..order.len()).rev() {
            let j = rng.gen_range(0..=i);
            order.swap(i, j);
        }
        for &d in &order {
            let du = d as usize;
            if quiet_at[du].is_some_and(|q| (q..q + 10).contains(&r)) {
                continue;
            }
            let lv = &mut level[du];
            match flood_at[du] {
                Some(f) if (f..f + 15).contains(&r) => *lv += 0.2,
                Some(f) if (f + 15..f + 30).contains(&r) => *lv = (*lv - 0.2).max(0.5),
                _ => *lv = (*lv + rng.gen_range(-0.02..0.02)).clamp(0.3, 6.0),
            }
            let gas = if leaky[du] && rng.gen_bool(0.5) {
                rng.gen_range(15.0..40.0)
            } else {
                rng.gen_range(0.0..5.0)
            };
            let rain = rng.gen_range(0.0..10.0);
            let at = minute + chrono::Duration::milliseconds(rng.gen_range(0..59_000));
            items.push(Item::Reading(Rec {
                dev: d,
                at,
                vals: [*lv, gas, rain],
            }));
            readings += 1;
        }
        if tick_every > 0 && (r + 1) % tick_every == 0 {
            items.push(Item::Tick(minute + chrono::Duration::seconds(59)));
        }
    }
    (items, readings)
}

#[derive(Default, Debug)]
struct Counts {
    raise: u64,
    update: u64,
    clear: u64,
    ticks: u64,
}

fn run_engine(p: &Profile, devices: usize, items: &[Item]) -> (Duration, Counts, Vec<DeviceState>) {
    let mut states: Vec<DeviceState> = vec![DeviceState::default(); devices];
    let mut out: Vec<Event> = Vec::with_capacity(64);
    let mut c = Counts::default();
    let start = Instant::now();
    for item in items {
        match item {
            Item::Reading(rec) => {
                let st = &mut states[rec.dev as usize];
                let values = [
                    (NAMES[0], rec.vals[0]),
                    (NAMES[1], rec.vals[1]),
                    (NAMES[2], rec.vals[2]),
                ];
                p.evaluate(
                    st,
                    &Reading {
                        at: rec.at,
                        values: &values,
                    },
                    &mut out,
                );
            }
            Item::Tick(now) => {
                for st in states.iter_mut() {
                    p.tick(st, *now, &mut out);
                }
                c.ticks += devices as u64;
            }
        }
        // The caller hands events on; here they are only counted.
        for e in out.drain(..) {
            match e {
                Event::Raise { .. } => c.raise += 1,
                Event::Update { .. } => c.update += 1,
                Event::Clear { .. } => c.clear += 1,
            }
        }
    }
    let took = start.elapsed();
    (took, c, states)
}

fn run_floor(devices: usize, items: &[Item]) -> (Duration, u64) {
    let mut above: Vec<u64> = vec![0; devices];
    let start = Instant::now();
    for item in items {
        if let Item::Reading(rec) = item {
            let s = &mut above[black_box(rec.dev) as usize];
            for v in black_box(&rec.vals) {
                if *v > 3.0 {
                    *s += 1;
                }
            }
        }
    }
    let took = start.elapsed();
    (took, black_box(above.iter().sum()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut devices = 10_000usize;
    let mut rounds = 120usize;
    let mut runs = 5usize;
    let mut seed = 20_260_703u64;
    let mut tick_every = 5usize;
    let mut args = std::env::args().skip(1);
    let num = |a: Option<String>, what: &str| -> u64 {
        a.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what} needs a number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--devices" => devices = num(args.next(), "--devices") as usize,
            "--rounds" => rounds = num(args.next(), "--rounds") as usize,
            "--runs" => runs = num(args.next(), "--runs") as usize,
            "--seed" => seed = num(args.next(), "--seed"),
            "--tick-every" => tick_every = num(args.next(), "--tick-every") as usize,
            "--smoke" => {
                rounds = 20;
                runs = 1;
            }
            other => {
                eprintln!("usage: rules_bench [--devices N] [--rounds R] [--runs K] [--seed S] [--tick-every MINUTES, 0 = none] [--smoke]; got {other}");
                std::process::exit(2);
            }
        }
    }
    let runs = runs.max(1);
    let p = profile();
    let g0 = Instant::now();
    let (items, readings) = generate(devices, rounds, tick_every, seed);
    println!(
        "generated {readings} readings ({devices} devices × {rounds} minutes, 3 values each, seed {seed}) in {:.2} s",
        g0.elapsed().as_secs_f64()
    );

    let mut engine = Vec::new();
    let mut floor = Vec::new();
    let mut counts = Counts::default();
    let mut states = Vec::new();
    // Interleave the two loops so both see the same machine state.
    for _ in 0..runs {
        let (t, c, s) = run_engine(&p, devices, &items);
        engine.push(t);
        counts = c;
        states = s;
        let (t, _) = run_floor(devices, &items);
        floor.push(t);
    }
    let e = median(engine.clone());
    let f = median(floor.clone());
    let rate = |d: Duration| readings as f64 / d.as_secs_f64();
    println!(
        "events per run: {} raise, {} update, {} clear; {} device ticks",
        counts.raise, counts.update, counts.clear, counts.ticks
    );
    let sample = states
        .iter()
        .take(1000)
        .filter(|s| **s != DeviceState::default());
    let (n, bytes) = sample.fold((0usize, 0usize), |(n, b), s| {
        (
            n + 1,
            b + serde_json::to_vec(s).map(|v| v.len()).unwrap_or(0),
        )
    });
    if let Some(avg) = bytes.checked_div(n) {
        println!("device state as JSON: {avg} bytes on average ({n} devices sampled)");
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (eb, fb) = (best(&engine), best(&floor));
    println!(
        "engine: {:.0} readings/s on one core, median of {runs} ({:.0} ns/reading incl. ticks); best {:.0}/s; runs {:?} ms",
        rate(e),
        e.as_nanos() as f64 / readings as f64,
        rate(eb),
        engine.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    println!(
        "floor:  {:.0} readings/s on one core, median of {runs} ({:.1} ns/reading); best {:.0}/s",
        rate(f),
        f.as_nanos() as f64 / readings as f64,
        rate(fb)
    );
    println!(
        "ratio engine/floor time: {:.1}× (medians), {:.1}× (bests); target ≥ 1,000,000 readings/s: {}",
        e.as_secs_f64() / f.as_secs_f64(),
        eb.as_secs_f64() / fb.as_secs_f64(),
        if rate(e) >= 1_000_000.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
