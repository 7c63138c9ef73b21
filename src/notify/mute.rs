//! Mutes: a policy silenced until a time. Its events are still recorded and its
//! deliveries are stored as `muted` instead of being sent; the store applies the mute
//! in the transaction that stores the event, so it holds across restarts and for
//! every process sharing the store.

use time::OffsetDateTime;

use super::duration;
use crate::policy::PolicySet;

/// The longest a mute may last, so a typo does not silence a policy for ever.
pub const MAX_MUTE: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// Formats Unix milliseconds as RFC 3339, as the API shows times.
pub fn time_text(ms: i64) -> String {
    crate::store::sqlite::ms_text(ms)
}

/// Whether `name` is a loaded policy; the error suggests a close name.
pub fn check_policy(set: &PolicySet, name: &str) -> Result<(), String> {
    if set.get(name).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = set.policies.iter().map(|p| p.name.as_str()).collect();
    match crate::yaml::suggest(name, &names) {
        Some(s) => Err(format!("no policy is named `{name}`; did you mean `{s}`?")),
        None => Err(format!("no policy is named `{name}`")),
    }
}

/// The end of a mute lasting `text` (such as `2h`) from `now`.
pub fn until_for(text: &str, now: i64) -> Result<i64, String> {
    let length = duration::parse(text)
        .ok_or_else(|| format!("`{text}` is not a duration; write it like `30m`, `2h` or `1d`"))?;
    if length.is_zero() || length > MAX_MUTE {
        return Err(format!(
            "a mute lasts more than zero and at most 366 days, found `{text}`"
        ));
    }
    Ok(now + length.as_millis() as i64)
}

/// The end of a mute given as an RFC 3339 time, which must be in the future.
pub fn until_at(text: &str, now: i64) -> Result<i64, String> {
    let format = time::format_description::well_known::Rfc3339;
    let at = OffsetDateTime::parse(text, &format)
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as `2026-01-01T12:00:00Z`"))?;
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    if ms <= now {
        return Err(format!("`{text}` is in the past"));
    }
    Ok(ms)
}

/// Reads an API body: `{"for": "2h"}` or `{"until": "2026-01-01T12:00:00Z"}`.
pub fn until_from_json(body: &[u8], now: i64) -> Result<i64, String> {
    const HELP: &str = r#"send `{"for": "2h"}` or `{"until": "2026-01-01T12:00:00Z"}`"#;
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| format!("the body is not JSON; {HELP}"))?;
    match (value.get("for"), value.get("until")) {
        (Some(serde_json::Value::String(text)), None) => until_for(text, now),
        (None, Some(serde_json::Value::String(text))) => until_at(text, now),
        _ => Err(format!("give one of `for` and `until` as text; {HELP}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_bodies_table() {
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let cases: &[(&str, Result<i64, &str>)] = &[
            (r#"{"for": "2h"}"#, Ok(now + 7_200_000)),
            (r#"{"until": "2026-01-01T00:00:01Z"}"#, Ok(now + 1_000)),
            (
                r#"{"until": "2025-12-31T23:00:00Z"}"#,
                Err("`2025-12-31T23:00:00Z` is in the past"),
            ),
            (
                r#"{"for": "soon"}"#,
                Err("`soon` is not a duration; write it like `30m`, `2h` or `1d`"),
            ),
            (
                r#"{"for": "0s"}"#,
                Err("a mute lasts more than zero and at most 366 days, found `0s`"),
            ),
            (
                r#"{"for": 2}"#,
                Err(
                    r#"give one of `for` and `until` as text; send `{"for": "2h"}` or `{"until": "2026-01-01T12:00:00Z"}`"#,
                ),
            ),
            (
                "nope",
                Err(
                    r#"the body is not JSON; send `{"for": "2h"}` or `{"until": "2026-01-01T12:00:00Z"}`"#,
                ),
            ),
        ];
        for (body, want) in cases {
            let got = until_from_json(body.as_bytes(), now);
            assert_eq!(
                got.as_ref().map_err(String::as_str),
                want.as_ref().map_err(|e| *e),
                "{body}"
            );
        }
    }
}
