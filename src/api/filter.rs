//! Reading the Event Explorer's filters from a query string, shared by the JSON API
//! and the web page.

use std::collections::HashMap;

use axum::http::StatusCode;
use time::OffsetDateTime;

use crate::config::parse_duration;
use crate::event::Category;
use crate::ingest::ApiError;
use crate::store::sqlite::unix_ms;
use crate::store::{Cursor, EventFilter};

/// The most events one page returns.
pub const MAX_PAGE: usize = 500;

/// Events per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;

/// The query parameters `GET /api/events` understands.
pub const PARAMS: &[&str] = &[
    "source", "category", "policy", "text", "tag", "since", "until", "limit", "cursor",
];

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// Builds a filter; empty parameters are ignored, as an HTML form sends them.
pub fn from_query(
    query: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<EventFilter, ApiError> {
    if let Some(unknown) = query.keys().filter(|k| !PARAMS.contains(&k.as_str())).min() {
        let help = match crate::yaml::suggest(unknown, PARAMS) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("use {}", crate::yaml::backticked(PARAMS)),
        };
        return Err(bad(format!("unknown parameter `{unknown}`; {help}")));
    }
    let get = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let category = match get("category") {
        Some(text) => Some(Category::parse(text).ok_or_else(|| {
            bad(format!(
                "`category` must be `info`, `warning` or `critical`, found `{text}`"
            ))
        })?),
        None => None,
    };
    let tag = get("tag").map(|t| match t.split_once('=') {
        Some((name, value)) => (name.to_string(), Some(value.to_string())),
        None => (t.to_string(), None),
    });
    let cursor = match get("cursor") {
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
            bad(format!(
                "`cursor` `{text}` is not one this server gave; start again without it"
            ))
        })?),
        None => None,
    };
    Ok(EventFilter {
        source: get("source").map(str::to_string),
        category,
        policy: get("policy").map(str::to_string),
        text: get("text").map(str::to_string),
        tag,
        since_ms: get("since")
            .map(|t| time_param("since", t, now))
            .transpose()?,
        until_ms: get("until")
            .map(|t| time_param("until", t, now))
            .transpose()?,
        before: cursor,
        limit: limit(get("limit"))?,
    })
}

/// A page size from `limit`.
pub fn limit(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad(format!(
                "`limit` must be 1 to {MAX_PAGE}, found `{text}`"
            ))),
        },
    }
}

/// RFC 3339 time, or a duration meaning that long before now.
fn time_param(name: &str, text: &str, now: OffsetDateTime) -> Result<i64, ApiError> {
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(unix_ms(t));
    }
    match parse_duration(text) {
        Some(ago) => Ok(unix_ms(now).saturating_sub(ago.as_millis() as i64)),
        None => Err(bad(format!(
            "`{name}` must be an RFC 3339 time such as `2026-01-31T09:00:00Z` or a duration such as `1h`, found `{text}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_table() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ok = from_query(
            &query(&[
                ("tag", "env=prod"),
                ("since", "1h"),
                ("until", "2023-11-14T22:00:00Z"),
                ("source", ""),
                ("limit", "5"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(ok.tag, Some(("env".into(), Some("prod".into()))));
        assert_eq!(ok.since_ms, Some(1_700_000_000_000 - 3_600_000));
        assert_eq!(ok.until_ms, Some(1_699_999_200_000));
        assert_eq!((ok.source, ok.limit), (None, 5));
        let errors = [
            (query(&[("sorce", "ci")]), "unknown parameter `sorce`; did you mean `source`?"),
            (query(&[("category", "loud")]), "`category` must be `info`, `warning` or `critical`, found `loud`"),
            (query(&[("limit", "0")]), "`limit` must be 1 to 500, found `0`"),
            (query(&[("cursor", "nope")]), "`cursor` `nope` is not one this server gave; start again without it"),
            (query(&[("since", "last week")]), "`since` must be an RFC 3339 time such as `2026-01-31T09:00:00Z` or a duration such as `1h`, found `last week`"),
        ];
        for (q, want) in errors {
            let err = from_query(&q, now).err().unwrap();
            assert_eq!(err.message(), want);
        }
    }
}
