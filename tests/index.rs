//! The matching index never changes what matches: random policies and messages give the
//! same matches with the index as when every policy is evaluated.

use std::path::PathBuf;

use tripline::engine;
use tripline::event::Event;
use tripline::field::Scope;
use tripline::policy::PolicySet;

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The words policies and messages are made of.
struct Vocabulary(Vec<String>);

impl Vocabulary {
    /// [`WORDS`], with `services` made-up service names such as `svc-12-api`: a set of
    /// policies over many of them needs thousands of literals, as a large fleet's does.
    fn with_services(services: usize) -> Self {
        let mut words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        words.extend((0..services).map(|i| format!("svc-{i}-api")));
        Vocabulary(words)
    }

    fn pick(&self, rng: &mut Rng) -> &str {
        &self.0[(rng.next() % self.0.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "deploy", "Deploy", "failed", "error", "timeout", "db-1", "web", "prod", "ok", "ÉCHEC", "échec",
];

fn condition(rng: &mut Rng, words: &Vocabulary, depth: u32) -> String {
    let word = words.pick(rng);
    let n = rng.next() % 100;
    match rng.next() % if depth > 1 { 12 } else { 15 } {
        0 => format!("{{field: message, contains: '{word}'}}"),
        1 => format!("{{field: message, contains: '{word}', case_sensitive: false}}"),
        2 => format!("{{field: message, not_contains: '{word}'}}"),
        3 => format!("{{field: message, regex: '\\b{word}(ed|ing)?\\b'}}"),
        4 => format!("{{field: message, regex: '(?i){word}.*'}}"),
        5 => format!("{{field: message, starts_with: '{word}'}}"),
        6 => format!("{{field: message, ends_with: '{word}'}}"),
        7 => format!("{{field: status, ge: {}}}", 400 + n),
        8 => format!("{{field: level, in: [{word}, warn]}}"),
        9 => format!("{{field: message, equals: '{word}'}}"),
        10 => "{field: host, exists: true}".to_string(),
        11 => format!("{{field: level, not_equals: '{word}'}}"),
        12 => format!(
            "{{all: [{}, {}]}}",
            condition(rng, words, depth + 1),
            condition(rng, words, depth + 1)
        ),
        13 => format!(
            "{{any: [{}, {}]}}",
            condition(rng, words, depth + 1),
            condition(rng, words, depth + 1)
        ),
        _ => format!("{{not: {}}}", condition(rng, words, depth + 1)),
    }
}

fn policies(rng: &mut Rng, words: &Vocabulary, count: usize) -> PolicySet {
    let mut text = String::from("policies:\n");
    for i in 0..count {
        let mode = if rng.next().is_multiple_of(3) {
            "any"
        } else {
            "all"
        };
        text.push_str(&format!(
            "  - name: p{i}\n    match: {mode}\n    extract: [{{kv: {{}}}}, {{regex: 'host=(?P<host>[a-z0-9-]+)'}}]\n    conditions: [{}, {}]\n",
            condition(rng, words, 0),
            condition(rng, words, 0)
        ));
    }
    PolicySet::compile(vec![(PathBuf::from("random.yaml"), text)], None)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn message(rng: &mut Rng, vocabulary: &Vocabulary) -> String {
    let mut words: Vec<String> = (0..6).map(|_| vocabulary.pick(rng).to_string()).collect();
    match rng.next() % 4 {
        0 => words.push(format!("status={}", 350 + rng.next() % 200)),
        1 => words.push(format!("level={}", vocabulary.pick(rng))),
        2 => words.push(format!("host={}", vocabulary.pick(rng).to_lowercase())),
        _ => {}
    }
    words.join(" ")
}

#[test]
fn indexed_matching_equals_evaluating_every_policy() {
    let words = Vocabulary::with_services(0);
    assert_index_agrees(&mut Rng(0x5eed_1234_abcd_ef01), &words, 6, 120, 300);
}

/// Past a few hundred literals the index searches by hashed anchors rather than with
/// an automaton; it must agree all the same.
#[test]
fn indexed_matching_equals_evaluating_every_policy_with_thousands_of_literals() {
    let words = Vocabulary::with_services(1500);
    let mut rng = Rng(0x0ddb_a11c_afe0_0001);
    let set = policies(&mut rng, &words, 1000);
    assert!(set.index.literals() > 500, "{}", set.index.literals());
    assert_index_agrees(&mut rng, &words, 2, 1000, 50);
}

/// Over `sets` random sets of `count` policies, 150 messages each match the same
/// policies with the index as without; at least `matches` matches in all.
fn assert_index_agrees(
    rng: &mut Rng,
    words: &Vocabulary,
    sets: usize,
    count: usize,
    matches: usize,
) {
    let mut total_matches = 0;
    for _ in 0..sets {
        let set = policies(rng, words, count);
        for _ in 0..150 {
            let text = message(rng, words);
            let event = Event::sample("e".into(), "s".into(), String::new(), text.clone(), &[]);
            let scope = Scope::new(&event, &set.extractors);
            let naive: Vec<String> = set
                .policies
                .iter()
                .filter(|p| engine::policy_matches(p, &scope))
                .map(|p| p.name.clone())
                .collect();
            let indexed = engine::evaluate(&set, &event).matched;
            assert_eq!(indexed, naive, "message {text:?}");
            total_matches += naive.len();
        }
    }
    assert!(
        total_matches > matches,
        "the generator should produce matches: {total_matches}"
    );
}

#[test]
fn the_index_narrows_indexable_policies() {
    let text = "policies:\n  - {name: a, conditions: [{field: message, contains: disk full}]}\n  - {name: b, conditions: [{field: message, regex: '\\bOOM\\b'}]}\n  - {name: c, extract: [{kv: {}}], conditions: [{field: status, ge: 500}]}\n  - {name: d, conditions: [{field: message, not_contains: ok}]}\n";
    let set = PolicySet::compile(vec![(PathBuf::from("p.yaml"), text.into())], None).unwrap();
    assert_eq!(
        set.index.unindexed(),
        1,
        "only `not_contains` gives nothing to key on"
    );
    assert_eq!(set.index.candidates("kernel: OOM killer"), [1, 3]);
    assert_eq!(set.index.candidates("status=503 disk full"), [0, 2, 3]);
    assert_eq!(set.index.candidates("all quiet"), [3]);
}
