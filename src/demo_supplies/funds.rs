//! The demo's funds (owner: fund ledger): a year of the demo community's emergency fund — the
//! street's allocation, donations (one anonymous, with the donor's phone kept sealed), property
//! income and recycling, spending on supplies, drills, upkeep and volunteers with receipts, and
//! one mistake corrected by a reversal. The account is published, so `/public/funds/{code}`
//! shows it.

use anyhow::Context;
use chrono::{Datelike, Months, NaiveDate};
use uuid::Uuid;

use anxin_domain::SHANGHAI;
use anxin_store::scope::Caller;
use anxin_store::supplies::funds::{self, AccountInput, EntryInput, ReverseInput};
use anxin_store::{params, WriteCtx};

use crate::app::App;

/// (months ago, day of month, direction, kind, yuan × 100, description, counterparty,
/// anonymous, donor's phone, receipt file name).
type Line = (
    u32,
    u32,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
    Option<&'static str>,
);

const YEAR: &[Line] = &[
    (
        11,
        8,
        "income",
        "fiscal",
        5_000_000,
        "街道年度社区应急资金拨付",
        "街道办事处",
        false,
        None,
        None,
    ),
    (
        10,
        3,
        "income",
        "donation",
        1_000_000,
        "防汛物资捐款",
        "锦江某物业服务公司",
        false,
        None,
        None,
    ),
    (
        10,
        12,
        "income",
        "donation",
        50_000,
        "居民防汛捐款",
        "",
        true,
        Some("13800001234"),
        None,
    ),
    (
        10,
        20,
        "spending",
        "purchase",
        480_000,
        "采购救生衣 20 件",
        "某劳保用品商行",
        false,
        None,
        Some("救生衣发票.pdf"),
    ),
    (
        9,
        15,
        "spending",
        "drills",
        120_000,
        "汛前防汛应急演练（物料、饮水）",
        "某广告制作部",
        false,
        None,
        Some("演练物料收据.pdf"),
    ),
    (
        8,
        6,
        "income",
        "recycling",
        35_650,
        "小区废品回收义卖",
        "某再生资源回收站",
        false,
        None,
        None,
    ),
    (
        7,
        18,
        "spending",
        "maintenance",
        80_000,
        "移动抽水泵保养",
        "某机电维修部",
        false,
        None,
        Some("抽水泵保养单.pdf"),
    ),
    (
        6,
        9,
        "spending",
        "volunteers",
        60_000,
        "志愿者防暑降温物品",
        "某超市",
        false,
        None,
        None,
    ),
    (
        5,
        14,
        "spending",
        "purchase",
        150_000,
        "采购应急照明灯 30 只",
        "某五金店",
        false,
        None,
        None,
    ),
    (
        4,
        2,
        "income",
        "property_fees",
        800_000,
        "公共收益分成（电梯广告）",
        "小区业主委员会",
        false,
        None,
        None,
    ),
    (
        3,
        22,
        "income",
        "donation",
        20_000,
        "居民捐款",
        "张先生",
        false,
        None,
        None,
    ),
    (
        2,
        11,
        "spending",
        "purchase",
        200_000,
        "采购防汛沙袋 400 条",
        "某建材店",
        false,
        None,
        Some("沙袋发票.pdf"),
    ),
    (
        1,
        16,
        "spending",
        "drills",
        90_000,
        "消防安全培训（讲师劳务）",
        "区消防救援站志愿讲师",
        false,
        None,
        None,
    ),
    (
        0,
        1,
        "spending",
        "volunteers",
        120_000,
        "志愿者意外伤害保险",
        "某保险公司",
        false,
        None,
        Some("保险单.pdf"),
    ),
];

/// A small PDF receipt (text only; the demo's receipts are placeholders).
fn receipt_pdf(title: &str, amount: &str) -> Vec<u8> {
    let text = format!("Anxin demo receipt - {title} - CNY {amount}");
    let text: String = text.chars().filter(char::is_ascii).collect();
    let stream = format!("BT /F1 14 Tf 40 780 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for o in offsets {
        out.push_str(&format!("{o:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

fn day(today: NaiveDate, months_ago: u32, d: u32) -> NaiveDate {
    let month = today
        .checked_sub_months(Months::new(months_ago))
        .unwrap_or(today);
    month.with_day(d).unwrap_or(month).min(today)
}

/// Returns how many records it wrote (0 when already present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let now = app.clock.now();
    let today = now.with_timezone(&SHANGHAI).date_naive();
    let n = app
        .store
        .write(WriteCtx::system("demo-funds"), move |tx| {
            if tx.conn().query_i64(
                "SELECT count(*) FROM fund_accounts WHERE node_id = $1",
                &params![demo_community],
            )? > 0
            {
                return Ok(0);
            }
            let worker: Option<Uuid> = tx
                .conn()
                .query_one("SELECT id FROM users WHERE username = 'worker'", &[])?
                .map(|r| r.get("id"))
                .transpose()?;
            let caller = match worker {
                Some(w) => Caller::load(tx.conn(), w, now)?,
                None => Caller::system(),
            };
            // The demo worker records; if it cannot manage funds here, the platform does.
            let caller = if caller
                .reach(anxin_domain::Permission::ManageFunds)
                .contains_node(tx.conn(), demo_community)?
            {
                caller
            } else {
                Caller::system()
            };
            let account = funds::create_account(
                tx,
                &caller,
                &AccountInput {
                    node_id: Some(demo_community),
                    name: None,
                    published: Some(true),
                },
            )?;
            let mut n = 1;
            let mut lamps = None;
            for (ago, d, direction, kind, fen, desc, who, anon, phone, receipt) in YEAR {
                let e = funds::record(
                    tx,
                    &caller,
                    &EntryInput {
                        account_id: Some(account.id),
                        direction: Some((*direction).into()),
                        kind: Some((*kind).into()),
                        amount_fen: Some(*fen),
                        occurred_on: Some(day(today, *ago, *d).to_string()),
                        description: Some((*desc).into()),
                        counterparty: Some((*who).into()),
                        anonymous: Some(*anon),
                        contact_phone: phone.map(str::to_owned),
                        ..EntryInput::default()
                    },
                    false,
                )?;
                n += 1;
                if let Some(file) = receipt {
                    let pdf = receipt_pdf(kind, &anxin_domain::fund::format_yuan(*fen));
                    funds::add_attachment(tx, &caller, e.id, file, &pdf, None)?;
                    n += 1;
                }
                if desc.contains("应急照明灯") {
                    lamps = Some(e.id);
                }
            }
            // The lamps were entered at the quoted price; the invoice said less: reverse and
            // record again.
            if let Some(l) = lamps {
                funds::reverse(
                    tx,
                    &caller,
                    l,
                    &ReverseInput {
                        reason: Some("金额录入错误（按报价录入），以发票为准重新登记".into()),
                    },
                    false,
                )?;
                funds::record(
                    tx,
                    &caller,
                    &EntryInput {
                        account_id: Some(account.id),
                        direction: Some("spending".into()),
                        kind: Some("purchase".into()),
                        amount_fen: Some(105_000),
                        occurred_on: Some(day(today, 5, 14).to_string()),
                        description: Some("采购应急照明灯 30 只（更正）".into()),
                        counterparty: Some("某五金店".into()),
                        ..EntryInput::default()
                    },
                    false,
                )?;
                n += 2;
            }
            Ok(n)
        })
        .await
        .context("demo funds")?;
    Ok(n)
}
