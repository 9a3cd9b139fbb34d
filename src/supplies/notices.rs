//! Notices of distribution campaigns and provider orders (issue 7), sent after the write that
//! caused them commits; a failure is logged and never fails that write's request.
//!
//! - **A campaign opened** (by a worker, or by a plan's activation): every household it is
//!   offered to (its node's subtree, narrowed to its compounds; all households, or those with a
//!   vulnerable person) is told once — template [`OPEN_TEMPLATE`] (item, quantity per household,
//!   first come or lottery, where and until when, how to reserve, and that a grid worker reserves
//!   for those without a phone), or [`DELIVERY_HOME_TEMPLATE`] for a household that got a
//!   delivery order. One message per household and channel: an SMS to one phone of the household
//!   (the head's, else a member's), and an e-mail / WeChat message when a member registered their
//!   own verified channel (at most one of each per household). Households are read a page at a
//!   time ([`PAGE`]) and each page is recorded with one `notify::enqueue_many`, so a district's
//!   ~40,000 households never hold a write for long. Campaigns of an exercise (演练) tell no
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

use anxin_store::ops::Incident;
use anxin_store::supplies::campaigns::{self as sc, Campaign, CampaignSlot, HouseholdContact};
use anxin_store::supplies::providers::{self as pv, Order, Step};
use anxin_store::supplies::reserves as store_reserves;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::app::App;
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

/// Tell the households of a campaign just opened, and the assignees of its delivery orders.
pub async fn campaign_opened(app: &App, id: Uuid) -> anyhow::Result<Report> {
    let (c, slots) = app
        .store
        .read(move |conn, _| sc::notice_campaign(conn, id))
        .await?;
    let mut report = Report::default();
    if c.status != "open" {
        return Ok(report);
    }
    let exercise = exercise(app, &c).await?;
    if !exercise {
        let open = open_params(&c, &slots, app.clock.now());
        let home = delivery_home_params(&c);
        let mut after: Option<Uuid> = None;
        loop {
            let c2 = c.clone();
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
            record(app, OPEN_TEMPLATE, items, &mut report).await;
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
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
    record(app, DELIVERIES_TEMPLATE, items, &mut report).await;
    report.assignees = report.messages - before;
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

/// After a campaign was opened by hand (the API and the pages): [`campaign_opened`], errors
/// logged.
pub async fn after_open(app: &App, id: Uuid) {
    if let Err(e) = campaign_opened(app, id).await {
        tracing::warn!(campaign = %id, error = %format!("{e:#}"), "campaign opening notices not sent");
    }
}

/// After an activation commits: the campaigns it opened are announced.
pub async fn after_activation(app: &App, i: &Incident) {
    if i.status != "active" {
        return;
    }
    let incident = i.id;
    match app
        .store
        .read(move |conn, _| sc::opened_for_incident(conn, incident))
        .await
    {
        Ok(ids) => {
            for id in ids {
                after_open(app, id).await;
            }
        }
        Err(e) => {
            tracing::warn!(incident = %incident, error = %e, "campaign opening notices not sent")
        }
    }
}

/// Tell the applicants of a lottery just drawn whether they won (and where and when to pick up).
pub async fn lottery_drawn(app: &App, id: Uuid) -> anyhow::Result<Report> {
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
    let home = delivery_home_params(&c);
    let lost = params(&[("campaign", c.title.clone())]);
    for page in outcomes.chunks(usize::try_from(PAGE).unwrap_or(500)) {
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
        record(app, WON_TEMPLATE, items, &mut report).await;
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

/// After a lottery draw commits (a worker's or the timer's): [`lottery_drawn`], errors logged.
pub async fn after_draw(app: &App, id: Uuid) {
    if let Err(e) = lottery_drawn(app, id).await {
        tracing::warn!(campaign = %id, error = %format!("{e:#}"), "lottery notices not sent");
    }
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
