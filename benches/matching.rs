//! Matching cost against policy sets of 10 to 10,000 policies, with fresh messages.
//!
//! The policies are a third substring (`contains`), a third regex, and a third
//! key-value with a numeric comparison, each keyed on its own word, as an ops team's
//! policies are on their own services. Every iteration evaluates a different 300-byte
//! message, so nothing is helped by repetition. `indexed` is what the server does;
//! `each_policy` evaluates every policy in turn, for comparison.
//!
//! Run: `cargo bench --bench matching`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tripline::engine;
use tripline::event::Event;
use tripline::field::Scope;
use tripline::policy::PolicySet;

/// A deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A made-up word such as `kvoratel`: service and host names of an imaginary fleet.
fn word(rng: &mut Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "vo", "ra", "tel", "min", "so", "dre", "lux", "pa", "qen", "zor", "bi", "ful", "gat",
        "hy", "jo",
    ];
    (0..4)
        .map(|_| SYLLABLES[(rng.next() % SYLLABLES.len() as u64) as usize])
        .collect()
}

/// `n` policies, a third of each kind, as one YAML document.
fn policies(n: usize, rng: &mut Rng) -> String {
    let mut text = String::from("policies:\n");
    for i in 0..n {
        let w = word(rng);
        let body = match i % 3 {
            0 => format!("conditions: [{{field: message, contains: '{w} failed'}}]"),
            1 => {
                format!("conditions: [{{field: message, regex: '\\b{w}-\\d+ (timeout|refused)'}}]")
            }
            _ => format!(
                "extract: [{{kv: {{}}}}]\n    conditions: [{{field: {w}_ms, gt: {}}}]",
                100 + i
            ),
        };
        text.push_str(&format!("  - name: p{i}\n    {body}\n"));
    }
    text
}

/// A 300-byte log-like message of random words and a few key=value pairs.
fn message(rng: &mut Rng) -> String {
    let mut text = String::with_capacity(320);
    while text.len() < 280 {
        let w = word(rng);
        match rng.next() % 5 {
            0 => text.push_str(&format!("{w}_ms={} ", rng.next() % 1000)),
            1 => text.push_str(&format!("{w}-{} ", rng.next() % 100)),
            _ => text.push_str(&format!("{w} ")),
        }
    }
    text.truncate(300);
    text
}

fn compile(n: usize) -> PolicySet {
    let mut rng = Rng(0x7269_706c_696e_6521 ^ n as u64);
    let text = policies(n, &mut rng);
    PolicySet::compile(vec![(PathBuf::from("bench.yaml"), text)], None)
        .expect("generated policies compile")
}

fn events(count: usize) -> Vec<Event> {
    let mut rng = Rng(0x6d65_7373_6167_6573);
    (0..count)
        .map(|i| {
            Event::sample(
                i.to_string(),
                "bench".into(),
                String::new(),
                message(&mut rng),
                &[],
            )
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let events = events(4096);
    let mut group = c.benchmark_group("matching");
    for n in [10, 100, 1_000, 10_000] {
        let set = compile(n);
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("indexed", n), &set, |b, set| {
            b.iter(|| {
                i = (i + 1) % events.len();
                black_box(engine::evaluate(set, &events[i]).matched.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("each_policy", n), &set, |b, set| {
            b.iter(|| {
                i = (i + 1) % events.len();
                let scope = Scope::new(&events[i], &set.extractors);
                black_box(
                    set.policies
                        .iter()
                        .filter(|p| engine::policy_matches(p, &scope))
                        .count(),
                )
            })
        });
    }
    group.finish();
}

fn loading(c: &mut Criterion) {
    let mut group = c.benchmark_group("loading");
    group.sample_size(10);
    let mut rng = Rng(0x7269_706c_696e_6521 ^ 10_000);
    let text = policies(10_000, &mut rng);
    group.bench_function("compile_10000", |b| {
        b.iter(|| {
            let files = vec![(PathBuf::from("bench.yaml"), text.clone())];
            black_box(
                PolicySet::compile(files, None)
                    .expect("compiles")
                    .policies
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, matching, loading);
criterion_main!(benches);
