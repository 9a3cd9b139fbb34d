//! Platform services on both stores: notifications (outbox, a real SMTP server on loopback,
//! retries), durable jobs (leases, races between two processes, restarts, schedules), live
//! events, retention and backup/restore across backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use anxin::app::{App, OpenOptions};
use anxin::config::SmtpConfig;
use anxin::platform::jobs::{self, RunOutcome};
use anxin::platform::notify::{self, ChannelKind, Outcome};
use anxin::platform::{backup, live, retention};
use anxin_domain::{Clock, Phone, SeededIdGen};
use anxin_store::jobs::{self as store_jobs, NewJob};
use anxin_store::notify as store_notify;
use anxin_store::{params, Store, WriteCtx};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::support::{Backend, TestApp};

// ---- helpers ---------------------------------------------------------------------------------

/// A second process on the same database: its own store, writer and pool; the same clock.
async fn open_again(t: &TestApp, seed: u64) -> App {
    let config = t.config.clone();
    let clock = t.clock.clone();
    tokio::task::spawn_blocking(move || {
        App::open(
            config,
            OpenOptions {
                clock: Arc::new(clock.clone()),
                ids: Some(Arc::new(SeededIdGen::new(Arc::new(clock), seed))),
                migrate_upto: None,
            },
        )
        .unwrap()
    })
    .await
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server (aiosmtpd) on loopback writing a Maildir.
struct SmtpServer {
    child: std::process::Child,
    maildir: PathBuf,
}

impl SmtpServer {
    async fn start(port: u16, maildir: &Path) -> SmtpServer {
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let server = SmtpServer {
            child,
            maildir: maildir.to_path_buf(),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Subject, To and body of each delivered message, decoded by Python's e-mail parser.
    fn messages(&self) -> Vec<(String, String, String)> {
        let new = self.maildir.join("new");
        let mut out = Vec::new();
        for e in std::fs::read_dir(new).unwrap() {
            let path = e.unwrap().path();
            let o = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import sys, email, email.policy\n\
                     m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
                     sys.stdout.write(str(m['subject']) + '\\n' + str(m['to']) + '\\n' + m.get_content())",
                ])
                .arg(&path)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8(o.stdout).unwrap();
            let mut parts = text.splitn(3, '\n');
            out.push((
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            ));
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "安心社区 <anxin@example.org>".into(),
        tls: "none".into(),
        username: None,
        password: None,
    }
}

async fn insert_node(store: &Store, name: &str, parent: Option<Uuid>) -> Uuid {
    let name = name.to_owned();
    store
        .write(WriteCtx::system("test"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            let level = if parent.is_some() {
                "community"
            } else {
                "city"
            };
            tx.insert(
                "nodes",
                &[
                    ("id", id.into()),
                    ("parent_id", parent.into()),
                    ("level", level.into()),
                    ("name", name.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(id)
        })
        .await
        .unwrap()
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store.read(move |c, _| c.query_i64(sql, &[])).await.unwrap()
}

// ---- notifications ---------------------------------------------------------------------------

both_stores!(
    login_code_reaches_the_outbox_sealed_at_rest,
    |t: TestApp| async move {
        let phone = Phone::parse("138 0013 8000").unwrap();
        notify::send_login_code(&t.app, &phone, "482913")
            .await
            .unwrap();

        let out = notify::outbox_messages(&t.app, ChannelKind::Sms)
            .await
            .unwrap();
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(m.template, "login_code");
        assert_eq!(m.to, "+8613800138000");
        assert_eq!(m.params["code"], "482913");
        assert!(
            m.body.contains("482913") && m.body.contains("验证码"),
            "{}",
            m.body
        );

        let st = store_notify::state(t.store(), m.id).await.unwrap().unwrap();
        assert_eq!((st.status.as_str(), st.attempts), ("sent", 1));
        assert_eq!(st.recipient_mask.as_deref(), Some("138****8000"));
        // At rest: the phone is ciphertext, and the code is gone once delivered.
        let id = m.id;
        let (recipient_ct, params_gone) = t
            .store()
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT recipient_ct, params_ct FROM notifications WHERE id = $1",
                        &params![id],
                    )?
                    .unwrap();
                Ok((
                    r.get::<Vec<u8>>("recipient_ct")?,
                    r.get::<Option<Vec<u8>>>("params_ct")?.is_none(),
                ))
            })
            .await
            .unwrap();
        assert!(params_gone);
        assert!(!String::from_utf8_lossy(&recipient_ct).contains("13800138000"));
    }
);

both_stores!(
    unknown_template_or_missing_parameter_is_refused,
    |t: TestApp| async move {
        assert!(
            notify::send_email(&t.app, "a@example.org", "no_such_template", &[])
                .await
                .is_err()
        );
        assert!(
            notify::send_email(&t.app, "a@example.org", "notice", &[("title", "x")])
                .await
                .is_err()
        );
        assert!(notify::send_email(
            &t.app,
            "not an address",
            "notice",
            &[("title", "x"), ("body", "y")]
        )
        .await
        .is_err());
        // SMS never carries free text: `notice` has no SMS form.
        let phone = Phone::parse("13800138000").unwrap();
        assert!(
            notify::send_sms(&t.app, &phone, "notice", &[("title", "x"), ("body", "y")])
                .await
                .is_err()
        );
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM notifications").await,
            0
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_chinese_mail_to_a_real_server() {
    let port = free_port();
    let t = TestApp::with_config(Backend::Sqlite, move |c| {
        c.notify.smtp = Some(smtp_config(port))
    })
    .await;
    let server = SmtpServer::start(port, &t.dir.path().join("maildir")).await;

    let id = notify::send_email(
        &t.app,
        "zhang.san@example.org",
        "notice",
        &[
            ("title", "暴雨红色预警"),
            (
                "body",
                "今夜有特大暴雨，请居民减少外出，低洼处住户注意转移。",
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);

    let st = store_notify::state(t.store(), id).await.unwrap().unwrap();
    assert_eq!(st.status, "sent");
    assert_eq!(st.recipient_mask.as_deref(), Some("z***@example.org"));
    assert!(st.provider_ref.unwrap().starts_with("smtp:250"));
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    let (subject, to, body) = &msgs[0];
    assert_eq!(subject, "【安心社区】暴雨红色预警");
    assert_eq!(to, "zhang.san@example.org");
    assert!(
        body.contains("今夜有特大暴雨，请居民减少外出，低洼处住户注意转移。"),
        "{body}"
    );
    assert!(body.contains("安心社区平台"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_is_retried_with_backoff_until_it_is_up() {
    let port = free_port();
    let t = TestApp::with_config(Backend::Sqlite, move |c| {
        c.notify.smtp = Some(smtp_config(port))
    })
    .await;

    let id = notify::send_email(
        &t.app,
        "li.si@example.org",
        "notice",
        &[("title", "停水通知"), ("body", "明日9时至17时停水。")],
    )
    .await
    .unwrap();
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);
    let st = store_notify::state(t.store(), id).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.attempts), ("pending", 1));
    let err = st.last_error.unwrap();
    assert!(err.starts_with("smtp"), "{err}");
    assert!(!err.contains("li.si"), "no address in the error: {err}");
    assert_eq!(st.next_attempt_at, t.clock.now() + store_notify::backoff(1));

    // Not due yet: nothing is attempted.
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 0);
    // Second failure doubles the wait.
    t.clock.advance(store_notify::backoff(1));
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);
    let st = store_notify::state(t.store(), id).await.unwrap().unwrap();
    assert_eq!(st.next_attempt_at, t.clock.now() + store_notify::backoff(2));
    assert_eq!(store_notify::backoff(2), store_notify::backoff(1) * 2);

    let server = SmtpServer::start(port, &t.dir.path().join("maildir")).await;
    t.clock.advance(store_notify::backoff(2));
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);
    let st = store_notify::state(t.store(), id).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.attempts), ("sent", 3));
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, "【安心社区】停水通知");
}

#[test]
fn smtp_in_clear_only_to_loopback_and_tls_builds() {
    let mut c = anxin::config::Config::default();
    c.notify.smtp = Some(SmtpConfig {
        host: "smtp.example.org".into(),
        ..smtp_config(25)
    });
    assert!(notify::Notifier::from_config(&c).is_err());
    for tls in ["starttls", "tls"] {
        c.notify.smtp = Some(SmtpConfig {
            host: "smtp.example.org".into(),
            tls: tls.into(),
            ..smtp_config(587)
        });
        let n = notify::Notifier::from_config(&c).unwrap();
        assert_eq!(n.channel(ChannelKind::Email).unwrap().name(), "smtp");
        assert_eq!(n.channel(ChannelKind::Sms).unwrap().name(), "outbox");
    }
}

/// A sink that always fails, retryably.
struct Broken;

impl notify::Channel for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn deliver<'a>(&'a self, _msg: &'a notify::Message) -> notify::DeliverFuture<'a> {
        Box::pin(async { Err(notify::DeliveryError::retryable("gateway busy")) })
    }
}

both_stores!(
    delivery_gives_up_after_the_attempt_limit,
    |t: TestApp| async move {
        let mut app = t.app.clone();
        let notifier = notify::Notifier::from_config(&t.config)
            .unwrap()
            .with_channel(ChannelKind::Sms, Arc::new(Broken));
        app.notifier = Arc::new(notifier);
        let phone = Phone::parse("13900139000").unwrap();
        let id = notify::send_sms(
            &app,
            &phone,
            "login_code",
            &[("code", "1"), ("minutes", "5")],
        )
        .await
        .unwrap();
        for n in 1..=store_notify::MAX_ATTEMPTS {
            let outcome = notify::deliver_one(&app, id).await.unwrap().unwrap();
            if n < store_notify::MAX_ATTEMPTS {
                assert!(matches!(outcome, Outcome::RetryAt(_)), "{outcome:?}");
                t.clock.advance(store_notify::MAX_BACKOFF);
            } else {
                assert_eq!(outcome, Outcome::Failed);
            }
        }
        let st = store_notify::state(t.store(), id).await.unwrap().unwrap();
        assert_eq!(
            (st.status.as_str(), st.attempts),
            ("failed", store_notify::MAX_ATTEMPTS)
        );
        assert_eq!(st.last_error.as_deref(), Some("gateway busy"));
        assert!(notify::deliver_one(&app, id).await.unwrap().is_none());
    }
);

both_stores!(
    background_dispatcher_delivers_on_enqueue,
    |t: TestApp| async move {
        let bg = jobs::start(&t.app);
        let id = notify::send_email(
            &t.app,
            "wang@example.org",
            "notice",
            &[("title", "演练"), ("body", "周六上午消防演练。")],
        )
        .await
        .unwrap();
        let mut sent = false;
        for _ in 0..200 {
            if store_notify::state(t.store(), id)
                .await
                .unwrap()
                .unwrap()
                .status
                == "sent"
            {
                sent = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        bg.stop().await;
        assert!(sent, "the dispatcher delivered the e-mail");
        let out = notify::outbox_messages(&t.app, ChannelKind::Email)
            .await
            .unwrap();
        assert_eq!(out[0].subject.as_deref(), Some("【安心社区】演练"));
    }
);

// ---- jobs ------------------------------------------------------------------------------------

both_stores!(
    two_processes_race_for_fifty_jobs_each_runs_once,
    |t: TestApp| async move {
        let other = open_again(&t, 4343).await;
        let seen: Arc<Mutex<Vec<(Uuid, &'static str)>>> = Arc::new(Mutex::new(Vec::new()));
        for (app, name) in [(&t.app, "a"), (&other, "b")] {
            let seen = seen.clone();
            app.jobs.register("test.count", move |_app, job| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((job.id, name));
                    tokio::time::sleep(StdDuration::from_millis(3)).await;
                    Ok(())
                }
            });
        }
        let now = t.clock.now();
        t.store()
            .write(WriteCtx::system("test"), move |tx| {
                for i in 0..50 {
                    store_jobs::enqueue(
                        tx,
                        "test.count",
                        &serde_json::json!({ "i": i }),
                        now,
                        None,
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();

        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        for (app, name) in [(&t.app, "a"), (&other, "b")] {
            for w in 0..3 {
                workers.push(tokio::spawn(jobs::run_worker(
                    app.clone(),
                    format!("{name}{w}"),
                    rx.clone(),
                )));
            }
        }
        for _ in 0..1500 {
            if count(t.store(), "SELECT count(*) FROM jobs WHERE status = 'done'").await == 50 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM jobs WHERE status = 'done'").await,
            50
        );
        let seen = seen.lock().unwrap().clone();
        let mut runs: HashMap<Uuid, usize> = HashMap::new();
        for (id, _) in &seen {
            *runs.entry(*id).or_default() += 1;
        }
        assert_eq!(runs.len(), 50);
        assert!(runs.values().all(|n| *n == 1), "every job ran exactly once");
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM jobs WHERE attempts <> 1").await,
            0
        );
    }
);

both_stores!(
    a_crashed_workers_job_is_taken_over_after_its_lease,
    |t: TestApp| async move {
        let now = t.clock.now();
        let id = t
            .store()
            .write(WriteCtx::system("test"), move |tx| {
                store_jobs::enqueue(tx, "test.x", &serde_json::json!({}), now, None)
            })
            .await
            .unwrap()
            .unwrap();
        let lease = Duration::seconds(60);
        let crashed = store_jobs::claim(t.store(), "crashed", now, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((crashed.id, crashed.attempts), (id, 1));
        // While the lease holds, nobody else gets it.
        assert!(
            store_jobs::claim(t.store(), "b", now + Duration::seconds(59), lease)
                .await
                .unwrap()
                .is_none()
        );
        t.clock.advance(Duration::seconds(61));
        let later = t.clock.now();
        let taken = store_jobs::claim(t.store(), "b", later, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (taken.id, taken.attempts, taken.lease_owner.as_str()),
            (id, 2, "b")
        );
        // The crashed worker coming back cannot complete what it no longer holds.
        assert!(!store_jobs::complete(t.store(), id, "crashed", later)
            .await
            .unwrap());
        assert!(store_jobs::complete(t.store(), id, "b", later)
            .await
            .unwrap());
        assert_eq!(
            store_jobs::state(t.store(), id)
                .await
                .unwrap()
                .unwrap()
                .status,
            "done"
        );
    }
);

both_stores!(a_job_survives_reopening_the_app, |t: TestApp| async move {
    let mut t = t;
    let at = t.clock.now() + Duration::hours(1);
    let id = jobs::enqueue(
        &t.app,
        "test.later",
        serde_json::json!({ "n": 7 }),
        at,
        Some("later-1"),
    )
    .await
    .unwrap()
    .unwrap();
    // Same unique key: not added twice.
    assert!(jobs::enqueue(
        &t.app,
        "test.later",
        serde_json::json!({}),
        at,
        Some("later-1")
    )
    .await
    .unwrap()
    .is_none());
    let reopened = open_again(&t, 77).await;
    t.app = reopened;
    let ran = Arc::new(Mutex::new(None));
    let r = ran.clone();
    t.app.jobs.register("test.later", move |_app, job| {
        let r = r.clone();
        async move {
            *r.lock().unwrap() = Some(job.payload["n"].as_i64());
            Ok(())
        }
    });
    assert!(
        jobs::run_one(&t.app, "w").await.unwrap().is_none(),
        "not due yet"
    );
    t.clock.advance(Duration::hours(1));
    let (job, outcome) = jobs::run_one(&t.app, "w").await.unwrap().unwrap();
    assert_eq!((job.id, outcome), (id, RunOutcome::Done));
    assert_eq!(*ran.lock().unwrap(), Some(Some(7)));
});

both_stores!(
    a_failing_job_is_retried_then_marked_failed,
    |t: TestApp| async move {
        t.app.jobs.register("test.boom", |_app, _job| async {
            anyhow::bail!("the upstream refused")
        });
        let now = t.clock.now();
        let id = t
            .store()
            .write(WriteCtx::system("test"), move |tx| {
                store_jobs::enqueue_job(
                    tx,
                    &NewJob {
                        kind: "test.boom",
                        payload: serde_json::json!({}),
                        run_at: now,
                        unique_key: None,
                        max_attempts: 3,
                    },
                )
            })
            .await
            .unwrap()
            .unwrap();
        let (_, o) = jobs::run_one(&t.app, "w").await.unwrap().unwrap();
        assert_eq!(o, RunOutcome::Retry(t.clock.now() + store_jobs::backoff(1)));
        assert!(
            jobs::run_one(&t.app, "w").await.unwrap().is_none(),
            "backing off"
        );
        t.clock.advance(store_jobs::backoff(1));
        let (_, o) = jobs::run_one(&t.app, "w").await.unwrap().unwrap();
        assert_eq!(o, RunOutcome::Retry(t.clock.now() + store_jobs::backoff(2)));
        t.clock.advance(store_jobs::backoff(2));
        let (_, o) = jobs::run_one(&t.app, "w").await.unwrap().unwrap();
        assert_eq!(o, RunOutcome::Failed);
        let st = store_jobs::state(t.store(), id).await.unwrap().unwrap();
        assert_eq!((st.status.as_str(), st.attempts), ("failed", 3));
        assert_eq!(st.last_error.as_deref(), Some("the upstream refused"));
        t.clock.advance(Duration::days(1));
        assert!(jobs::run_one(&t.app, "w").await.unwrap().is_none());
    }
);

both_stores!(
    the_nightly_schedule_is_enqueued_once_by_two_processes,
    |t: TestApp| async move {
        let other = open_again(&t, 99).await;
        // 2026-11-02 01:00 UTC is 09:00 in Shanghai: the next 03:00 is tomorrow's.
        let a = jobs::schedule_tick(&t.app).await.unwrap();
        let b = jobs::schedule_tick(&other).await.unwrap();
        assert_eq!(a + b, 1);
        assert_eq!(jobs::schedule_tick(&t.app).await.unwrap(), 0);
        let (key, run_at): (String, DateTime<Utc>) = t
            .store()
            .read(|c, _| {
                let r = c
                    .query_one(
                        "SELECT unique_key, run_at FROM jobs WHERE kind = 'retention.purge'",
                        &[],
                    )?
                    .unwrap();
                Ok((r.get("unique_key")?, r.get("run_at")?))
            })
            .await
            .unwrap();
        assert_eq!(key, "retention.purge@2026-11-03T03:00");
        assert_eq!(run_at, Utc.with_ymd_and_hms(2026, 11, 2, 19, 0, 0).unwrap());

        t.clock.set(run_at + Duration::seconds(1));
        let (job, outcome) = jobs::run_one(&other, "w").await.unwrap().unwrap();
        assert_eq!(
            (job.kind.as_str(), outcome),
            (retention::JOB_KIND, RunOutcome::Done)
        );
        assert_eq!(
            jobs::schedule_tick(&t.app).await.unwrap() + jobs::schedule_tick(&other).await.unwrap(),
            1
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM jobs WHERE kind = 'retention.purge'"
            )
            .await,
            2
        );
    }
);

// ---- live events -----------------------------------------------------------------------------

both_stores!(
    live_events_arrive_in_commit_order,
    |t: TestApp| async move {
        let city = insert_node(t.store(), "成都市", None).await;
        let mut stream = Box::pin(live::stream_for(&t.app, |ev| ev.kind == "nodes"));
        // The stream starts at its first poll: a warm-up write shows it is listening.
        let store = t.store().clone();
        let warm = tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(50)).await;
            insert_node(&store, "warm-up", Some(city)).await
        });
        let first = tokio::time::timeout(StdDuration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.record_id, warm.await.unwrap());
        assert_eq!(
            first.place.node_id,
            Some(first.record_id),
            "a node sits at itself"
        );

        let mut writers = Vec::new();
        for i in 0..40 {
            let store = t.store().clone();
            writers.push(tokio::spawn(async move {
                insert_node(&store, &format!("社区{i}"), Some(city)).await
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let mut last = first.pos;
        for _ in 0..40 {
            let ev = tokio::time::timeout(StdDuration::from_secs(10), stream.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ev.pos, last + 1, "gap-free, in commit order");
            assert_eq!(ev.place.node_id, Some(ev.record_id));
            last = ev.pos;
        }
    }
);

both_stores!(
    a_lagged_receiver_still_sees_every_event,
    |t: TestApp| async move {
        let city = insert_node(t.store(), "成都市", None).await;
        let start = live::current_pos(&t.app).await.unwrap();
        let mut stream = Box::pin(live::stream_since(&t.app, start, |_| true));
        // More events than the broadcast channel holds, before the stream reads any.
        let n = 4200;
        let ids: Vec<Uuid> = t
            .store()
            .write(WriteCtx::system("bulk"), move |tx| {
                let now = tx.now();
                let mut ids = Vec::new();
                for i in 0..n {
                    let id = tx.new_id();
                    tx.insert(
                        "nodes",
                        &[
                            ("id", id.into()),
                            ("parent_id", city.into()),
                            ("level", "community".into()),
                            ("name", format!("社区{i}").into()),
                            ("created_at", now.into()),
                            ("updated_at", now.into()),
                        ],
                    )?;
                    ids.push(id);
                }
                Ok(ids)
            })
            .await
            .unwrap();
        let tail = insert_node(t.store(), "最后", Some(city)).await;
        let store = t.store().clone();
        let gone = ids[0];
        store
            .write(WriteCtx::system("del"), move |tx| tx.delete("nodes", gone))
            .await
            .unwrap();

        let mut got = Vec::new();
        while got.len() < n + 2 {
            let ev = tokio::time::timeout(StdDuration::from_secs(20), stream.next())
                .await
                .unwrap()
                .unwrap();
            got.push(ev);
        }
        for (i, ev) in got.iter().enumerate() {
            assert_eq!(ev.pos, start + 1 + i64::try_from(i).unwrap());
            assert_eq!(
                ev.place.node_id,
                Some(ev.record_id),
                "place found for event {}",
                ev.pos
            );
        }
        assert_eq!(
            got[..n].iter().map(|e| e.record_id).collect::<Vec<_>>(),
            ids
        );
        assert_eq!(got[n].record_id, tail);
        assert_eq!(
            (got[n + 1].record_id, got[n + 1].op),
            (gone, anxin_store::Op::Delete)
        );
    }
);

// ---- retention -------------------------------------------------------------------------------

async fn seed_operational(t: &TestApp, user: Uuid, tag: &'static str) {
    let now = t.clock.now();
    let env = t.store().env().clone();
    t.store()
        .write(WriteCtx::system("seed"), move |tx| {
            let sid = tx.new_id();
            tx.execute_unlogged(
                "INSERT INTO sessions (id, token_hash, user_id, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6)",
                &params![sid, sid.as_bytes().to_vec(), user, tag, now, now],
            )?;
            let cid = tx.new_id();
            tx.execute_unlogged(
                "INSERT INTO login_codes (id, phone_bidx, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &params![cid, env.keys.blind("test", tag), vec![1u8], now, now + Duration::minutes(5)],
            )?;
            let finished = tx.new_id();
            tx.execute_unlogged(
                "INSERT INTO jobs (id, kind, payload, run_at, status, attempts, created_at, finished_at) \
                 VALUES ($1, $2, '{}', $3, 'done', 1, $3, $3)",
                &params![finished, format!("done.{tag}"), now],
            )?;
            anxin_store::audit::record(tx, anxin_store::audit::AuditEntry::new(anxin_store::audit::action::LOGIN).actor(Some(user)))?;
            Ok(())
        })
        .await
        .unwrap();
    let phone = Phone::parse("13700137000").unwrap();
    notify::send_login_code(&t.app, &phone, tag).await.unwrap();
}

both_stores!(
    retention_removes_old_rows_and_keeps_young_ones,
    |t: TestApp| async move {
        let env = t.store().env().clone();
        let user = t
            .store()
            .write(WriteCtx::system("seed"), move |tx| {
                let id = tx.new_id();
                let now = tx.now();
                env.keys.new_data_key(tx.conn(), id, now)?;
                tx.insert(
                    "users",
                    &[
                        ("id", id.into()),
                        ("key_id", id.into()),
                        ("kind", "resident".into()),
                        ("display_name", "居民".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                Ok(id)
            })
            .await
            .unwrap();
        seed_operational(&t, user, "old").await;
        // A queued job is not finished: age does not remove it.
        let then = t.clock.now();
        jobs::enqueue(&t.app, "test.someday", serde_json::json!({}), then, None)
            .await
            .unwrap();
        let old_key: Uuid = t
            .store()
            .read(|c, _| {
                c.query_one("SELECT key_id FROM notifications", &[])?
                    .unwrap()
                    .get("key_id")
            })
            .await
            .unwrap();

        t.clock.advance(Duration::days(200));
        seed_operational(&t, user, "young").await;

        let report = retention::purge(&t.app).await.unwrap();
        for kind in [
            "sessions",
            "login_codes",
            "jobs",
            "notifications",
            "audit_log",
        ] {
            assert_eq!(report.rows(kind), 1, "{kind}: {report:?}");
        }
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM sessions WHERE csrf = 'young'"
            )
            .await,
            1
        );
        assert_eq!(count(t.store(), "SELECT count(*) FROM sessions").await, 1);
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM login_codes").await,
            1
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM jobs WHERE kind = 'done.young'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM jobs WHERE kind = 'test.someday'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM jobs WHERE kind = 'done.old'"
            )
            .await,
            0
        );
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM notifications").await,
            1
        );
        assert_eq!(count(t.store(), "SELECT count(*) FROM audit_log").await, 1);
        let shredded = t
            .store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM data_keys WHERE id = $1",
                    &params![old_key],
                )
            })
            .await
            .unwrap();
        assert_eq!(shredded, 0, "the old notification's key is shredded");
        let verify = t
            .store()
            .read(|c, _| anxin_store::audit::verify(c))
            .await
            .unwrap();
        assert!(
            verify.ok(),
            "the audit chain still verifies after the purge: {verify:?}"
        );

        // Nothing more to do on a second run.
        let again = retention::purge(&t.app).await.unwrap();
        assert!(again.purged.iter().all(|p| p.rows == 0), "{again:?}");
    }
);

// ---- backup and restore ----------------------------------------------------------------------

const CANARY: &str = "13912345678";

/// Records of several kinds, a sealed phone (the canary) and its blind index.
async fn seed_records(t: &TestApp) -> Uuid {
    let city = insert_node(t.store(), "成都市", None).await;
    let env = t.store().env().clone();
    let person = t
        .store()
        .write(WriteCtx::system("seed"), move |tx| {
            let now = tx.now();
            let community = tx.new_id();
            tx.insert(
                "nodes",
                &[
                    ("id", community.into()),
                    ("parent_id", city.into()),
                    ("level", "community".into()),
                    ("name", "玉林社区".into()),
                    ("rural", true.into()),
                    ("lon", 104.0575.into()),
                    ("lat", 30.6284.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            // A node merged into another: a self-reference besides parent_id.
            let old = tx.new_id();
            let newer = tx.new_id();
            for (id, name) in [(old, "旧社区"), (newer, "新社区")] {
                tx.insert(
                    "nodes",
                    &[
                        ("id", id.into()),
                        ("parent_id", city.into()),
                        ("level", "community".into()),
                        ("name", name.into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
            }
            tx.update(
                "nodes",
                old,
                &[("status", "retired".into()), ("merged_into", newer.into())],
            )?;
            let facility = tx.new_id();
            tx.insert(
                "facilities",
                &[
                    ("id", facility.into()),
                    ("node_id", community.into()),
                    ("kind", "shelter".into()),
                    ("name", "玉林中学避难场所".into()),
                    ("capacity", 1200i64.into()),
                    ("status", "ready".into()),
                    (
                        "attrs",
                        serde_json::json!({ "floors": 3, "名称": "操场" }).into(),
                    ),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let person = tx.new_id();
            env.keys.new_data_key(tx.conn(), person, now)?;
            let phone_ct = env
                .keys
                .seal(tx.conn(), person, "people.phone", CANARY.as_bytes())?;
            tx.insert(
                "people",
                &[
                    ("id", person.into()),
                    ("key_id", person.into()),
                    ("community_id", community.into()),
                    ("name", "张三".into()),
                    (
                        "birth_date",
                        chrono::NaiveDate::from_ymd_opt(1950, 3, 1).unwrap().into(),
                    ),
                    ("population_type", "registered".into()),
                    ("doc_type", "resident_id".into()),
                    ("phone_ct", phone_ct.into()),
                    ("phone_bidx", env.keys.blind("people.phone", CANARY).into()),
                    ("phone_mask", "139****5678".into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            anxin_store::audit::record(
                tx,
                anxin_store::audit::AuditEntry::new(anxin_store::audit::action::EXPORT),
            )?;
            Ok(person)
        })
        .await
        .unwrap();
    let phone = Phone::parse(CANARY).unwrap();
    notify::send_login_code(&t.app, &phone, "777777")
        .await
        .unwrap();
    jobs::enqueue(
        &t.app,
        "test.later",
        serde_json::json!({ "x": [1, 2] }),
        t.clock.now(),
        Some("k"),
    )
    .await
    .unwrap();
    person
}

/// Every row of every table, from a backup file, by table, sorted.
fn rows_of(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("end").is_some() {
            continue;
        }
        let t = v["t"].as_str().unwrap().to_owned();
        out.entry(t)
            .or_default()
            .push(normalize(&v["r"]).to_string());
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

/// Backend spellings made equal: booleans as 0/1, JSON kept as text parsed.
fn normalize(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Bool(b) => J::from(i64::from(*b)),
        J::String(s) if s.starts_with('{') || s.starts_with('[') => {
            serde_json::from_str::<J>(s).map_or_else(|_| v.clone(), |j| normalize(&j))
        }
        J::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        J::Array(a) => J::Array(a.iter().map(normalize).collect()),
        _ => v.clone(),
    }
}

async fn check_restore(
    source: &TestApp,
    backup_file: &Path,
    target_backend: Backend,
    person: Uuid,
) {
    let target = TestApp::new(target_backend).await;
    let rep = backup::restore(&target.app, backup_file).await.unwrap();
    assert!(rep.rows > 0 && rep.reopen_required);
    // Restored data is what was backed up, row for row.
    let again = target.dir.path().join("again.jsonl");
    backup::backup(&target.app, &again).await.unwrap();
    let plain = source.dir.path().join("anxin.jsonl");
    let (a, b) = (rows_of(&plain), rows_of(&again));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (table, rows) in &a {
        assert_eq!(
            rows, &b[table],
            "table {table} after {:?} → {target_backend:?}",
            source.backend
        );
    }
    // Reopened with the same master key, the sealed value opens and the blind index matches.
    let reopened = open_again(&target, 5).await;
    let (phone, bidx_ok) = reopened
        .store
        .read(move |c, env| {
            let r = c
                .query_one(
                    "SELECT phone_ct, phone_bidx FROM people WHERE id = $1",
                    &params![person],
                )?
                .unwrap();
            let phone = env
                .keys
                .open_string(c, "people.phone", &r.get::<Vec<u8>>("phone_ct")?)?;
            Ok((
                phone,
                r.get::<Vec<u8>>("phone_bidx")? == env.keys.blind("people.phone", CANARY),
            ))
        })
        .await
        .unwrap();
    assert_eq!(phone, CANARY);
    assert!(bidx_ok);
    // The restored change log carries on without gaps.
    let next = insert_node(&reopened.store, "新增", None).await;
    let pos_ok = reopened
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM change_log WHERE record_id = $1 AND pos = (SELECT max(pos) FROM change_log)",
                &params![next],
            )
        })
        .await
        .unwrap();
    assert_eq!(pos_ok, 1);
    // A database with records in it is refused.
    let err = backup::restore(&reopened, backup_file).await.unwrap_err();
    assert!(format!("{err:#}").contains("empty"), "{err:#}");
}

both_stores!(
    backup_restores_into_the_same_and_the_other_backend,
    |t: TestApp| async move {
        let person = seed_records(&t).await;
        let plain = t.dir.path().join("anxin.jsonl");
        let rep = backup::backup(&t.app, &plain).await.unwrap();
        assert!(!rep.compressed && rep.rows > 0 && rep.tables["people"] == 1);
        let text = std::fs::read_to_string(&plain).unwrap();
        assert!(
            !text.contains(CANARY),
            "the sealed phone is not in the backup in clear"
        );
        assert!(!text.contains("777777"), "nor the sign-in code");
        assert!(!text.contains("test1:aes-256-gcm"), "nor the master key");
        let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(header["format"], "anxin-backup");
        assert_eq!(header["schema_version"], anxin_store::migrate::latest());

        let gz = t.dir.path().join("anxin.jsonl.gz");
        let rep_gz = backup::backup(&t.app, &gz).await.unwrap();
        assert!(rep_gz.compressed && rep_gz.bytes < rep.bytes);

        let other = match t.backend {
            Backend::Sqlite => Backend::Postgres,
            Backend::Postgres => Backend::Sqlite,
        };
        check_restore(&t, &plain, t.backend, person).await;
        check_restore(&t, &gz, other, person).await;
    }
);

both_stores!(
    restore_refuses_another_schema_version_or_a_cut_file,
    |t: TestApp| async move {
        seed_records(&t).await;
        let plain = t.dir.path().join("anxin.jsonl");
        backup::backup(&t.app, &plain).await.unwrap();
        let text = std::fs::read_to_string(&plain).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();

        let mut header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        header["schema_version"] = serde_json::json!(1);
        let h = header.to_string();
        let old = t.dir.path().join("old.jsonl");
        std::fs::write(
            &old,
            [h.as_str()]
                .iter()
                .chain(lines[1..].iter())
                .copied()
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        let target = TestApp::new(t.backend).await;
        let err = backup::restore(&target.app, &old).await.unwrap_err();
        assert!(format!("{err:#}").contains("schema version"), "{err:#}");

        lines.pop();
        let cut = t.dir.path().join("cut.jsonl");
        std::fs::write(&cut, lines.join("\n")).unwrap();
        let err = backup::restore(&target.app, &cut).await.unwrap_err();
        assert!(format!("{err:#}").contains("incomplete"), "{err:#}");
        // Nothing was written by either attempt.
        assert_eq!(count(target.store(), "SELECT count(*) FROM nodes").await, 0);
        assert_eq!(
            count(target.store(), "SELECT count(*) FROM keyring").await,
            1
        );
    }
);

both_stores!(
    resuming_replays_what_was_missed_without_waiting,
    |t: TestApp| async move {
        let city = insert_node(t.store(), "成都市", None).await;
        let after = live::current_pos(&t.app).await.unwrap();
        let a = insert_node(t.store(), "锦江区", Some(city)).await;
        let b = insert_node(t.store(), "青羊区", Some(city)).await;
        // Nothing is written after the stream opens: the replay alone must deliver both.
        let mut stream = Box::pin(live::stream_since(&t.app, after, |ev| ev.kind == "nodes"));
        let mut got = Vec::new();
        for _ in 0..2 {
            let ev = tokio::time::timeout(StdDuration::from_secs(5), stream.next())
                .await
                .expect("replayed without a new write")
                .unwrap();
            got.push(ev.record_id);
        }
        assert_eq!(got, vec![a, b]);
    }
);
