//! CAP 1.2 (OASIS Common Alerting Protocol): export of issued warnings, an Atom feed, and a
//! validating import.
//!
//! The import reads with `quick-xml`'s pull parser, which never expands entities itself: a
//! document type declaration (`<!DOCTYPE …>`, where entities would be declared) is refused, and so
//! is any entity reference other than the five predefined ones and character references — a
//! "billion laughs" document fails at its DOCTYPE, before anything grows.
//!
//! Levels map onto CAP `severity` (`anxin_domain::warning`); the level itself also travels as a
//! `parameter` (`anxin:level`). Times are written `YYYY-MM-DDThh:mm:ss+08:00` as CAP requires
//! (no `Z`).

use anxin_domain::SHANGHAI;
use anxin_store::warnings::Warning;
use chrono::{DateTime, Utc};
use quick_xml::escape::escape;

pub const NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// A CAP datetime: seconds, explicit offset, in Asia/Shanghai.
pub fn cap_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&SHANGHAI)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn el(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// The CAP document of an issued (or cancelled/updated) version. `previous` is the version it
/// follows, for `references`; `geocodes` the GB/T 2260 codes of the area's nodes.
pub fn to_cap(w: &Warning, previous: Option<&Warning>, geocodes: &[String]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!("<alert xmlns=\"{NS}\">\n"));
    el(&mut s, "identifier", &w.cap_identifier);
    el(&mut s, "sender", &w.sender);
    el(
        &mut s,
        "sent",
        &cap_time(w.issued_at.unwrap_or(w.updated_at)),
    );
    el(&mut s, "status", "Actual");
    let msg_type = match (w.status.as_str(), previous) {
        ("cancelled", Some(_)) => "Cancel",
        (_, Some(_)) => "Update",
        _ => "Alert",
    };
    el(&mut s, "msgType", msg_type);
    el(&mut s, "scope", "Public");
    if let Some(p) = previous {
        el(
            &mut s,
            "references",
            &format!(
                "{},{},{}",
                p.sender,
                p.cap_identifier,
                cap_time(p.issued_at.unwrap_or(p.updated_at))
            ),
        );
    }
    s.push_str("<info>\n");
    el(&mut s, "language", "zh-CN");
    el(&mut s, "category", w.category().cap_category());
    el(&mut s, "event", &format!("{}预警", w.category().zh()));
    el(&mut s, "urgency", "Immediate");
    el(&mut s, "severity", w.level().cap_severity());
    el(&mut s, "certainty", "Likely");
    el(&mut s, "effective", &cap_time(w.effective_at));
    el(&mut s, "expires", &cap_time(w.expires_at));
    el(&mut s, "headline", &w.headline);
    el(&mut s, "description", &w.description);
    if !w.instruction.is_empty() {
        el(&mut s, "instruction", &w.instruction);
    }
    s.push_str("<parameter>\n");
    el(&mut s, "valueName", "anxin:level");
    el(&mut s, "value", w.level().as_str());
    s.push_str("</parameter>\n<parameter>\n");
    el(&mut s, "valueName", "anxin:category");
    el(&mut s, "value", w.category().as_str());
    s.push_str("</parameter>\n");
    s.push_str("<area>\n");
    el(&mut s, "areaDesc", &w.headline);
    if let Ok(area) = w.area() {
        for ring in &area.polygons {
            let pts: Vec<String> = ring.iter().map(|p| format!("{},{}", p[1], p[0])).collect();
            el(&mut s, "polygon", &pts.join(" "));
        }
        for c in &area.circles {
            el(
                &mut s,
                "circle",
                &format!("{},{} {}", c.lat, c.lon, c.radius_m / 1000.0),
            );
        }
    }
    for g in geocodes {
        s.push_str("<geocode>\n");
        el(&mut s, "valueName", "GB/T 2260");
        el(&mut s, "value", g);
        s.push_str("</geocode>\n");
    }
    s.push_str("</area>\n</info>\n</alert>\n");
    s
}

/// An Atom 1.0 feed of issued warnings; each entry links its CAP document.
pub fn atom(list: &[Warning], now: DateTime<Utc>, sender: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    el(&mut s, "id", &format!("urn:anxin:{sender}:warnings"));
    el(&mut s, "title", "安心社区预警");
    el(
        &mut s,
        "updated",
        &list
            .first()
            .and_then(|w| w.issued_at)
            .unwrap_or(now)
            .to_rfc3339(),
    );
    s.push_str("<author><name>");
    s.push_str(&escape(sender));
    s.push_str("</name></author>\n");
    for w in list {
        s.push_str("<entry>\n");
        el(&mut s, "id", &format!("urn:uuid:{}", w.id));
        el(
            &mut s,
            "title",
            &format!(
                "[{}{}预警] {}",
                w.level().zh(),
                w.category().zh(),
                w.headline
            ),
        );
        el(&mut s, "updated", &w.updated_at.to_rfc3339());
        el(&mut s, "summary", &w.description);
        s.push_str(&format!(
            "<link rel=\"alternate\" type=\"application/cap+xml\" href=\"/api/v1/warnings/{}/cap.xml\"/>\n",
            w.id
        ));
        s.push_str("</entry>\n");
    }
    s.push_str("</feed>\n");
    s
}

// ---- import ------------------------------------------------------------------------------------

use anxin_domain::area::Circle;
use quick_xml::events::Event;
use quick_xml::Reader;

/// Why a CAP document was refused: a stable code and the element at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapError {
    pub code: &'static str,
    pub field: String,
}

fn err(code: &'static str, field: impl Into<String>) -> CapError {
    CapError {
        code,
        field: field.into(),
    }
}

/// One element: local name, attributes, text and children.
#[derive(Debug, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn one(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    fn text_of(&self, name: &str) -> Option<String> {
        self.one(name).map(|e| e.text.trim().to_owned())
    }
}

/// Parse XML into a tree, refusing DTDs and entity references.
fn tree(xml: &str) -> Result<El, CapError> {
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<El> = vec![El::default()];
    loop {
        let ev = r
            .read_event()
            .map_err(|_| err("cap.xml_invalid", "document"))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::DocType(_) => return Err(err("cap.dtd_refused", "document")),
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|_| err("cap.xml_invalid", name.clone()))?;
                    let v = a
                        .decode_and_unescape_value(r.decoder())
                        .map_err(|_| err("cap.entity_refused", name.clone()))?;
                    attrs.push((
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        v.into_owned(),
                    ));
                }
                if stack.len() > 16 {
                    return Err(err("cap.xml_invalid", name));
                }
                let el = El {
                    name,
                    attrs,
                    ..El::default()
                };
                if empty {
                    if let Some(top) = stack.last_mut() {
                        top.children.push(el);
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| err("cap.xml_invalid", "document"))?;
                match stack.last_mut() {
                    Some(top) => top.children.push(el),
                    None => return Err(err("cap.xml_invalid", "document")),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| err("cap.xml_invalid", "document"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|_| err("cap.xml_invalid", "document"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(g) => {
                let resolved = if g.is_char_ref() {
                    g.resolve_char_ref().ok().flatten().map(String::from)
                } else {
                    let name = g.decode().map_err(|_| err("cap.xml_invalid", "document"))?;
                    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                };
                let Some(text) = resolved else {
                    return Err(err("cap.entity_refused", "document"));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if stack.len() != 1 {
        return Err(err("cap.xml_invalid", "document"));
    }
    let mut root = stack.pop().unwrap_or_default();
    if root.children.len() != 1 {
        return Err(err("cap.xml_invalid", "document"));
    }
    Ok(root.children.remove(0))
}

/// A CAP area, in WGS84 (lon, lat).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapArea {
    pub desc: String,
    pub polygons: Vec<Vec<[f64; 2]>>,
    pub circles: Vec<Circle>,
    /// GB/T 2260 codes (6 digits, or the 12-digit statistical code).
    pub geocodes: Vec<String>,
}

/// The parts of a CAP alert a warning is made from (its first `info`).
#[derive(Debug, Clone, PartialEq)]
pub struct CapAlert {
    pub identifier: String,
    pub sender: String,
    pub sent: DateTime<Utc>,
    pub status: String,
    pub msg_type: String,
    pub references: Option<String>,
    pub category: String,
    pub event: String,
    pub severity: String,
    pub level: anxin_domain::warning::WarningLevel,
    /// From `parameter` `anxin:category`, if given.
    pub anxin_category: Option<String>,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub effective: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    pub areas: Vec<CapArea>,
}

const STATUS: &[&str] = &["Actual", "Exercise", "System", "Test", "Draft"];
const MSG_TYPE: &[&str] = &["Alert", "Update", "Cancel", "Ack", "Error"];
const SCOPE: &[&str] = &["Public", "Restricted", "Private"];
const CATEGORY: &[&str] = &[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
];
const URGENCY: &[&str] = &["Immediate", "Expected", "Future", "Past", "Unknown"];
const SEVERITY: &[&str] = &["Extreme", "Severe", "Moderate", "Minor", "Unknown"];
const CERTAINTY: &[&str] = &["Observed", "Likely", "Possible", "Unlikely", "Unknown"];

/// A CAP 1.2 dateTime: `YYYY-MM-DDThh:mm:ss` and an explicit offset `±hh:mm` (no `Z`).
pub fn parse_cap_time(s: &str, field: &str) -> Result<DateTime<Utc>, CapError> {
    let bad = || err("cap.datetime_invalid", field);
    let b = s.as_bytes();
    if b.len() != 25 || !matches!(b[19], b'+' | b'-') {
        return Err(bad());
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%:z")
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

fn required(e: &El, name: &str, field: &str) -> Result<String, CapError> {
    e.text_of(name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("cap.element_missing", format!("{field}.{name}")))
}

fn one_of(e: &El, name: &str, field: &str, allowed: &[&str]) -> Result<String, CapError> {
    let v = required(e, name, field)?;
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(err("cap.value_invalid", format!("{field}.{name}")))
    }
}

fn coord(s: &str, field: &str) -> Result<[f64; 2], CapError> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| err("cap.polygon_invalid", field))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .map_err(|_| err("cap.polygon_invalid", field))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| err("cap.polygon_invalid", field))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(err("cap.polygon_invalid", field));
    }
    Ok([lon, lat])
}

/// Parse and validate a CAP 1.2 alert.
pub fn parse(xml: &str) -> Result<CapAlert, CapError> {
    let root = tree(xml)?;
    if root.name != "alert" {
        return Err(err("cap.not_an_alert", "alert"));
    }
    if !root
        .attrs
        .iter()
        .any(|(k, v)| k.starts_with("xmlns") && v == NS)
    {
        return Err(err("cap.namespace_invalid", "alert"));
    }
    let identifier = required(&root, "identifier", "alert")?;
    if !anxin_domain::warning::cap_token_ok(&identifier) {
        return Err(err("cap.value_invalid", "alert.identifier"));
    }
    let sender = required(&root, "sender", "alert")?;
    if !anxin_domain::warning::cap_token_ok(&sender) {
        return Err(err("cap.value_invalid", "alert.sender"));
    }
    let sent = parse_cap_time(&required(&root, "sent", "alert")?, "alert.sent")?;
    let status = one_of(&root, "status", "alert", STATUS)?;
    let msg_type = one_of(&root, "msgType", "alert", MSG_TYPE)?;
    let scope = one_of(&root, "scope", "alert", SCOPE)?;
    if scope == "Restricted" && root.text_of("restriction").is_none() {
        return Err(err("cap.element_missing", "alert.restriction"));
    }
    if scope == "Private" && root.text_of("addresses").is_none() {
        return Err(err("cap.element_missing", "alert.addresses"));
    }
    let info = root
        .one("info")
        .ok_or_else(|| err("cap.element_missing", "alert.info"))?;
    let f = "alert.info";
    let categories: Vec<&El> = info.all("category").collect();
    if categories.is_empty() {
        return Err(err("cap.element_missing", "alert.info.category"));
    }
    for c in &categories {
        if !CATEGORY.contains(&c.text.trim()) {
            return Err(err("cap.value_invalid", "alert.info.category"));
        }
    }
    let event = required(info, "event", f)?;
    one_of(info, "urgency", f, URGENCY)?;
    let severity = one_of(info, "severity", f, SEVERITY)?;
    one_of(info, "certainty", f, CERTAINTY)?;
    let level = anxin_domain::warning::WarningLevel::from_cap_severity(&severity)
        .ok_or_else(|| err("cap.value_invalid", "alert.info.severity"))?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, CapError> {
        info.text_of(name)
            .map(|s| parse_cap_time(&s, &format!("{f}.{name}")))
            .transpose()
    };
    let anxin_category = info
        .all("parameter")
        .find(|p| p.text_of("valueName").as_deref() == Some("anxin:category"))
        .and_then(|p| p.text_of("value"));
    let mut areas = Vec::new();
    for (i, a) in info.all("area").enumerate() {
        let af = format!("{f}.area[{i}]");
        let mut area = CapArea {
            desc: required(a, "areaDesc", &af)?,
            ..CapArea::default()
        };
        for (j, p) in a.all("polygon").enumerate() {
            let pf = format!("{af}.polygon[{j}]");
            let ring: Vec<[f64; 2]> = p
                .text
                .split_whitespace()
                .map(|c| coord(c, &pf))
                .collect::<Result<_, _>>()?;
            if ring.len() < 4 || ring.first() != ring.last() {
                return Err(err("cap.polygon_invalid", pf));
            }
            area.polygons.push(ring);
        }
        for (j, c) in a.all("circle").enumerate() {
            let cf = format!("{af}.circle[{j}]");
            let (centre, radius) = c
                .text
                .trim()
                .split_once(' ')
                .ok_or_else(|| err("cap.circle_invalid", cf.clone()))?;
            let [lon, lat] =
                coord(centre, &cf).map_err(|_| err("cap.circle_invalid", cf.clone()))?;
            let km: f64 = radius
                .trim()
                .parse()
                .map_err(|_| err("cap.circle_invalid", cf.clone()))?;
            if !(km.is_finite() && km >= 0.0) {
                return Err(err("cap.circle_invalid", cf));
            }
            area.circles.push(Circle {
                lon,
                lat,
                radius_m: km * 1000.0,
            });
        }
        for (j, g) in a.all("geocode").enumerate() {
            let gf = format!("{af}.geocode[{j}]");
            let name = required(g, "valueName", &gf)?;
            let value = required(g, "value", &gf)?;
            if name == "GB/T 2260" {
                if !(value.len() == 6 || value.len() == 12)
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(err("cap.geocode_invalid", gf));
                }
                area.geocodes.push(value);
            }
        }
        areas.push(area);
    }
    let headline = info.text_of("headline").unwrap_or_else(|| event.clone());
    Ok(CapAlert {
        identifier,
        sender,
        sent,
        status,
        msg_type,
        references: root.text_of("references"),
        category: categories[0].text.trim().to_owned(),
        event: event.clone(),
        severity,
        level,
        anxin_category,
        description: info
            .text_of("description")
            .unwrap_or_else(|| headline.clone()),
        headline,
        instruction: info.text_of("instruction").unwrap_or_default(),
        effective: time("effective")?,
        expires: time("expires")?,
        areas,
    })
}

impl CapAlert {
    /// Our category: the `anxin:category` parameter, else from CAP's.
    pub fn warning_category(&self) -> anxin_domain::warning::WarningCategory {
        use anxin_domain::warning::WarningCategory as C;
        if let Some(c) = self.anxin_category.as_deref().and_then(|c| c.parse().ok()) {
            return c;
        }
        match self.category.as_str() {
            "Geo" => C::Geological,
            "Fire" => C::Fire,
            "Health" => C::PublicHealth,
            _ => C::Other,
        }
    }
}

/// The warning a CAP alert becomes, at `node_id`, its area's geocodes resolved to `nodes`.
/// Without `expires` it runs 24 hours from `effective` (or `sent`).
pub fn to_new_warning(
    a: &CapAlert,
    node_id: uuid::Uuid,
    nodes: Vec<uuid::Uuid>,
) -> Result<anxin_store::warnings::NewWarning, CapError> {
    let mut area = anxin_domain::warning::WarningArea {
        nodes,
        ..Default::default()
    };
    for x in &a.areas {
        area.polygons.extend(x.polygons.iter().cloned());
        area.circles.extend(x.circles.iter().copied());
    }
    area.validate().map_err(|e| CapError {
        code: e.code,
        field: e.field.replacen("area", "alert.info.area", 1),
    })?;
    let effective = a.effective.unwrap_or(a.sent);
    let expires = a.expires.unwrap_or(effective + chrono::Duration::hours(24));
    if expires <= effective || expires - effective > chrono::Duration::days(30) {
        return Err(err("cap.value_invalid", "alert.info.expires"));
    }
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    Ok(anxin_store::warnings::NewWarning {
        node_id,
        grid_id: None,
        level: a.level,
        category: a.warning_category(),
        headline: cut(&a.headline, 140),
        description: cut(&a.description, 2000),
        instruction: cut(&a.instruction, 2000),
        effective_at: effective,
        expires_at: expires,
        area,
        area_crs: anxin_domain::geo::Crs::Wgs84,
    })
}
