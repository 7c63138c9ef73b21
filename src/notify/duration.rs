//! Durations as people write them in policies and the configuration: `500ms`, `30s`,
//! `5m`, `2h`, `1d`, or several parts such as `1h30m`.

use std::time::Duration;

use crate::yaml::{Node, Reader};

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` and sums such as `1h30m`.
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis = match &rest[..unit] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(Duration::from_millis(number.checked_mul(millis)?))?;
        rest = &rest[unit..];
    }
    Some(total)
}

/// Formats a duration the way [`parse`] reads it, in its largest exact unit.
pub fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Reads a duration from YAML, reporting a located error when it is not one.
pub fn read(reader: &mut Reader, node: &Node, what: &str) -> Option<Duration> {
    let text = reader.scalar_text(node, what)?;
    let parsed = parse(&text);
    if parsed.is_none() {
        let message =
            format!("{what} must be a duration such as `30s`, `5m`, `2h` or `1d`, found `{text}`");
        reader.error(node.pos, message);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("30s", Some(30_000)),
            ("5m", Some(300_000)),
            ("2h", Some(7_200_000)),
            ("1d", Some(86_400_000)),
            ("1h30m", Some(5_400_000)),
            (" 10s ", Some(10_000)),
            ("10", None),
            ("", None),
            ("5 minutes", None),
            ("m", None),
            ("-5s", None),
            ("99999999999999999999d", None),
        ];
        for (text, want) in cases {
            let got = parse(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in ["250ms", "30s", "5m", "2h", "1d", "90s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
