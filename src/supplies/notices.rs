//! Notices of distribution campaigns and provider orders (issue 7). A failure is logged and
//! never fails the write that caused the notice.
//!
//! Opening and drawing a campaign enqueue a durable job ([`sc::NOTICES_JOB`]) in their own
//! write; [`run_notices`] handles it on a job worker: the request answers at once, a server that
//! stops after the commit still sends the notices, and each page of messages is recorded in one
//! write with the job's progress, so a job taken over by another worker goes on where it
//! stopped and tells nobody twice. The other notices are recorded right after their write.
//!
//! - **A campaign opened** (by a worker, or by a plan's activation): every household it is
//!   offered to (its node's subtree, narrowed to its compounds; all households, or those with a
//!   vulnerable person) is told once — template [`OPEN_TEMPLATE`] (item, quantity per household,
//!   first come or lottery, where and until when, how to reserve, and that a grid worker reserves
//!   for those without a phone), or [`DELIVERY_HOME_TEMPLATE`] for a household that got a
//!   delivery order. One message per household and channel: an SMS to one phone of the household
//!   (the head's, else a member's), and an e-mail / WeChat message when a member registered their
//!   own verified channel (at most one of each per household). Households are read a page at a
//!   time ([`PAGE`]) and each page is recorded in one write, so a district's ~40,000 households
//!   never hold a write for long. Campaigns of an exercise (演练) tell no
//!   residents.
//! - **Delivery orders**: each assignee of the opening's delivery orders gets one SMS
//!   ([`DELIVERIES_TEMPLATE`]) saying how many households wait, to their duty phone, volunteer
//!   record's phone or own phone.
//! - **A lottery drawn** (by a worker or the timer): winners are told their slot and place
//!   ([`WON_TEMPLATE`]; a delivery campaign's winners [`DELIVERY_HOME_TEMPLATE`]), the others that
//!   they were not drawn ([`LOST_TEMPLATE`]), on the household channels above.
//! - **Provider orders**: a placed or cancelled order reaches the provider (the duty phone of each
//!   linked account, else the provider's registered contact phone); the provider's confirm,
//!   decline or delivery reaches the accounts that manage supplies at the ordering node
//!   (`anxin_store::supplies::reserves::stock_keepers`, as the expiry warnings).
//!
//! Messages carry no personal data beyond what the recipient needs: no names, no ID numbers, no
//! pickup codes (shown in the app only).

use std::collections::BTreeMap;

use anxin_store::supplies::campaigns::{self as sc, Campaign, CampaignSlot, HouseholdContact};
use anxin_store::supplies::providers::{self as pv, Order, Step};
use anxin_store::supplies::reserves as store_reserves;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use anxin_store::jobs::{self as store_jobs, Job};
use anxin_store::notify as store_notify;
use anxin_store::{StoreError, WriteCtx};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::platform::jobs::Jobs;
use crate::platform::notify::{self, ChannelKind, Outgoing};

/// A campaign is open: reserve (params node, item, quantity, mode, place, until).
pub const OPEN_TEMPLATE: &str = "campaign_open";
/// The household's goods come to the door (params node, item, quantity).
pub const DELIVERY_HOME_TEMPLATE: &str = "campaign_delivery_home";
/// An assignee's delivery orders (params campaign, node, count).
pub const DELIVERIES_TEMPLATE: &str = "campaign_deliveries";
/// Drawn in a lottery (params campaign, place, slot).
pub const WON_TEMPLATE: &str = "campaign_won";
/// Not drawn (params campaign).
pub const LOST_TEMPLATE: &str = "campaign_lost";
/// An order reached the provider (params node, item, quantity, depot, wanted_by).
pub const ORDER_PLACED_TEMPLATE: &str = "supply_order_placed";
/// The community cancelled (params node, item, quantity).
pub const ORDER_CANCELLED_TEMPLATE: &str = "supply_order_cancelled";
/// The provider's step reached the community (params provider, state, item, quantity, depot).
pub const ORDER_PROGRESS_TEMPLATE: &str = "supply_order_progress";

/// Households read and recorded per round.
pub const PAGE: i64 = 500;

/// What one notice run recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Households reached on at least one channel.
    pub households: usize,
    /// Messages recorded (all channels).
    pub messages: usize,
    /// Delivery assignees told.
    pub assignees: usize,
    /// Messages that could not be recorded (logged).
    pub failed: usize,
}

fn params(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn local(t: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
    t.with_timezone(&anxin_domain::SHANGHAI)
}

/// `12月3日 09:00`.
fn when(t: DateTime<Utc>) -> String {
    local(t).format("%-m月%-d日 %H:%M").to_string()
}

/// `12月3日 09:00至17:00`, or `12月3日 09:00至12月4日 17:00` across days.
fn span(s: &CampaignSlot) -> String {
    let (a, b) = (local(s.starts_at), local(s.ends_at));
    if a.date_naive() == b.date_naive() {
        format!("{}至{}", when(s.starts_at), b.format("%H:%M"))
    } else {
        format!("{}至{}", when(s.starts_at), when(s.ends_at))
    }
}

fn quantity(n: i64, unit: &str) -> String {
    format!("{n}{unit}")
}

/// The title as messages show it (an exercise says so).
fn title(c: &Campaign, exercise: bool) -> String {
    if exercise {
        format!("【演练】{}", c.title)
    } else {
        c.title.clone()
    }
}

/// The parameters of [`OPEN_TEMPLATE`].
fn open_params(
    c: &Campaign,
    slots: &[CampaignSlot],
    now: DateTime<Utc>,
) -> BTreeMap<String, String> {
    let mode = if c.mode == "lottery" {
        match c.draw_at {
            Some(d) => format!("{}前报名，届时抽签", when(d)),
            None => "报名后抽签".to_owned(),
        }
    } else {
        "先到先得，发完为止".to_owned()
    };
    let (place, until) = if c.fulfilment == "delivery" || slots.is_empty() {
        ("预约后送货上门".to_owned(), "物资发完".to_owned())
    } else {
        let open: Vec<&CampaignSlot> = slots.iter().filter(|s| s.ends_at > now).collect();
        let open = if open.is_empty() {
            slots.iter().collect()
        } else {
            open
        };
        let mut places: Vec<&str> = Vec::new();
        for s in &open {
            if !places.contains(&s.place.as_str()) {
                places.push(&s.place);
            }
        }
        let mut place = places
            .iter()
            .take(3)
            .copied()
            .collect::<Vec<_>>()
            .join("、");
        if places.len() > 3 {
            place.push_str(&format!("等{}处", places.len()));
        }
        if let Some(first) = open.iter().map(|s| s.starts_at).min() {
            if first > now {
                place.push_str(&format!("（{}起）", when(first)));
            }
        }
        let last = open.iter().map(|s| s.ends_at).max().unwrap_or(now);
        (place, when(last))
    };
    params(&[
        ("node", c.node_name.clone()),
        ("item", c.item_name.clone()),
        ("quantity", quantity(c.quantity_per_household, &c.item_unit)),
        ("mode", mode),
        ("place", place),
        ("until", until),
    ])
}

fn delivery_home_params(c: &Campaign) -> BTreeMap<String, String> {
    params(&[
        ("node", c.node_name.clone()),
        ("item", c.item_name.clone()),
        ("quantity", quantity(c.quantity_per_household, &c.item_unit)),
    ])
}

/// One message per channel of the household.
fn to_household(
    h: &HouseholdContact,
    template: &str,
    p: &BTreeMap<String, String>,
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    if let Some((phone, mask)) = &h.phone {
        out.push(Outgoing {
            channel: ChannelKind::Sms,
            recipient: phone.clone(),
            recipient_mask: mask.clone(),
            template_id: template.to_owned(),
            params: p.clone(),
        });
    }
    for (kind, address, mask) in &h.own {
        let Some(channel) = ChannelKind::parse(kind) else {
            continue;
        };
        out.push(Outgoing {
            channel,
            recipient: address.clone(),
            recipient_mask: mask.clone(),
            template_id: template.to_owned(),
            params: p.clone(),
        });
    }
    out
}

/// Record one batch; a refusal is logged and counted, the run goes on.
async fn record(app: &App, what: &str, items: Vec<Outgoing>, report: &mut Report) {
    if items.is_empty() {
        return;
    }
    let n = items.len();
    match notify::enqueue_many(app, items).await {
        Ok(_) => report.messages += n,
        Err(e) => {
            report.failed += n;
            tracing::warn!(notice = what, messages = n, error = %format!("{e:#}"), "notices not recorded");
        }
    }
}

/// Whether the campaign belongs to an exercise.
async fn exercise(app: &App, c: &Campaign) -> anyhow::Result<bool> {
    let Some(incident) = c.incident_id else {
        return Ok(false);
    };
    let row = app
        .store
        .read(move |conn, _| {
            conn.query_one(
                "SELECT exercise FROM incidents WHERE id = $1",
                &anxin_store::params![incident],
            )
        })
        .await?;
    Ok(match row {
        Some(r) => r.get::<bool>("exercise")?,
        None => false,
    })
}

/// Where a notices job has got to, kept in its payload (`anxin_store::jobs::set_payload`) in
/// the same write as each page of messages: a job that runs again (its server stopped, its lease
/// ran out) goes on after the last page recorded, and nobody is told twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    campaign: Uuid,
    /// `opened` or `drawn`.
    event: String,
    /// The last household told (households go in id order); none yet: from the first.
    #[serde(default)]
    after: Option<Uuid>,
    #[serde(default)]
    households_done: bool,
    /// An opening's delivery assignees have been told.
    #[serde(default)]
    assignees_done: bool,
}

/// Handle [`sc::NOTICES_JOB`] (enqueued by the write that opens or draws a campaign).
pub fn register(jobs: &Jobs) {
    jobs.register(sc::NOTICES_JOB, |app, job| async move {
        run_notices(&app, &job).await.map(drop)
    });
}

/// Run one notices job: [`campaign_opened`] or [`lottery_drawn`], from where it got to.
pub async fn run_notices(app: &App, job: &Job) -> anyhow::Result<Report> {
    let mut p: Progress =
        serde_json::from_value(job.payload.clone()).context("campaign notices payload")?;
    match p.event.as_str() {
        "opened" => campaign_opened(app, job, &mut p).await,
        "drawn" => lottery_drawn(app, job, &mut p).await,
        other => anyhow::bail!("campaign notices: unknown event {other}"),
    }
}

/// Record one page of messages and the job's progress in one write. A message the templates
/// refuse is logged and counted, the others go on; a lost lease rolls the page back (the job's
/// new holder records it).
async fn record_page(
    app: &App,
    job: &Job,
    items: Vec<Outgoing>,
    progress: &Progress,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut rows = Vec::with_capacity(items.len());
    for o in items {
        let template = o.template_id.clone();
        match notify::checked(app, o) {
            Ok(r) => rows.push(r),
            Err(e) => {
                report.failed += 1;
                tracing::warn!(template = %template, error = %format!("{e:#}"), "notice not recorded");
            }
        }
    }
    let n = rows.len();
    let (id, owner) = (job.id, job.lease_owner.clone());
    let payload = serde_json::to_value(progress)?;
    app.store
        .write(WriteCtx::system(sc::NOTICES_JOB), move |tx| {
            for r in &rows {
                store_notify::insert_in(tx, r)?;
            }
            if store_jobs::set_payload(tx, id, &owner, &payload)? {
                Ok(())
            } else {
                Err(StoreError::Backend(
                    "campaign notices: the job's lease was lost".into(),
                ))
            }
        })
        .await
        .context("recording campaign notices")?;
    report.messages += n;
    if n > 0 {
        app.notifier.kick();
    }
    Ok(())
}

/// Tell the households of a campaign just opened, and the assignees of its delivery orders.
async fn campaign_opened(app: &App, job: &Job, p: &mut Progress) -> anyhow::Result<Report> {
    let id = p.campaign;
    let (c, slots) = app
        .store
        .read(move |conn, _| sc::notice_campaign(conn, id))
        .await?;
    let mut report = Report::default();
    if c.status != "open" {
        return Ok(report);
    }
    let exercise = exercise(app, &c).await?;
    if !exercise && !p.households_done {
        let open = open_params(&c, &slots, app.clock.now());
        let home = delivery_home_params(&c);
        loop {
            let (c2, after) = (c.clone(), p.after);
            let (page, contacts) = app
                .store
                .read(move |conn, env| {
                    let page = sc::notice_households(conn, &c2, after, PAGE)?;
                    let ids: Vec<Uuid> = page.households.iter().map(|(h, _)| *h).collect();
                    let contacts = sc::household_contacts(conn, env, &ids)?;
                    Ok((page, contacts))
                })
                .await?;
            let delivery: std::collections::HashSet<Uuid> = page
                .households
                .iter()
                .filter(|(_, d)| *d)
                .map(|(h, _)| *h)
                .collect();
            let mut items = Vec::new();
            for h in &contacts {
                let (t, p) = if delivery.contains(&h.household_id) {
                    (DELIVERY_HOME_TEMPLATE, &home)
                } else {
                    (OPEN_TEMPLATE, &open)
                };
                items.extend(to_household(h, t, p));
            }
            report.households += contacts.len();
            p.after = page.next;
            p.households_done = page.next.is_none();
            record_page(app, job, items, p, &mut report).await?;
            if p.households_done {
                break;
            }
        }
    }
    if !p.assignees_done {
        // The assignees of the delivery orders, one message each.
        let (cid, node) = (c.id, c.node_id);
        let assignees = app
            .store
            .read(move |conn, env| {
                let mut out = Vec::new();
                for (user, n) in sc::delivery_counts(conn, cid)? {
                    if let Some(p) = sc::account_phone(conn, env, user, node)? {
                        out.push((p, n));
                    }
                }
                Ok(out)
            })
            .await?;
        let items: Vec<Outgoing> = assignees
            .into_iter()
            .map(|(phone, n)| deliveries_message(&c, exercise, phone, n))
            .collect();
        let before = report.messages;
        p.households_done = true;
        p.assignees_done = true;
        record_page(app, job, items, p, &mut report).await?;
        report.assignees = report.messages - before;
    }
    tracing::info!(
        campaign = %c.id,
        households = report.households,
        messages = report.messages,
        assignees = report.assignees,
        failed = report.failed,
        "campaign opening notices recorded"
    );
    Ok(report)
}

/// An assignee's [`DELIVERIES_TEMPLATE`] SMS: `count` households of campaign `c` wait for them
/// (`phone`: the duty phone and its mask).
fn deliveries_message(
    c: &Campaign,
    exercise: bool,
    (phone, mask): (String, String),
    count: i64,
) -> Outgoing {
    Outgoing {
        channel: ChannelKind::Sms,
        recipient: phone,
        recipient_mask: mask,
        template_id: DELIVERIES_TEMPLATE.to_owned(),
        params: params(&[
            ("campaign", title(c, exercise)),
            ("node", c.node_name.clone()),
            ("count", count.to_string()),
        ]),
    }
}

/// A delivery order assigned by hand to `user`: they get one message (the opening's
/// [`DELIVERIES_TEMPLATE`], one household) on their duty phone, as the assignees at opening do.
pub async fn delivery_assigned(app: &App, campaign: Uuid, user: Uuid) -> anyhow::Result<Report> {
    let (c, _) = app
        .store
        .read(move |conn, _| sc::notice_campaign(conn, campaign))
        .await?;
    let mut report = Report::default();
    if c.status != "open" {
        return Ok(report);
    }
    let exercise = exercise(app, &c).await?;
    let node = c.node_id;
    let phone = app
        .store
        .read(move |conn, env| sc::account_phone(conn, env, user, node))
        .await?;
    let items: Vec<Outgoing> = phone
        .into_iter()
        .map(|phone| deliveries_message(&c, exercise, phone, 1))
        .collect();
    record(app, DELIVERIES_TEMPLATE, items, &mut report).await;
    report.assignees = report.messages;
    Ok(report)
}

/// After a delivery order was assigned by hand: [`delivery_assigned`], errors logged.
pub async fn after_assign(app: &App, campaign: Uuid, user: Uuid) {
    if let Err(e) = delivery_assigned(app, campaign, user).await {
        tracing::warn!(campaign = %campaign, error = %format!("{e:#}"), "delivery assignment notice not sent");
    }
}

/// Tell the applicants of a lottery just drawn whether they won (and where and when to pick up).
async fn lottery_drawn(app: &App, job: &Job, p: &mut Progress) -> anyhow::Result<Report> {
    let id = p.campaign;
    let (c, slots) = app
        .store
        .read(move |conn, _| sc::notice_campaign(conn, id))
        .await?;
    let mut report = Report::default();
    if exercise(app, &c).await? {
        return Ok(report);
    }
    let outcomes = app
        .store
        .read(move |conn, _| sc::draw_outcomes(conn, id))
        .await?;
    // In household order: the ones after the last page recorded.
    let start = p
        .after
        .map_or(0, |a| outcomes.partition_point(|(h, ..)| *h <= a));
    let home = delivery_home_params(&c);
    let lost = params(&[("campaign", c.title.clone())]);
    for page in outcomes[start..].chunks(usize::try_from(PAGE).unwrap_or(500)) {
        let ids: Vec<Uuid> = page.iter().map(|(h, ..)| *h).collect();
        let contacts = app
            .store
            .read(move |conn, env| sc::household_contacts(conn, env, &ids))
            .await?;
        let mut items = Vec::new();
        for h in &contacts {
            let Some((_, won, slot)) = page.iter().find(|(x, ..)| *x == h.household_id) else {
                continue;
            };
            let slot = slot.and_then(|s| slots.iter().find(|x| x.id == s));
            let (t, p) = match (*won, slot) {
                (false, _) => (LOST_TEMPLATE, lost.clone()),
                (true, Some(s)) => (
                    WON_TEMPLATE,
                    params(&[
                        ("campaign", c.title.clone()),
                        ("place", s.place.clone()),
                        ("slot", span(s)),
                    ]),
                ),
                (true, None) => (DELIVERY_HOME_TEMPLATE, home.clone()),
            };
            items.extend(to_household(h, t, &p));
        }
        report.households += contacts.len();
        p.after = page.last().map(|(h, ..)| *h);
        record_page(app, job, items, p, &mut report).await?;
    }
    tracing::info!(
        campaign = %c.id,
        households = report.households,
        messages = report.messages,
        failed = report.failed,
        "lottery notices recorded"
    );
    Ok(report)
}

// ---- provider orders ---------------------------------------------------------------------------

fn order_sms(
    phones: Vec<(String, String)>,
    template: &str,
    p: &BTreeMap<String, String>,
) -> Vec<Outgoing> {
    phones
        .into_iter()
        .map(|(phone, mask)| Outgoing {
            channel: ChannelKind::Sms,
            recipient: phone,
            recipient_mask: mask,
            template_id: template.to_owned(),
            params: p.clone(),
        })
        .collect()
}

/// Tell the other side of an order about the step just taken (`None`: the order was placed).
/// Returns how many messages were recorded.
pub async fn order_notice(app: &App, o: &Order, step: Option<Step>) -> anyhow::Result<usize> {
    let qty = quantity(o.quantity, &o.item_unit);
    let (to_provider, template, p) = match step {
        None => (
            true,
            ORDER_PLACED_TEMPLATE,
            params(&[
                ("node", o.node_name.clone()),
                ("item", o.item_name.clone()),
                ("quantity", qty),
                ("depot", o.depot_name.clone()),
                ("wanted_by", o.wanted_by.format("%-m月%-d日").to_string()),
            ]),
        ),
        Some(Step::Cancel) => (
            true,
            ORDER_CANCELLED_TEMPLATE,
            params(&[
                ("node", o.node_name.clone()),
                ("item", o.item_name.clone()),
                ("quantity", qty),
            ]),
        ),
        Some(s @ (Step::Confirm | Step::Decline | Step::Deliver)) => {
            let state = match s {
                Step::Confirm => "已确认订单".to_owned(),
                Step::Decline => "已拒绝订单".to_owned(),
                _ => {
                    let q = o
                        .events
                        .iter()
                        .rev()
                        .find(|e| e.action == "deliver")
                        .and_then(|e| e.quantity)
                        .unwrap_or(o.delivered_quantity);
                    format!("已送达{}，请验收入库", quantity(q, &o.item_unit))
                }
            };
            (
                false,
                ORDER_PROGRESS_TEMPLATE,
                params(&[
                    ("provider", o.provider_name.clone()),
                    ("state", state),
                    ("item", o.item_name.clone()),
                    ("quantity", qty),
                    ("depot", o.depot_name.clone()),
                ]),
            )
        }
        Some(Step::Receive | Step::Close) => return Ok(0),
    };
    let (provider, node, now) = (o.provider_id, o.node_id, app.clock.now());
    let phones = app
        .store
        .read(move |conn, env| {
            if to_provider {
                pv::provider_phones(conn, env, provider)
            } else {
                Ok(store_reserves::stock_keepers(conn, env, node, now)?
                    .into_iter()
                    .filter_map(|(_, p)| p)
                    .collect())
            }
        })
        .await?;
    let items = order_sms(phones, template, &p);
    let n = items.len();
    if n > 0 {
        notify::enqueue_many(app, items).await?;
    }
    Ok(n)
}

/// After an order step commits (the API and the pages): [`order_notice`], errors logged.
pub async fn after_order(app: &App, o: &Order, step: Option<Step>) {
    if let Err(e) = order_notice(app, o, step).await {
        tracing::warn!(order = %o.id, error = %format!("{e:#}"), "order notices not sent");
    }
}
