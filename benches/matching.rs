//! Matching cost against policy sets of 10 to 10,000 policies, with fresh messages.
//!
//! The policies and messages are those of `bench/generate.rs`: every iteration
//! evaluates a different 300-byte message, so nothing is helped by repetition.
//! `indexed` is what the server does; `each_policy` evaluates every policy in turn,
//! for comparison.
//!
//! Run: `cargo bench --bench matching`.

use std::hint::black_box;
use std::path::PathBuf;

#[path = "../bench/generate.rs"]
mod generate;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tripline::engine;
use tripline::event::Event;
use tripline::field::Scope;
use tripline::policy::PolicySet;

fn compile(n: usize) -> PolicySet {
    let text = generate::policies(n, &mut generate::policy_seed(n), "");
    PolicySet::compile(vec![(PathBuf::from("bench.yaml"), text)], None)
        .expect("generated policies compile")
}

fn events(count: usize) -> Vec<Event> {
    let mut rng = generate::message_seed();
    (0..count)
        .map(|i| {
            Event::sample(
                i.to_string(),
                "bench".into(),
                String::new(),
                generate::message(&mut rng),
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
    let text = generate::policies(10_000, &mut generate::policy_seed(10_000), "");
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
