//! The web page for people: the Event Explorer (filters, the list, an event's detail
//! with its explanation and deliveries) and the loaded policies.
//!
//! Pages are rendered on the server from the same queries as the JSON API and embedded
//! in the binary; there is no script at all, so the filters are a plain GET form and
//! every view has a URL that can be shared or bookmarked.

mod html;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use time::OffsetDateTime;

use html::{badge, esc, page, url_param};

use crate::api::{event_detail, filter, EventDetail};
use crate::event::Category;
use crate::ingest::blocking;
use crate::server::AppState;
use crate::store::StoredEvent;

const STYLE: &str = include_str!("style.css");

/// The longest message shown in the list; the detail page shows it whole.
const LIST_MESSAGE_CHARS: usize = 160;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(explorer))
        .route("/events/{id}", get(event_page))
        .route("/policies", get(policies_page))
        .route(
            "/assets/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
}

/// A page with an error in it; the filters stay so the person can fix them.
fn error_page(status: StatusCode, title: &str, message: &str, form: &str) -> Response {
    let body = format!(r#"{form}<p class="error">{}</p>"#, esc(message));
    (status, Html(page(title, &body))).into_response()
}

async fn explorer(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let form = filter_form(&state, &query);
    let filter = match filter::from_query(&query, OffsetDateTime::now_utc()) {
        Ok(filter) => filter,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Events", e.message(), &form),
    };
    let store = state.store.clone();
    let page_result = blocking(move || store.query_events(&filter)).await;
    let events = match page_result {
        Ok(events) => events,
        Err(e) => return error_page(e.status(), "Events", e.message(), &form),
    };
    let mut body = form;
    body.push_str(&event_table(&events.events));
    if let Some(next) = events.next {
        let mut params = query.clone();
        params.insert("cursor".into(), next.encode());
        let _ = write!(
            body,
            r#"<a class="more" id="older" href="/?{}">Older events →</a>"#,
            query_string(&params)
        );
    }
    Html(page("Events", &body)).into_response()
}

fn query_string(params: &HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = params.iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_param(k), url_param(v)))
        .collect::<Vec<_>>()
        .join("&amp;")
}

/// The filter form, filled with the current query.
fn filter_form(state: &AppState, query: &HashMap<String, String>) -> String {
    let value = |name: &str| esc(query.get(name).map(String::as_str).unwrap_or(""));
    let text_input = |name: &str, label: &str, hint: &str| {
        format!(
            r#"<label>{label}<input name="{name}" id="f-{name}" value="{}" placeholder="{hint}"></label>"#,
            value(name)
        )
    };
    let select = |name: &str, label: &str, options: &[String]| {
        let current = query.get(name).map(String::as_str).unwrap_or("");
        let mut out = format!(
            r#"<label>{label}<select name="{name}" id="f-{name}"><option value="">any</option>"#
        );
        for option in options {
            let selected = if option == current { " selected" } else { "" };
            let _ = write!(out, r#"<option{selected}>{}</option>"#, esc(option));
        }
        out.push_str("</select></label>");
        out
    };
    let sources = state.sources.names();
    let categories: Vec<String> = Category::NAMES.iter().map(|c| c.to_string()).collect();
    let policies: Vec<String> = state
        .engine
        .policies()
        .policies
        .iter()
        .map(|p| p.name.clone())
        .collect();
    format!(
        r#"<form class="filters" method="get" action="/">{}{}{}{}{}{}{}<button type="submit" id="apply">Filter</button> <a href="/">clear</a></form>"#,
        select("source", "Source", &sources),
        select("category", "Category", &categories),
        select("policy", "Matched policy", &policies),
        text_input("text", "Text", "in title or message"),
        text_input("tag", "Tag", "name or name=value"),
        text_input("since", "Since", "1h or 2026-01-31T09:00:00Z"),
        text_input("until", "Until", ""),
    )
}

fn event_table(events: &[StoredEvent]) -> String {
    if events.is_empty() {
        return r#"<p class="empty" id="no-events">No events match these filters.</p>"#.into();
    }
    let mut out = String::from(
        r#"<table id="events"><thead><tr><th>Time</th><th>Source</th><th>Category</th><th>Title / message</th><th>Matched</th></tr></thead><tbody>"#,
    );
    for stored in events {
        let e = &stored.event;
        let headline = if e.title.is_empty() {
            &e.message
        } else {
            &e.title
        };
        let headline: String = headline.chars().take(LIST_MESSAGE_CHARS).collect();
        let _ = write!(
            out,
            r#"<tr class="event"><td><a href="/events/{id}">{time}</a></td><td>{source}</td><td>{badge}</td><td class="message"><a href="/events/{id}">{headline}</a></td><td>{matched}</td></tr>"#,
            id = esc(&e.id),
            time = esc(&e.received_rfc3339()),
            source = esc(&e.source),
            badge = badge(e.category.as_str()),
            headline = esc(&headline),
            matched = esc(&stored.matched.join(", ")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

async fn event_page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match event_detail(&state, id).await {
        Ok(Some(detail)) => Html(page("Event", &event_body(&detail))).into_response(),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "Event",
            "No event has this id; it may have been removed by retention.",
            "",
        ),
        Err(e) => error_page(e.status(), "Event", e.message(), ""),
    }
}

fn event_body(detail: &EventDetail) -> String {
    let e = &detail.event.event;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<dl id="event"><dt>Id</dt><dd>{}</dd><dt>Time</dt><dd>{}</dd><dt>Source</dt><dd>{}</dd><dt>Category</dt><dd>{}</dd><dt>Title</dt><dd id="title">{}</dd><dt>Tags</dt><dd id="tags">{}</dd></dl>"#,
        esc(&e.id),
        esc(&e.received_rfc3339()),
        esc(&e.source),
        badge(e.category.as_str()),
        esc(&e.title),
        e.tags
            .iter()
            .map(|(k, v)| format!(r#"<span class="tag">{}={}</span>"#, esc(k), esc(v)))
            .collect::<String>(),
    );
    let _ = write!(
        out,
        r#"<h2>Message</h2><pre id="message">{}</pre>"#,
        esc(&e.message)
    );
    out.push_str(r#"<h2>Policies</h2><table id="explanation"><thead><tr><th>Policy</th><th>Verdict</th><th>Why</th></tr></thead><tbody>"#);
    for x in &detail.explanation.policies {
        let (class, verdict) = if x.verdict.matched() {
            ("matched", "matched")
        } else {
            ("notmatched", "did not match")
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="{class}">{verdict}</td><td>{}</td></tr>"#,
            esc(&x.policy),
            esc(&x.verdict.reason()),
        );
    }
    out.push_str("</tbody></table>");
    if let Some(error) = &detail.explanation.error {
        let _ = write!(
            out,
            r#"<p class="empty" id="explanation-error">{}</p>"#,
            esc(error)
        );
    } else if !detail.explanation.current {
        out.push_str(r#"<p class="empty" id="explanation-version">Explained with the policies as they were when the event arrived; they have changed since.</p>"#);
    }
    out.push_str(&deliveries_table(detail));
    out.push_str(&headers_table(&e.headers));
    out
}

fn deliveries_table(detail: &EventDetail) -> String {
    if detail.deliveries.is_empty() {
        return r#"<h2>Deliveries</h2><p class="empty" id="no-deliveries">No notifications were sent for this event.</p>"#.into();
    }
    let mut out = String::from(
        r#"<h2>Deliveries</h2><table id="deliveries"><thead><tr><th>Policy</th><th>Channel</th><th>Recipient</th><th>Status</th><th>Attempts</th><th>Last error</th></tr></thead><tbody>"#,
    );
    for d in &detail.deliveries {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.policy),
            esc(&d.channel),
            esc(&d.recipient),
            esc(d.status.as_str()),
            d.attempts,
            esc(d.last_error.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn headers_table(headers: &[(String, String)]) -> String {
    if headers.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<h2>Headers</h2><table id="headers"><tbody>"#);
    for (k, v) in headers {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</tbody></table>");
    out
}

async fn policies_page(State(state): State<Arc<AppState>>) -> Response {
    let set = state.engine.policies();
    let status = state.reloader.status();
    let mut out = String::new();
    if let Some(error) = &status.last_error {
        let _ = write!(
            out,
            r#"<p class="error" id="reload-error">The last reload failed; the policies below are still running.</p><pre>{}</pre>"#,
            esc(error)
        );
    }
    out.push_str(r#"<table id="policies"><thead><tr><th>Name</th><th>Category</th><th>Sources</th><th>Enabled</th><th>File</th><th>Events</th></tr></thead><tbody>"#);
    for p in &set.policies {
        let sources = p
            .sources
            .as_ref()
            .map_or("all".to_string(), |s| s.join(", "));
        let _ = write!(
            out,
            r#"<tr><td title="{desc}">{name}</td><td>{badge}</td><td>{sources}</td><td>{enabled}</td><td>{file}</td><td><a href="/?policy={link}">matched events</a></td></tr>"#,
            desc = esc(&p.description),
            name = esc(&p.name),
            badge = badge(p.category.as_str()),
            sources = esc(&sources),
            enabled = if p.enabled { "yes" } else { "no" },
            file = esc(&p.file),
            link = url_param(&p.name),
        );
    }
    out.push_str("</tbody></table>");
    if let Some(when) = &status.last_success {
        let _ = write!(
            out,
            r#"<p class="empty">Loaded {} ({}).</p>"#,
            esc(when),
            esc(&status.trigger)
        );
    }
    Html(page("Policies", &out)).into_response()
}
