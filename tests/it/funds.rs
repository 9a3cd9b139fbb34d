//! Stories of the emergency fund ledger and its public view (owner: fund ledger): balances over
//! income, spending and a reversal; overdraft refused with nothing written; a reversal neither
//! reversed nor repeated; receipts checked by type and size and scoped; the public page showing
//! no personal data and no unpublished receipt; scope isolation.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::{Role, Scope};
use anxin_store::scope::Caller;
use anxin_store::supplies::funds::{self, AccountInput, EntryInput};
use anxin_store::{Store, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::inspections::multipart;
use crate::support::TestApp;
use crate::world::{self, call, code, staff, User, World};

const CODE_A: &str = "510104017001";
const DONOR: &str = "王大善人";
const DONOR_PHONE: &str = "13912345678";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png body";
const PDF: &[u8] = b"%PDF-1.7\n% a receipt\n";

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): community A's account with an income, a spending and its
/// receipt.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    store
        .write(WriteCtx::system("funds-a1"), move |tx| {
            let sys = Caller::system();
            let a = funds::create_account(
                tx,
                &sys,
                &AccountInput {
                    node_id: Some(comm_a),
                    name: None,
                    published: Some(true),
                },
            )?;
            funds::record(
                tx,
                &sys,
                &EntryInput {
                    account_id: Some(a.id),
                    direction: Some("income".into()),
                    kind: Some("fiscal".into()),
                    amount_fen: Some(1_000_000),
                    description: Some("街道应急资金拨款".into()),
                    counterparty: Some("街道办事处".into()),
                    ..EntryInput::default()
                },
                false,
            )?;
            let s = funds::record(
                tx,
                &sys,
                &EntryInput {
                    account_id: Some(a.id),
                    direction: Some("spending".into()),
                    kind: Some("purchase".into()),
                    amount_fen: Some(120_000),
                    description: Some("采购应急照明灯".into()),
                    counterparty: Some("某五金店".into()),
                    ..EntryInput::default()
                },
                false,
            )?;
            let f = funds::add_attachment(tx, &sys, s.id, "发票.png", PNG, None)?;
            Ok(HashMap::from([
                ("fund_accounts", a.id),
                ("fund_entries", s.id),
                ("fund_attachments", f.id),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/funds/accounts" => json!({ "node_id": w.comm_a, "name": "闯入账户" }),
        "/api/v1/funds/accounts/{id}" => json!({ "name": "闯入账户", "published": false }),
        "/api/v1/funds/entries" => json!({
            "account_id": Uuid::now_v7(), "direction": "income", "kind": "fiscal",
            "amount_fen": 100, "description": "闯入收入"
        }),
        "/api/v1/funds/entries/{id}/reverse" => json!({ "reason": "闯入冲销" }),
        "/api/v1/funds/entries/{id}/attachments" => json!({}),
        "/api/v1/funds/attachments/{id}" => json!({ "is_public": false }),
        "/manage/funds" => json!({ "node_id": w.comm_a.to_string(), "name": "闯入账户" }),
        "/manage/funds/{id}" => json!({ "name": "闯入账户", "published": "0" }),
        "/manage/funds/{id}/entries" => json!({
            "direction": "income", "kind": "fiscal", "amount": "1", "description": "闯入收入"
        }),
        "/manage/funds/entries/{id}/reverse" => json!({ "reason": "闯入冲销" }),
        "/manage/funds/entries/{id}/attachments" => json!({}),
        "/manage/funds/attachments/{id}" => json!({ "is_public": "0" }),
        _ => return None,
    })
}

/// Give community A its 12-digit code (the public page's address).
async fn code_a(t: &TestApp, w: &World) {
    let comm_a = w.comm_a;
    t.store()
        .write(WriteCtx::system("funds-code"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "node_codes",
                &[
                    ("id", id.into()),
                    ("node_id", comm_a.into()),
                    ("scheme", "stats12".into()),
                    ("code", CODE_A.into()),
                    ("valid_from", now.into()),
                    ("source", "test".into()),
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

async fn open_account(base: &str, u: &User, node: Uuid, published: bool) -> Value {
    let (s, a) = call(
        base,
        u,
        "POST",
        "/api/v1/funds/accounts",
        Some(json!({ "node_id": node, "published": published })),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    a
}

async fn entry(base: &str, u: &User, body: Value) -> (u16, Value) {
    call(base, u, "POST", "/api/v1/funds/entries", Some(body)).await
}

async fn upload(
    base: &str,
    u: &User,
    entry: &str,
    name: &str,
    bytes: &[u8],
    public: Option<&str>,
) -> (u16, Value) {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("file", Some(name), bytes)];
    if let Some(p) = public {
        parts.push(("is_public", None, p.as_bytes()));
    }
    let (ct, body) = multipart(&parts);
    let r = crate::support::client()
        .post(format!("{base}/api/v1/funds/entries/{entry}/attachments"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

both_stores!(
    balances_over_income_spending_and_reversal,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let wa = staff(
            &t,
            "fund_worker_a",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let a = open_account(&base, &wa, w.comm_a, false).await;
        let acc = id(&a);
        assert_eq!(a["balance_fen"], 0);
        let (s, fiscal) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "fiscal",
                "amount_fen": 500_000, "description": "街道拨款", "counterparty": "街道办事处" }),
        )
        .await;
        assert_eq!(s, 201, "{fiscal}");
        assert_eq!(fiscal["seq"], 1);
        assert_eq!(fiscal["recorder_role"], "community_worker");
        let (s, don) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "donation",
                "amount_fen": 12_345, "description": "居民捐款", "counterparty": DONOR,
                "anonymous": true, "contact_phone": DONOR_PHONE }),
        )
        .await;
        assert_eq!(s, 201, "{don}");
        assert_eq!(don["contact_mask"], "139****5678");
        assert!(!don.to_string().contains(DONOR_PHONE));
        let (s, buy) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "purchase",
                "amount_fen": 200_000, "description": "采购救生衣", "counterparty": "某商行" }),
        )
        .await;
        assert_eq!(s, 201, "{buy}");
        let (s, maint) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "maintenance",
                "amount_fen": 50_000, "description": "抽水泵保养" }),
        )
        .await;
        assert_eq!(s, 201, "{maint}");
        // The pump bill was entered twice in error: reverse it.
        let (s, rev) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/funds/entries/{}/reverse", id(&maint)),
            Some(json!({ "reason": "重复录入" })),
        )
        .await;
        assert_eq!(s, 201, "{rev}");
        assert_eq!(rev["amount_fen"], -50_000);
        assert_eq!(rev["reverses_id"], maint["id"]);
        assert_eq!(rev["kind"], "maintenance");

        let (s, b) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/funds/accounts/{acc}/balances"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["income_fen"], 512_345);
        assert_eq!(b["spending_fen"], 200_000);
        assert_eq!(b["balance_fen"], 312_345);
        let kind = |list: &Value, k: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|x| x["kind"] == k)
                .unwrap()["amount_fen"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(kind(&b["income_by_kind"], "fiscal"), 500_000);
        assert_eq!(kind(&b["income_by_kind"], "donation"), 12_345);
        assert_eq!(kind(&b["income_by_kind"], "recycling"), 0);
        assert_eq!(kind(&b["spending_by_kind"], "purchase"), 200_000);
        assert_eq!(kind(&b["spending_by_kind"], "maintenance"), 0);
        let months = b["months"].as_array().unwrap();
        assert_eq!(months.len(), 1);
        assert_eq!(months[0]["closing_fen"], 312_345);
        // The account's own totals agree.
        let (_, a) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/funds/accounts/{acc}"),
            None,
        )
        .await;
        assert_eq!(a["balance_fen"], 312_345);
        assert_eq!(a["entry_count"], 5);
        // Filters: by direction, kind and month.
        let (_, list) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/funds/entries?account_id={acc}&direction=spending"),
            None,
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 3);
        let (_, list) = call(
            &base,
            &wa,
            "GET",
            "/api/v1/funds/entries?kind=donation",
            None,
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        let (_, list) = call(
            &base,
            &wa,
            "GET",
            "/api/v1/funds/entries?month=2001-01",
            None,
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 0);
        let (s, e) = call(
            &base,
            &wa,
            "GET",
            "/api/v1/funds/entries?month=2026-13",
            None,
        )
        .await;
        assert_eq!((s, code(&e)), (422, "value.invalid"), "{e}");
        // Every entry went through the change log, and no image carries the donor's phone.
        let logged = count(
            &t,
            "SELECT count(*) FROM change_log WHERE kind = 'fund_entries'",
        )
        .await;
        assert_eq!(logged, 5);
        let leaked = count(
            &t,
            "SELECT count(*) FROM change_log WHERE CAST(after AS TEXT) LIKE '%13912345678%'",
        )
        .await;
        assert_eq!(leaked, 0);
    }
);

both_stores!(
    overdraft_refused_and_nothing_written,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let wa = staff(
            &t,
            "fund_worker_a",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let acc = id(&open_account(&base, &wa, w.comm_a, false).await);
        let (s, _) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "recycling",
                "amount_fen": 10_000, "description": "废品回收" }),
        )
        .await;
        assert_eq!(s, 201);
        let before = count(&t, "SELECT count(*) FROM fund_entries").await;
        let log_before = count(&t, "SELECT count(*) FROM change_log").await;
        let (s, e) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "drills",
                "amount_fen": 10_001, "description": "演练" }),
        )
        .await;
        assert_eq!((s, code(&e)), (409, "fund.insufficient"), "{e}");
        assert_eq!(count(&t, "SELECT count(*) FROM fund_entries").await, before);
        assert_eq!(
            count(&t, "SELECT count(*) FROM change_log").await,
            log_before
        );
        assert_eq!(
            count(&t, "SELECT last_seq FROM fund_accounts").await,
            1,
            "the refused entry took no number"
        );
        // Exactly the balance is fine.
        let (s, spent) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "drills",
                "amount_fen": 10_000, "description": "演练" }),
        )
        .await;
        assert_eq!(s, 201, "{spent}");
        // Validation names the field.
        for (body, want, field) in [
            (
                json!({ "amount_fen": 0 }),
                "fund.amount_positive",
                "amount_fen",
            ),
            (
                json!({ "amount_fen": 1_000_000_001i64 }),
                "fund.amount_too_large",
                "amount_fen",
            ),
            (json!({ "kind": "donation" }), "fund.kind_invalid", "kind"),
            (
                json!({ "occurred_on": "2999-01-01" }),
                "fund.date_in_future",
                "occurred_on",
            ),
            (
                json!({ "description": "" }),
                "value.required",
                "description",
            ),
            (
                json!({ "anonymous": true }),
                "fund.anonymous_donation_only",
                "anonymous",
            ),
        ] {
            let mut b = json!({ "account_id": acc, "direction": "spending", "kind": "other",
                            "amount_fen": 1, "description": "x" });
            for (k, v) in body.as_object().unwrap() {
                b[k] = v.clone();
            }
            let (s, e) = entry(&base, &wa, b).await;
            assert_eq!((s, code(&e)), (422, want), "{e}");
            assert_eq!(e["error"]["details"]["field"], field, "{e}");
        }
        // A reversal of income that would overdraw is refused as well.
        let income = {
            let (_, list) = call(
                &base,
                &wa,
                "GET",
                "/api/v1/funds/entries?direction=income",
                None,
            )
            .await;
            id(&list[0])
        };
        let (s, e) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/funds/entries/{income}/reverse"),
            Some(json!({ "reason": "错账" })),
        )
        .await;
        assert_eq!((s, code(&e)), (409, "fund.insufficient"), "{e}");
    }
);

/// With `funds.allow_overdraft` a spending may take the balance below zero.
mod overdraft_allowed_by_config {
    use super::*;
    use crate::support::Backend;

    async fn run(backend: Backend) {
        let t = TestApp::with_config(backend, |c| {
            c.funds.allow_overdraft = true;
        })
        .await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let wa = staff(
            &t,
            "fund_worker_a",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let acc = id(&open_account(&base, &wa, w.comm_a, false).await);
        let (s, e) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "volunteers",
                    "amount_fen": 3_000, "description": "志愿者餐费（先行垫付）" }),
        )
        .await;
        assert_eq!(s, 201, "{e}");
        let (_, a) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/funds/accounts/{acc}"),
            None,
        )
        .await;
        assert_eq!(a["balance_fen"], -3_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

both_stores!(
    reversal_once_and_never_of_a_reversal,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let wa = staff(
            &t,
            "fund_worker_a",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let acc = id(&open_account(&base, &wa, w.comm_a, false).await);
        let (_, inc) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "property_fees",
                "amount_fen": 80_000, "description": "公共收益分成" }),
        )
        .await;
        let path = format!("/api/v1/funds/entries/{}/reverse", id(&inc));
        let (s, e) = call(&base, &wa, "POST", &path, Some(json!({}))).await;
        assert_eq!(
            (s, code(&e)),
            (422, "value.required"),
            "a reason is required: {e}"
        );
        let (s, rev) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "reason": "金额有误" })),
        )
        .await;
        assert_eq!(s, 201, "{rev}");
        let (s, e) = call(&base, &wa, "POST", &path, Some(json!({ "reason": "再冲" }))).await;
        assert_eq!((s, code(&e)), (409, "fund.already_reversed"), "{e}");
        let (s, e) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/funds/entries/{}/reverse", id(&rev)),
            Some(json!({ "reason": "撤销冲销" })),
        )
        .await;
        assert_eq!((s, code(&e)), (409, "fund.reversal_of_reversal"), "{e}");
        assert_eq!(count(&t, "SELECT count(*) FROM fund_entries").await, 2);
        let (_, orig) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/funds/entries/{}", id(&inc)),
            None,
        )
        .await;
        assert_eq!(orig["reversed_by"], rev["id"]);
        assert_eq!(orig["amount_fen"], 80_000, "the original is never edited");
        // No route edits or deletes an entry.
        let (s, _) = call(
            &base,
            &wa,
            "PATCH",
            &format!("/api/v1/funds/entries/{}", id(&inc)),
            Some(json!({ "amount_fen": 1 })),
        )
        .await;
        assert_eq!(s, 405);
        let (s, _) = call(
            &base,
            &wa,
            "DELETE",
            &format!("/api/v1/funds/entries/{}", id(&inc)),
            None,
        )
        .await;
        assert_eq!(s, 405);
    }
);

both_stores!(receipts_checked_and_scoped, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let wa = staff(
        &t,
        "fund_worker_a",
        Role::CommunityWorker,
        Scope::Node(w.comm_a),
    )
    .await;
    let wb = staff(
        &t,
        "fund_worker_b",
        Role::CommunityWorker,
        Scope::Node(w.comm_b),
    )
    .await;
    let acc = id(&open_account(&base, &wa, w.comm_a, false).await);
    let (_, inc) = entry(
        &base,
        &wa,
        json!({ "account_id": acc, "direction": "income", "kind": "fiscal",
                "amount_fen": 100_000, "description": "拨款" }),
    )
    .await;
    let (_, buy) = entry(
        &base,
        &wa,
        json!({ "account_id": acc, "direction": "spending", "kind": "purchase",
                "amount_fen": 10_000, "description": "购买手电" }),
    )
    .await;
    let e = id(&buy);
    let (s, r) = upload(&base, &wa, &e, "a.gif", b"GIF89a....", None).await;
    assert_eq!((s, code(&r)), (422, "attachment.type"), "{r}");
    let (s, r) = upload(&base, &wa, &e, "svg.png", b"<svg xmlns='x'/>", None).await;
    assert_eq!(
        (s, code(&r)),
        (422, "attachment.type"),
        "a name does not make a PNG: {r}"
    );
    let mut big = PNG.to_vec();
    big.resize(8 * 1024 * 1024 + 1, 0);
    let (s, r) = upload(&base, &wa, &e, "big.png", &big, None).await;
    assert!(s == 422 || s == 413, "{s} {r}");
    let (s, r) = upload(&base, &wa, &e, "", b"", None).await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(count(&t, "SELECT count(*) FROM fund_attachments").await, 0);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM attachments WHERE owner_kind = 'fund_entry'"
        )
        .await,
        0
    );
    let (s, r) = upload(&base, &wa, &e, "发票.png", PNG, None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        r["is_public"], true,
        "spending receipts are public by default"
    );
    assert_eq!(r["mime"], "image/png");
    let link = id(&r);
    let (s, r) = upload(&base, &wa, &id(&inc), "拨款文件.pdf", PDF, None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        r["is_public"], false,
        "income papers are private by default"
    );
    // Community B's worker: 404 for the bytes, the upload and the publish switch.
    let path = format!("/api/v1/funds/attachments/{link}");
    let (s, _) = call(&base, &wb, "GET", &path, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &base,
        &wb,
        "PATCH",
        &path,
        Some(json!({ "is_public": false })),
    )
    .await;
    assert_eq!(s, 404);
    let (s, r) = upload(&base, &wb, &e, "x.png", PNG, None).await;
    assert_eq!(s, 404, "{r}");
    let (s, _) = call(
        &base,
        &wb,
        "GET",
        &format!("/api/v1/funds/entries/{e}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // The worker of A reads it back, byte for byte.
    let r = crate::support::client()
        .get(format!("{base}{path}"))
        .header("cookie", &wa.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    let (_, got) = call(
        &base,
        &wa,
        "GET",
        &format!("/api/v1/funds/entries/{e}"),
        None,
    )
    .await;
    assert_eq!(got["attachments"].as_array().unwrap().len(), 1);
});

both_stores!(
    public_page_shows_no_personal_data,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        code_a(&t, &w).await;
        let base = t.serve().await;
        let wa = staff(
            &t,
            "fund_worker_a",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let a = open_account(&base, &wa, w.comm_a, false).await;
        let acc = id(&a);
        let (_, don) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "donation",
                "amount_fen": 66_600, "description": "防汛物资捐款", "counterparty": DONOR,
                "anonymous": true, "contact_phone": DONOR_PHONE }),
        )
        .await;
        let (_, firm) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "income", "kind": "donation",
                "amount_fen": 100_000, "description": "企业捐款", "counterparty": "锦江物业公司" }),
        )
        .await;
        assert_eq!(firm["anonymous"], false);
        let (_, buy) = entry(
            &base,
            &wa,
            json!({ "account_id": acc, "direction": "spending", "kind": "purchase",
                "amount_fen": 30_000, "description": "采购沙袋", "counterparty": "建材店" }),
        )
        .await;
        let (_, public_receipt) = upload(&base, &wa, &id(&buy), "沙袋发票.png", PNG, None).await;
        let (_, private_receipt) =
            upload(&base, &wa, &id(&buy), "内部审批单.pdf", PDF, Some("false")).await;
        let (_, donor_receipt) = upload(&base, &wa, &id(&don), "捐赠收据.pdf", PDF, None).await;
        let anon = crate::support::client();
        // Not published yet: nothing to see.
        let r = anon
            .get(format!("{base}/api/v1/public/funds/{CODE_A}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let r = anon
            .get(format!(
                "{base}/api/v1/public/funds/attachments/{}",
                id(&public_receipt)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "an unpublished account's receipt");
        let (s, _) = call(
            &base,
            &wa,
            "PATCH",
            &format!("/api/v1/funds/accounts/{acc}"),
            Some(json!({ "published": true })),
        )
        .await;
        assert_eq!(s, 200);
        let r = anon
            .get(format!("{base}/api/v1/public/funds/{CODE_A}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["balance_fen"], 66_600 + 100_000 - 30_000);
        assert!(body.contains("匿名"), "{body}");
        assert!(
            body.contains("锦江物业公司"),
            "a named donor is thanked by name"
        );
        assert!(body.contains("采购沙袋"));
        for secret in [
            DONOR,
            DONOR_PHONE,
            "139****5678",
            "fund_worker_a",
            "contact",
        ] {
            assert!(
                !body.contains(secret),
                "the public summary shows {secret}: {body}"
            );
        }
        assert!(body.contains(&id(&public_receipt)));
        assert!(
            !body.contains(&id(&private_receipt)),
            "an unpublished receipt is listed"
        );
        assert!(
            !body.contains(&id(&donor_receipt)),
            "a donor's receipt is listed"
        );
        assert!(
            body.contains("社区工作者"),
            "the recorder is shown as the role"
        );
        // The public receipt is served; the private ones are not.
        let r = anon
            .get(format!(
                "{base}/api/v1/public/funds/attachments/{}",
                id(&public_receipt)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
        for hidden in [&private_receipt, &donor_receipt] {
            let r = anon
                .get(format!(
                    "{base}/api/v1/public/funds/attachments/{}",
                    id(hidden)
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 404);
        }
        // Unknown or malformed codes: 404.
        for c in ["510104017999", "abc", "5101040170011"] {
            let r = anon
                .get(format!("{base}/api/v1/public/funds/{c}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 404, "{c}");
        }
        // The HTML page: the same figures, no personal data.
        let r = anon
            .get(format!("{base}/public/funds/{CODE_A}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("匿名"));
        assert!(html.contains("1,366.00"), "the balance in yuan");
        for secret in [DONOR, DONOR_PHONE, "139****5678", "fund_worker_a"] {
            assert!(!html.contains(secret), "the public page shows {secret}");
        }
        assert!(!html.contains(&id(&private_receipt)));
        // The resident of community A sees the same on the resident end.
        let res = world::user(
            &t,
            "fund_resident",
            anxin_store::accounts::UserKind::Resident,
            None,
            Some(w.person_a1),
        )
        .await;
        let (s, v) = call(&base, &res, "GET", "/api/v1/resident/funds", None).await;
        assert_eq!(s, 200, "{v}");
        assert!(!v.to_string().contains(DONOR));
        let r = crate::support::client()
            .get(format!("{base}/resident/funds"))
            .header("cookie", &res.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("采购沙袋") && !html.contains(DONOR));
        // Withdrawn: gone again.
        call(
            &base,
            &wa,
            "PATCH",
            &format!("/api/v1/funds/accounts/{acc}"),
            Some(json!({ "published": false })),
        )
        .await;
        let r = anon
            .get(format!("{base}/api/v1/public/funds/{CODE_A}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
);

both_stores!(scope_isolation, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let wa = staff(
        &t,
        "fund_worker_a",
        Role::CommunityWorker,
        Scope::Node(w.comm_a),
    )
    .await;
    let wb = staff(
        &t,
        "fund_worker_b",
        Role::CommunityWorker,
        Scope::Node(w.comm_b),
    )
    .await;
    let officer = staff(
        &t,
        "fund_officer",
        Role::DistrictOfficer,
        Scope::Node(w.district),
    )
    .await;
    let grid = staff(&t, "fund_grid", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
    let acc = id(&open_account(&base, &wa, w.comm_a, false).await);
    // One account per community.
    let (s, e) = call(
        &base,
        &wa,
        "POST",
        "/api/v1/funds/accounts",
        Some(json!({ "node_id": w.comm_a })),
    )
    .await;
    assert_eq!((s, code(&e)), (409, "fund.account_exists"), "{e}");
    // Not at a grid's level or outside one's reach.
    let (s, e) = call(
        &base,
        &wb,
        "POST",
        "/api/v1/funds/accounts",
        Some(json!({ "node_id": w.comm_a })),
    )
    .await;
    assert_eq!((s, code(&e)), (422, "record.reference_invalid"), "{e}");
    let (_, inc) = entry(
        &base,
        &wa,
        json!({ "account_id": acc, "direction": "income", "kind": "fiscal",
                "amount_fen": 9_900, "description": "拨款" }),
    )
    .await;
    let eid = id(&inc);
    // B's worker: cannot see the account or the entry, cannot record into it.
    let (_, list) = call(&base, &wb, "GET", "/api/v1/funds/accounts", None).await;
    assert!(!list.to_string().contains(&acc));
    let (_, list) = call(&base, &wb, "GET", "/api/v1/funds/entries", None).await;
    assert!(!list.to_string().contains(&eid));
    let (s, _) = call(
        &base,
        &wb,
        "GET",
        &format!("/api/v1/funds/accounts/{acc}/balances"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, e) = entry(
        &base,
        &wb,
        json!({ "account_id": acc, "direction": "income", "kind": "fiscal",
                "amount_fen": 1, "description": "闯入" }),
    )
    .await;
    assert_eq!((s, code(&e)), (422, "record.reference_invalid"), "{e}");
    let (s, _) = call(
        &base,
        &wb,
        "POST",
        &format!("/api/v1/funds/entries/{eid}/reverse"),
        Some(json!({ "reason": "闯入" })),
    )
    .await;
    assert_eq!(s, 404);
    // The grid worker holds no fund permission: sees nothing.
    let (_, list) = call(&base, &grid, "GET", "/api/v1/funds/entries", None).await;
    assert_eq!(list, json!([]));
    // The district officer reads everything below but records nothing.
    let (s, list) = call(&base, &officer, "GET", "/api/v1/funds/entries", None).await;
    assert_eq!(s, 200);
    assert!(list.to_string().contains(&eid));
    let (s, e) = entry(
        &base,
        &officer,
        json!({ "account_id": acc, "direction": "income", "kind": "fiscal",
                "amount_fen": 1, "description": "区级" }),
    )
    .await;
    assert_eq!((s, code(&e)), (422, "record.reference_invalid"), "{e}");
    let (s, e) = call(
        &base,
        &officer,
        "POST",
        &format!("/api/v1/funds/entries/{eid}/reverse"),
        Some(json!({ "reason": "区级" })),
    )
    .await;
    assert_eq!((s, code(&e)), (403, "fund.not_allowed"), "{e}");
    assert_eq!(count(&t, "SELECT count(*) FROM fund_entries").await, 1);
    // An incident link must be a real incident in reach.
    let (s, e) = entry(
        &base,
        &wa,
        json!({ "account_id": acc, "direction": "spending", "kind": "other",
                "amount_fen": 1, "description": "x", "incident_id": Uuid::now_v7() }),
    )
    .await;
    assert_eq!((s, code(&e)), (422, "record.reference_invalid"), "{e}");
    assert_eq!(e["error"]["details"]["field"], "incident_id");
    // So must a supplies order.
    let (s, e) = entry(
        &base,
        &wa,
        json!({ "account_id": acc, "direction": "spending", "kind": "purchase",
                "amount_fen": 1, "description": "x", "order_id": Uuid::now_v7() }),
    )
    .await;
    assert_eq!((s, code(&e)), (422, "record.reference_invalid"), "{e}");
    assert_eq!(e["error"]["details"]["field"], "order_id");
});
