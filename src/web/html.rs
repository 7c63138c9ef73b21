//! Small HTML building blocks: escaping and the page layout.
//!
//! Every value from an event, a policy or a query is escaped with [`esc`] before it
//! reaches the page; senders control event text, so this is what stands between a
//! webhook and script running in an operator's browser.

use std::fmt::Write as _;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value.
pub fn url_param(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: `title` in the tab and heading, `body` already escaped.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · tripline</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<header><a class="brand" href="/">tripline</a>
<nav><a href="/">Events</a> <a href="/policies">Policies</a> <a href="/metrics">Metrics</a></nav></header>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// A category badge.
pub fn badge(category: &str) -> String {
    format!(r#"<span class="badge {c}">{c}</span>"#, c = esc(category))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_table() {
        for (input, want) in [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a \"b\" & 'c'", "a &quot;b&quot; &amp; &#39;c&#39;"),
        ] {
            assert_eq!(esc(input), want);
        }
        assert_eq!(url_param("env=prod &x"), "env%3Dprod%20%26x");
    }
}
