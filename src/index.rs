//! The matching index: which policies can possibly match a message, found with one
//! pass over the message instead of evaluating every policy.
//!
//! At load, each policy gets a set of *necessary literals*: texts of which at least one
//! must appear in the message for the policy to match. They come from `contains`,
//! `starts_with`, `ends_with`, `equals` and `in` on the message, from the literal
//! prefixes (or suffixes) of regexes on the message, and from the keys that a `kv`
//! extractor must see to produce a field (`status=` for `status`). Of an `all` list one
//! child's literals suffice (the most selective is kept); an `any` list needs literals
//! for every child. A policy with no necessary literals (for example one that only uses
//! `not_contains`, or JSON fields) is always evaluated, at its own cost.
//!
//! The index only narrows: every candidate is still evaluated in full, so it can never
//! make a policy match that would not. Policies with `clear:` conditions are always
//! evaluated, since those conditions hold on events the policy itself does not match.

use regex_syntax::hir::literal::{ExtractKind, Extractor as LiteralExtractor, Seq};

use crate::condition::{Condition, Op, Test};
use crate::extract::Extractor;
use crate::field::FieldRef;
use crate::policy::Policy;

mod literals;

use literals::Literals;

/// Literals shorter than this select almost every message; a policy whose best
/// literal is shorter is evaluated for every message instead.
pub const MIN_LITERAL_LEN: usize = 3;

/// A regex with more alternative literals than this is not worth indexing.
pub const MAX_LITERALS_PER_REGEX: usize = 64;

/// The compiled index of a policy set.
#[derive(Debug, Default)]
pub struct Index {
    literals: Literals,
    /// For each literal (by its id in `literals`), the policies that need it, ascending.
    policies_by_literal: Vec<Vec<u32>>,
    /// Policies evaluated for every message, ascending.
    always: Vec<u32>,
}

impl Index {
    /// Builds the index of `policies`, whose extractors are `extractors`.
    pub fn build(policies: &[Policy], extractors: &[Extractor]) -> Self {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        let mut ids: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
        let mut index = Index::default();
        for (i, policy) in policies.iter().enumerate() {
            // `clear:` conditions are tested on events the policy itself does not match.
            let needed =
                necessary(&policy.condition, extractors).filter(|_| policy.clear.is_none());
            let Some(needed) = needed else {
                index.always.push(i as u32);
                continue;
            };
            for literal in needed {
                let id = *ids.entry(literal.clone()).or_insert_with(|| {
                    literals.push(literal);
                    index.policies_by_literal.push(Vec::new());
                    literals.len() - 1
                });
                let list = &mut index.policies_by_literal[id];
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
        index.literals = Literals::new(literals);
        index
    }

    /// The policies that may match `message`, in load order.
    pub fn candidates(&self, message: &str) -> Vec<u32> {
        let mut out = self.always.clone();
        let found = self.literals.find(message.as_bytes());
        if !found.is_empty() {
            for id in found {
                out.extend_from_slice(&self.policies_by_literal[id as usize]);
            }
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// How many distinct literals the index looks for in a message.
    pub fn literals(&self) -> usize {
        self.policies_by_literal.len()
    }

    /// How many policies are evaluated for every message.
    pub fn unindexed(&self) -> usize {
        self.always.len()
    }
}

/// Literals of which one must be in the message for `condition` to hold; `None` when
/// no such set is known.
fn necessary(condition: &Condition, extractors: &[Extractor]) -> Option<Vec<Vec<u8>>> {
    match condition {
        Condition::Test(test) => test_literals(test, extractors),
        Condition::All(list) => list
            .iter()
            .filter_map(|c| necessary(c, extractors))
            .max_by_key(|set| set.iter().map(Vec::len).min().unwrap_or(0)),
        Condition::Any(list) => {
            let sets: Option<Vec<Vec<Vec<u8>>>> =
                list.iter().map(|c| necessary(c, extractors)).collect();
            Some(sets?.into_iter().flatten().collect())
        }
        Condition::Not(..) => None,
    }
    .filter(|set| !set.is_empty() && set.iter().all(|l| l.len() >= MIN_LITERAL_LEN))
}

fn test_literals(test: &Test, extractors: &[Extractor]) -> Option<Vec<Vec<u8>>> {
    if test.negated || matches!(test.op, Op::Exists(false)) {
        return None;
    }
    match &test.field {
        FieldRef::Message => op_literals(&test.op),
        FieldRef::Extracted { name, from } => {
            let sets: Option<Vec<Vec<Vec<u8>>>> = from
                .iter()
                .map(|id| extractor_literals(extractors.get(*id)?, name))
                .collect();
            Some(sets?.into_iter().flatten().collect())
        }
        _ => None,
    }
}

/// Literals the message must contain for `op` to hold on the message itself.
fn op_literals(op: &Op) -> Option<Vec<Vec<u8>>> {
    let exact = |text: &str| text.as_bytes().to_vec();
    match op {
        Op::Contains(s) | Op::StartsWith(s) | Op::EndsWith(s) => Some(vec![exact(s)]),
        // Numbers compare by value (`500` equals `500.0`), so their text is not required.
        Op::Equals(o) if o.number.is_none() && o.folded.is_none() => Some(vec![exact(&o.text)]),
        Op::In(list)
            if list
                .iter()
                .all(|o| o.number.is_none() && o.folded.is_none()) =>
        {
            Some(list.iter().map(|o| exact(&o.text)).collect())
        }
        Op::Regex(re) => regex_literals(re.as_str()),
        _ => None,
    }
}

/// Text an extractor must see in the message to produce the field `name`.
fn extractor_literals(extractor: &Extractor, name: &str) -> Option<Vec<Vec<u8>>> {
    match extractor {
        Extractor::Pairs { .. } => Some(vec![format!("{name}=").into_bytes()]),
        Extractor::Lines { .. } => Some(vec![name.as_bytes().to_vec()]),
        Extractor::Regex(re) => regex_literals(re.as_str()),
        Extractor::Json(_) | Extractor::Form { .. } => None,
    }
}

/// The literal prefixes, or failing that suffixes, every match of `pattern` has.
fn regex_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::parse(pattern).ok()?;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut seq: Seq = LiteralExtractor::new().kind(kind.clone()).extract(&hir);
        match kind {
            ExtractKind::Prefix => seq.optimize_for_prefix_by_preference(),
            _ => seq.optimize_for_suffix_by_preference(),
        }
        let Some(literals) = seq.literals() else {
            continue;
        };
        if literals.is_empty() || literals.len() > MAX_LITERALS_PER_REGEX {
            continue;
        }
        let literals: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_vec()).collect();
        if literals.iter().all(|l| l.len() >= MIN_LITERAL_LEN) {
            return Some(literals);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_literal_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            (r"\bdeploy(ment)?\b", Some(&["deploy"])),
            (r"(fail|error)ed", Some(&["failed", "errored"])),
            (r".*timeout", Some(&["timeout"])),
            (r"\d+ms", None),
            (r"host=\w+", Some(&["host="])),
            (r".*", None),
            (r"a|b", None),
        ];
        for (pattern, want) in cases {
            let got = regex_literals(pattern);
            let want: Option<Vec<Vec<u8>>> =
                want.map(|w| w.iter().map(|s| s.as_bytes().to_vec()).collect());
            assert_eq!(got, want, "{pattern}");
        }
    }

    #[test]
    fn case_insensitive_regexes_give_case_variants() {
        let literals = regex_literals("(?i)oom").unwrap();
        assert_eq!(literals.len(), 8);
        assert!(literals.contains(&b"OoM".to_vec()));
    }
}
