//! What one event costs the store, by the size of the group it is committed with.
//!
//! Ingest commits the requests that wait together, in one transaction and one sync
//! (`src/ingest/commit.rs`). Each iteration here commits one group of 300-byte events,
//! one event per request as a webhook makes them, to a SQLite file on disk, so the
//! figures include the sync. Criterion reports time per event.
//!
//! Run: `cargo bench --bench commit`. The database goes in the system's temporary
//! directory; set `TMPDIR` to measure another disk.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tripline::event::{new_id, Event};
use tripline::store::sqlite::SqliteStore;
use tripline::store::{NewEvent, Store};

// Only the messages are used here, not the policies.
#[allow(dead_code)]
#[path = "../bench/generate.rs"]
mod generate;

fn events(count: usize, rng: &mut generate::Rng) -> Vec<Event> {
    let headers = [
        ("content-type".to_string(), "text/plain".to_string()),
        ("user-agent".to_string(), "bench".to_string()),
    ];
    (0..count)
        .map(|_| {
            let message = generate::message(rng);
            Event::sample(new_id(), "bench".into(), String::new(), message, &headers)
        })
        .collect()
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path()).expect("the store opens");
    let mut rng = generate::message_seed();
    let mut group = c.benchmark_group("group_commit");
    for size in [1, 4, 16, 64] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || events(size, &mut rng),
                |events| {
                    let batches: Vec<Vec<NewEvent<'_>>> = events
                        .iter()
                        .map(|event| {
                            vec![NewEvent {
                                event,
                                policy_version: "bench",
                                matched: &[],
                                deliveries: &[],
                                idempotency_key: None,
                                idempotency_since_ms: 0,
                            }]
                        })
                        .collect();
                    store.insert_groups(&batches).expect("the group commits")
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
