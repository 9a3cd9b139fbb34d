//! Live updates over Server-Sent Events: `GET /api/v1/live`, fed from the change log.
//!
//! Each event says only what changed (kind, record id, operation, change-log position): no
//! image, so no personal data. A caller receives events of records inside their reach, of kinds
//! they may read; reconnecting with `Last-Event-ID` resumes from that position with nothing lost.
//! The reach is computed when the stream opens; a reconnect picks up new grants.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use anxin_domain::Permission;
use anxin_store::changelog::ChangeEvent;

use crate::app::App;
use crate::http::guard::Authenticated;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::platform::live;

pub fn routes() -> Table {
    Table::new().route("/api/v1/live", &["GET"], Serves::Live, get(stream))
}

/// What a caller may be told about, resolved once per stream.
struct Filter {
    /// `None`: everything (system); otherwise the nodes of the caller's subtrees.
    nodes: Option<HashSet<Uuid>>,
    grids: HashSet<Uuid>,
    households: HashSet<Uuid>,
    kinds: HashSet<&'static str>,
}

impl Filter {
    fn admits(&self, ev: &ChangeEvent) -> bool {
        if !self.kinds.contains(ev.kind.as_str()) {
            return false;
        }
        let p = &ev.place;
        let in_nodes = match &self.nodes {
            None => true,
            Some(n) => p.node_id.is_some_and(|id| n.contains(&id)),
        };
        in_nodes
            || p.grid_id.is_some_and(|g| self.grids.contains(&g))
            || p.household_id.is_some_and(|h| self.households.contains(&h))
    }
}

/// The kinds a caller may hear about, by the permission that reads them.
fn kinds_for(auth: &Authenticated) -> HashSet<&'static str> {
    let c = auth.caller();
    let mut k = HashSet::new();
    if c.has(Permission::ReadBase) {
        k.extend([
            "nodes",
            "grids",
            "buildings",
            "units",
            "dwellings",
            "facilities",
            "duties",
            "map_features",
        ]);
    }
    if c.has(Permission::ReadPeople) || c.has(Permission::ReadOwnHousehold) {
        k.extend(["people", "households", "memberships"]);
    }
    if c.has(Permission::ReadVulnerable) {
        k.insert("vulnerable");
    }
    if c.has(Permission::ReadMonitor) {
        k.extend(["devices", "device_profiles", "alarms"]);
    }
    if c.has(Permission::DraftWarning) {
        k.insert("warnings");
    }
    // volunteers & welfare (issue 5)
    if c.has(Permission::ManageVolunteers) {
        k.extend(["volunteers", "callouts", "callout_attendance"]);
    }
    if c.has(Permission::RecordWelfare) || c.has(Permission::RunIncidents) {
        k.insert("welfare_checks");
    }
    // plans & activation
    if c.has(Permission::ManagePlans) || c.has(Permission::ActivatePlans) {
        k.extend(["plans", "plan_versions"]);
    }
    // Incident operations: everyone who works on incidents (ops::incident_reach).
    if c.has(Permission::RunIncidents)
        || c.has(Permission::ActivatePlans)
        || c.has(Permission::ApproveReports)
    {
        k.extend([
            "incidents",
            "incident_tasks",
            "incident_sitreps",
            "shelter_stays",
            "incident_reviews",
        ]);
    }
    k
}

#[utoipa::path(
    get, path = "/api/v1/live", tag = "live",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this change-log position")),
    responses((status = 200, description = "Server-Sent Events named `change`, each `{\"pos\",\"kind\",\"id\",\"op\",\"at\"}` with the position as the event id; never personal data", content_type = "text/event-stream", body = String))
)]
async fn stream(
    State(app): State<App>,
    auth: Authenticated,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let caller = auth.caller().clone();
    let kinds = kinds_for(&auth);
    let (nodes, grids, households) = app
        .store
        .read(move |c, _| {
            let mut reach = caller.reach(Permission::ReadBase);
            reach.merge(caller.reach(Permission::ReadPeople));
            reach.merge(caller.reach(Permission::ReadOwnHousehold));
            let nodes = reach.expand_nodes(c)?;
            Ok((nodes, reach.grids, reach.households))
        })
        .await?;
    let filter = Filter {
        nodes,
        grids: grids.into_iter().collect(),
        households: households.into_iter().collect(),
        kinds,
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let admit = move |ev: &ChangeEvent| filter.admits(ev);
    let events = match after {
        Some(pos) => live::stream_since(&app, pos, admit).boxed(),
        None => live::stream_for(&app, admit).boxed(),
    };
    let sse = events.map(|ev| {
        let data = serde_json::json!({
            "pos": ev.pos, "kind": ev.kind, "id": ev.record_id, "op": ev.op, "at": ev.at
        });
        Ok(Event::default()
            .id(ev.pos.to_string())
            .event("change")
            .data(data.to_string()))
    });
    Ok(Sse::new(sse).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(stream))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
