//! Policy regexes, compiled once at load with limits suited to untrusted patterns.
//!
//! A policy set may hold thousands of regexes, so each must be small. The general
//! `regex::Regex` also builds a one-pass DFA for every pattern it can, which makes
//! capture groups faster but costs tens of kilobytes per pattern: at 10,000 policies
//! that is most of the process's memory. A [`Pattern`] is the same engine without it;
//! `is_match`, which conditions use, never needed it, and extractors still get their
//! groups from the other engines.

use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::PatternID;

/// Largest compiled size of one policy regex; bounds memory for hostile patterns.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Largest lazy-DFA cache of one policy regex.
pub const REGEX_DFA_LIMIT: usize = 2 << 20;

/// Regexes nest at most this deep, so a pattern cannot exhaust the parser's stack.
pub const REGEX_NEST_LIMIT: u32 = 64;

/// A compiled regex that remembers its source text.
#[derive(Clone, Debug)]
pub struct Pattern {
    regex: meta::Regex,
    source: String,
}

/// Why a pattern does not compile, worded for the policy author.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("is too large once compiled (limit {0} bytes); simplify it")]
    TooBig(usize),
    #[error("does not compile: {0}")]
    Syntax(String),
}

impl Pattern {
    /// Compiles `source` within the limits above.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let config = meta::Config::new()
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .hybrid_cache_capacity(REGEX_DFA_LIMIT)
            .onepass(false);
        let built = meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().nest_limit(REGEX_NEST_LIMIT))
            .build(source);
        match built {
            Ok(regex) => Ok(Pattern {
                regex,
                source: source.to_string(),
            }),
            Err(e) => match e.size_limit() {
                Some(limit) => Err(PatternError::TooBig(limit)),
                None => Err(PatternError::Syntax(syntax_detail(&e))),
            },
        }
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern as written (with any flags tripline added).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The names of the named groups, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.regex
            .group_info()
            .pattern_names(PatternID::ZERO)
            .flatten()
    }

    /// The text of each named group of the first match that took part in it.
    pub fn named_groups<'t>(&self, text: &'t str) -> Vec<(&str, &'t str)> {
        let mut captures: Captures = self.regex.create_captures();
        self.regex.captures(text, &mut captures);
        if !captures.is_match() {
            return Vec::new();
        }
        let info = self.regex.group_info();
        info.pattern_names(PatternID::ZERO)
            .enumerate()
            .filter_map(|(group, name)| {
                let span = captures.get_group(group)?;
                Some((name?, text.get(span.range())?))
            })
            .collect()
    }
}

/// The last line of the parser's message: the line that says what is wrong (the lines
/// before it repeat the pattern and underline the place).
fn syntax_detail(error: &meta::BuildError) -> String {
    let detail = match error.syntax_error() {
        Some(syntax) => syntax.to_string(),
        None => error.to_string(),
    };
    let last = detail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_groups() {
        let p = Pattern::new(r"host=(?P<host>[\w.-]+)( port=(?P<port>\d+))?").unwrap();
        assert!(p.is_match("x host=db-1.example"));
        assert!(!p.is_match("hostname=db"));
        assert_eq!(p.names().collect::<Vec<_>>(), ["host", "port"]);
        assert_eq!(
            p.named_groups("host=db-1 port=5432"),
            [("host", "db-1"), ("port", "5432")]
        );
        // A group that took no part in the match is left out.
        assert_eq!(p.named_groups("host=db-1"), [("host", "db-1")]);
        assert!(p.named_groups("nothing here").is_empty());
    }

    #[test]
    fn unicode_classes_and_boundaries() {
        let p = Pattern::new(r"\bdéploiement-\d+\b").unwrap();
        assert!(p.is_match("échec: déploiement-42 annulé"));
        assert!(p.is_match("déploiement-٣"), "Unicode digits are digits");
        assert!(!p.is_match("xdéploiement-42"));
    }

    #[test]
    fn errors_name_the_mistake() {
        let error = Pattern::new("(unclosed").unwrap_err();
        assert_eq!(
            error,
            PatternError::Syntax("unclosed group".to_string()),
            "{error}"
        );
        assert!(matches!(
            Pattern::new(r"\w{1000}\w{1000}\w{1000}"),
            Err(PatternError::TooBig(REGEX_SIZE_LIMIT))
        ));
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(Pattern::new(&deep), Err(PatternError::Syntax(_))));
    }
}
