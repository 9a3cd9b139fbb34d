//! No accepted write is lost on a crash: a real `anxin serve` process on a private SQLite file
//! is killed (SIGKILL) while clients are writing; after a restart every write it acknowledged is
//! there.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const PASSWORD: &str = "Crash-test-2026";

/// `anxin` on a private SQLite file and key file in `dir`, quiet, without request limits.
pub(crate) fn anxin(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anxin"));
    c.current_dir(dir)
        .env(
            "ANXIN_DATABASE__URL",
            format!("sqlite://{}", dir.join("anxin.db").display()),
        )
        .env("ANXIN_CRYPTO__MASTER_KEY_FILE", dir.join("master.keys"))
        .env("ANXIN_LOG__FILTER", "error")
        .env("ANXIN_SERVER__RATE_PER_MINUTE_PER_ADDRESS", "100000000")
        .env("ANXIN_AUTH__RATE_PER_MINUTE_PER_ACCOUNT", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `anxin serve` on a free port, once it answers `/readyz`.
pub(crate) async fn start(dir: &std::path::Path) -> (Child, String) {
    let port = free_port();
    let mut child = anxin(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..500 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("anxin serve did not become ready");
}

async fn login(base: &str) -> (reqwest::Client, String) {
    let c = crate::support::client();
    let r: Value = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "crash", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (c, r["csrf"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/divisions/chengdu");
    assert!(anxin(dir.path())
        .args(["import", "divisions", "--dir", fixtures])
        .status()
        .unwrap()
        .success());
    assert!(anxin(dir.path())
        .env("ANXIN_NEW_PASSWORD", PASSWORD)
        .args([
            "admin",
            "create-user",
            "--username",
            "crash",
            "--display-name",
            "崩溃测试",
            "--role",
            "community_worker",
            "--scope",
            "510104017001"
        ])
        .status()
        .unwrap()
        .success());

    let (mut child, base) = start(dir.path()).await;
    let (client, csrf) = login(&base).await;
    let community: Value = client
        .get(format!("{base}/api/v1/nodes/by-code/510104017001"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let community = community["id"].as_str().unwrap().to_owned();

    // Eight writers in parallel, each recording what the server acknowledged.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, csrf, base, community, acked) = (
            client.clone(),
            csrf.clone(),
            base.clone(),
            community.clone(),
            acked.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({ "name": format!("写入{w}-{i}"), "population_type": "resident", "doc_type": "none", "community_id": community });
                let Ok(r) = client.post(format!("{base}/api/v1/people")).header("x-csrf-token", &csrf).json(&body).send().await else {
                    return;
                };
                if r.status().as_u16() != 201 {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else { return };
                acked.lock().unwrap().push(v["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let (mut child, base) = start(dir.path()).await;
    let (client, _) = login(&base).await;
    let mut missing = Vec::new();
    for id in &acked {
        let r = client
            .get(format!("{base}/api/v1/people/{id}"))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != 200 {
            missing.push(id.clone());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acked.len()
    );
}
