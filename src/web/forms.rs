//! What the record pages of the management end share: one form page (`form.html`) driven by a
//! list of [`Field`]s, one detail page (`record.html`) driven by facts and sections, and the
//! reading of form fields into the store's own input types.
//!
//! Forms only turn text into the types the store's input structs take (a number field into
//! `i64`); every rule about the values themselves stays in the store's `parse` functions, so a
//! page and the JSON API refuse the same things with the same error code, shown in the page
//! language next to the field the code names.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::places::LocationInput;

use crate::http::guard::Session;
use crate::http::ApiError;
use crate::web::{i18n, render, Ui};

/// A posted form: field name → text. The same fields also arrive as a JSON object of strings.
pub type Fields = HashMap<String, String>;

/// One choice of a select.
#[derive(Debug, Clone, Serialize)]
pub struct Opt {
    pub value: String,
    pub label: String,
}

impl Opt {
    pub fn new(value: impl ToString, label: impl Into<String>) -> Self {
        Opt {
            value: value.to_string(),
            label: label.into(),
        }
    }
}

/// Choices whose labels are the texts `{prefix}.{value}`.
pub fn opts(ui: &Ui, prefix: &str, values: &[&str]) -> Vec<Opt> {
    values
        .iter()
        .map(|v| Opt::new(v, i18n::t(ui.lang, &format!("{prefix}.{v}"))))
        .collect()
}

/// One field of a form.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub label: String,
    /// `text`, `number`, `date`, `datetime-local`, `tel`, `select`, `textarea`.
    pub kind: &'static str,
    pub options: Vec<Opt>,
    pub required: bool,
    pub hint: Option<String>,
    /// `step` of a number field (`any` for decimals).
    pub step: Option<&'static str>,
}

impl Field {
    pub fn new(ui: &Ui, name: &'static str, label_key: &str, kind: &'static str) -> Self {
        Field {
            name,
            label: i18n::t(ui.lang, label_key),
            kind,
            options: Vec::new(),
            required: false,
            hint: None,
            step: None,
        }
    }
    pub fn text(ui: &Ui, name: &'static str, label_key: &str) -> Self {
        Self::new(ui, name, label_key, "text")
    }
    pub fn number(ui: &Ui, name: &'static str, label_key: &str) -> Self {
        Self::new(ui, name, label_key, "number")
    }
    pub fn decimal(ui: &Ui, name: &'static str, label_key: &str) -> Self {
        let mut f = Self::new(ui, name, label_key, "number");
        f.step = Some("any");
        f
    }
    pub fn select(ui: &Ui, name: &'static str, label_key: &str, options: Vec<Opt>) -> Self {
        let mut f = Self::new(ui, name, label_key, "select");
        f.options = options;
        f
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn hint(mut self, ui: &Ui, key: &str) -> Self {
        self.hint = Some(i18n::t(ui.lang, key));
        self
    }
}

/// The location fields: longitude, latitude and the coordinate system they are given in.
pub fn location_fields(ui: &Ui) -> Vec<Field> {
    vec![
        Field::decimal(ui, "lon", "rec.lon"),
        Field::decimal(ui, "lat", "rec.lat"),
        Field::select(
            ui,
            "crs",
            "rec.crs",
            opts(ui, "rec.crs", &["wgs84", "cgcs2000", "gcj02", "bd09"]),
        )
        .hint(ui, "rec.crs_hint"),
    ]
}

/// A form page: what to show and where it posts.
pub struct FormPage {
    pub title: String,
    pub action: String,
    pub cancel: String,
    pub fields: Vec<Field>,
}

/// Render a form with `values`; with `error`, its text goes next to the field it names (or
/// above the form when it names none of them) and the status is the error's.
pub fn form_page(
    ui: &Ui,
    s: &Session,
    page: FormPage,
    values: &Fields,
    error: Option<&ApiError>,
) -> Response {
    let mut errors = serde_json::Map::new();
    let mut general = None;
    let mut status = StatusCode::OK;
    let mut code = "";
    if let Some(e) = error {
        status = e.status;
        code = e.code;
        let raw = e.details["field"].as_str().unwrap_or("");
        let field = form_field(raw);
        let text = i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned);
        if page.fields.iter().any(|f| f.name == field) {
            errors.insert(field.to_owned(), json!(text));
        } else {
            general = Some(text);
        }
    }
    render(
        ui,
        status,
        "form.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            title => page.title,
            action => page.action,
            cancel => page.cancel,
            fields => minijinja::Value::from_serialize(&page.fields),
            values => minijinja::Value::from_serialize(values),
            errors => minijinja::Value::from_serialize(&errors),
            general => general,
            error_code => code,
        },
    )
}

/// The form field an error's `field` is about: the domain names a document's number
/// `document_number` and a location's parts `location.lon` where the forms say `doc_number` and
/// `lon`.
pub fn form_field(raw: &str) -> &str {
    match raw {
        "document_number" => "doc_number",
        other => other.strip_prefix("location.").unwrap_or(other),
    }
}

/// A fact on a detail page.
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
    pub href: Option<String>,
}

pub fn fact(ui: &Ui, key: &str, value: impl Into<String>) -> Fact {
    Fact {
        label: i18n::t(ui.lang, key),
        value: value.into(),
        href: None,
    }
}

pub fn fact_link(ui: &Ui, key: &str, value: impl Into<String>, href: String) -> Fact {
    Fact {
        href: Some(href),
        ..fact(ui, key, value)
    }
}

/// A link shown as a button.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub href: String,
    pub label: String,
}

pub fn action(ui: &Ui, key: &str, href: String) -> Action {
    Action {
        href,
        label: i18n::t(ui.lang, key),
    }
}

/// A list on a detail page: rows of cells, the first one linked.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub cols: Vec<String>,
    pub rows: Vec<Row>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub href: Option<String>,
    pub cells: Vec<String>,
}

impl Section {
    pub fn new(ui: &Ui, id: &'static str, title_key: &str, cols: &[&str]) -> Self {
        Section {
            id,
            title: i18n::t(ui.lang, title_key),
            cols: cols.iter().map(|c| i18n::t(ui.lang, c)).collect(),
            rows: Vec::new(),
            actions: Vec::new(),
        }
    }
    pub fn row(&mut self, href: Option<String>, cells: Vec<String>) {
        self.rows.push(Row { href, cells });
    }
}

/// A detail page.
pub struct RecordPage {
    pub title: String,
    pub tag: String,
    pub facts: Vec<Fact>,
    pub actions: Vec<Action>,
    pub sections: Vec<Section>,
}

pub fn record_page(ui: &Ui, s: &Session, page: RecordPage) -> Response {
    record_page_with_posts(ui, s, page, Vec::new())
}

/// A detail page with steps that change the record: each of `posts` is a button posting (with
/// the CSRF token) to its address.
pub fn record_page_with_posts(
    ui: &Ui,
    s: &Session,
    page: RecordPage,
    posts: Vec<Action>,
) -> Response {
    render(
        ui,
        StatusCode::OK,
        "record.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            title => page.title,
            tag => page.tag,
            facts => minijinja::Value::from_serialize(&page.facts),
            actions => minijinja::Value::from_serialize(&page.actions),
            sections => minijinja::Value::from_serialize(&page.sections),
            posts => minijinja::Value::from_serialize(&posts),
        },
    )
}

/// After a form post: to `Ok(path)`; a refused value or a conflict shows the form again with the
/// error (the form is built by `form`, which reads within the caller's reach, so a record out
/// of reach still answers "not found"); anything else is the error page.
pub async fn answer<F>(
    ui: &Ui,
    s: &Session,
    r: Result<String, ApiError>,
    form: F,
    values: &Fields,
) -> Response
where
    F: std::future::Future<Output = Result<FormPage, ApiError>>,
{
    match r {
        Ok(to) => crate::web::see_other(&to),
        Err(e)
            if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT =>
        {
            match form.await {
                Ok(p) => form_page(ui, s, p, values, Some(&e)),
                Err(e2) => crate::web::error_page(ui, &e2),
            }
        }
        Err(e) => crate::web::error_page(ui, &e),
    }
}

/// An enum value's label: the domain's Chinese name, or the code in words for English.
pub fn enum_label(ui: &Ui, zh: &str, code: &str) -> String {
    match ui.lang {
        i18n::Lang::Zh => zh.to_owned(),
        i18n::Lang::En => {
            let words = code.replace('_', " ");
            let mut c = words.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

// ---- reading fields -----------------------------------------------------------------------

/// The trimmed text of a field; empty is absent.
pub fn text(f: &Fields, k: &str) -> Option<String> {
    f.get(k)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn bad(k: &str) -> ApiError {
    ApiError::invalid("value.invalid", k, format!("{k} is not a valid value"))
}

pub fn int(f: &Fields, k: &str) -> Result<Option<i64>, ApiError> {
    text(f, k)
        .map(|v| v.parse().map_err(|_| bad(k)))
        .transpose()
}

pub fn float(f: &Fields, k: &str) -> Result<Option<f64>, ApiError> {
    text(f, k)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(k))
        })
        .transpose()
}

pub fn uuid(f: &Fields, k: &str) -> Result<Option<Uuid>, ApiError> {
    text(f, k)
        .map(|v| v.parse().map_err(|_| bad(k)))
        .transpose()
}

/// The location fields as the store's input: absent when longitude and latitude are both empty.
pub fn location(f: &Fields) -> Result<Option<LocationInput>, ApiError> {
    let (lon, lat) = (float(f, "lon")?, float(f, "lat")?);
    if lon.is_none() && lat.is_none() {
        return Ok(None);
    }
    Ok(Some(LocationInput {
        lon,
        lat,
        crs: text(f, "crs"),
    }))
}

/// Form values for a stored location.
pub fn location_values(v: &mut Fields, l: Option<&anxin_store::places::Location>) {
    if let Some(l) = l {
        v.insert("lon".into(), format!("{:.6}", l.lon));
        v.insert("lat".into(), format!("{:.6}", l.lat));
        v.insert("crs".into(), "wgs84".into());
    }
}

/// Put `Some` values into a form.
pub fn put(v: &mut Fields, k: &str, value: Option<impl ToString>) {
    if let Some(x) = value {
        v.insert(k.to_owned(), x.to_string());
    }
}

/// An instant as the pages show it: minutes, Asia/Shanghai (`2026-11-02 18:00`).
pub fn local_minute(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&anxin_domain::SHANGHAI)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The field an error names (empty when none).
pub fn error_field(e: &ApiError) -> String {
    e.details["field"].as_str().unwrap_or_default().to_owned()
}

/// An error's text in the page's language, with the field it names: `数值无效（quantity）`.
pub fn error_with_field(ui: &Ui, e: &ApiError) -> String {
    let msg = i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned);
    let field = error_field(e);
    if field.is_empty() {
        msg
    } else {
        format!("{msg}（{field}）")
    }
}

/// Whether an error belongs on the form that was posted (invalid input, a conflict) rather than
/// on the error page.
pub fn shown_on_form(e: &ApiError) -> bool {
    e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_or_named() {
        let mut f = Fields::new();
        f.insert("floors".into(), " 12 ".into());
        f.insert("area".into(), "abc".into());
        f.insert("empty".into(), "  ".into());
        assert_eq!(int(&f, "floors").ok().flatten(), Some(12));
        assert_eq!(int(&f, "empty").ok().flatten(), None);
        let e = float(&f, "area")
            .err()
            .map(|e| (e.code, e.details["field"].clone()));
        assert_eq!(e, Some(("value.invalid", json!("area"))));
        assert!(location(&f).ok().flatten().is_none());
    }
}
