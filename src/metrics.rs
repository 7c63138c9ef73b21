//! Metrics in the Prometheus text format, served at `/metrics`.
//!
//! Counters live in memory and start at zero with the process, as Prometheus expects.
//! Delivery counts and the outbox depth are read from the store at scrape time, so they
//! are right whichever part of tripline changed a delivery and survive restarts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::store::StoreStats;

/// Upper bounds, in seconds, of the request latency histogram's buckets.
pub const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Webhooks and structured events received, by source and outcome.
pub const WEBHOOKS: &str = "tripline_webhooks_total";
/// Events matched, by policy.
pub const POLICY_MATCHES: &str = "tripline_policy_matches_total";
/// Policy reloads, by outcome (`success` or `failure`).
pub const RELOADS: &str = "tripline_reloads_total";
/// Events removed by retention or by a delete request.
pub const EVENTS_REMOVED: &str = "tripline_events_removed_total";

const HELP: &[(&str, &str, &str)] = &[
    (
        WEBHOOKS,
        "counter",
        "Requests to the ingest routes, by source and outcome.",
    ),
    (POLICY_MATCHES, "counter", "Events matched, by policy."),
    (RELOADS, "counter", "Policy reloads, by outcome."),
    (
        EVENTS_REMOVED,
        "counter",
        "Events removed by retention or deletion, by reason.",
    ),
];

type Labels = Vec<(&'static str, String)>;

/// All in-memory metrics; cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    gauges: Mutex<BTreeMap<&'static str, f64>>,
}

#[derive(Default)]
struct Histogram {
    /// Counts per bucket of [`LATENCY_BUCKETS`], not cumulative.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Gauges with their help text.
pub mod gauge {
    /// Unix time of the last successful policy load.
    pub const RELOAD_LAST_SUCCESS: &str = "tripline_reload_last_success_timestamp_seconds";
    /// How long the last policy load took.
    pub const RELOAD_DURATION: &str = "tripline_reload_duration_seconds";
    /// 1 when the last reload failed and an older policy set is running.
    pub const RELOAD_FAILED: &str = "tripline_reload_failed";
    /// Policies in the running set.
    pub const POLICIES: &str = "tripline_policies_loaded";

    pub(super) const HELP: &[(&str, &str)] = &[
        (
            RELOAD_LAST_SUCCESS,
            "Unix time of the last successful policy load.",
        ),
        (RELOAD_DURATION, "Seconds the last policy load took."),
        (
            RELOAD_FAILED,
            "1 when the last reload failed and the previous set runs.",
        ),
        (POLICIES, "Policies in the running set."),
    ];
}

impl Metrics {
    /// Adds one to the counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds `n` to the counter `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name, labels)).or_default() += n;
    }

    /// Sets a gauge from [`gauge`].
    pub fn set(&self, name: &'static str, value: f64) {
        let mut gauges = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        gauges.insert(name, value);
    }

    /// Records one request's duration under its route.
    pub fn observe_latency(&self, route: &str, seconds: f64) {
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(route.to_string()).or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|le| seconds <= *le) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self, store: Option<&StoreStats>) -> String {
        let mut out = String::new();
        self.render_counters(&mut out);
        self.render_gauges(&mut out);
        if let Some(stats) = store {
            render_store(&mut out, stats);
        }
        self.render_latency(&mut out);
        out
    }

    fn render_counters(&self, out: &mut String) {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((_, labels), value) in counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{name}{} {value}", label_text(labels));
            }
        }
    }

    fn render_gauges(&self, out: &mut String) {
        let gauges = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in gauge::HELP {
            let Some(value) = gauges.get(name) else {
                continue;
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }

    fn render_latency(&self, out: &mut String) {
        let name = "tripline_http_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to answer HTTP requests, by route.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (route, h) in latency.iter() {
            let route = escape(route);
            let mut cumulative = 0;
            for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.count);
        }
    }
}

fn render_store(out: &mut String, stats: &StoreStats) {
    let name = "tripline_deliveries";
    let _ = writeln!(
        out,
        "# HELP {name} Deliveries in the store, by channel and status."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (channel, status, n) in &stats.deliveries {
        let labels = vec![("channel", channel.clone()), ("status", status.clone())];
        let _ = writeln!(out, "{name}{} {n}", label_text(&labels));
    }
    let name = "tripline_outbox_depth";
    let _ = writeln!(out, "# HELP {name} Deliveries waiting to be sent.");
    let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", stats.outbox_depth);
    let name = "tripline_events_stored";
    let _ = writeln!(out, "# HELP {name} Events in the store.");
    let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", stats.events);
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = Metrics::default();
        m.inc(WEBHOOKS, &[("source", "ci"), ("outcome", "accepted")]);
        m.inc(WEBHOOKS, &[("source", "ci"), ("outcome", "accepted")]);
        m.inc(POLICY_MATCHES, &[("policy", "say \"hi\"\n")]);
        m.set(gauge::POLICIES, 3.0);
        m.observe_latency("/webhook/{api_id}", 0.02);
        m.observe_latency("/webhook/{api_id}", 7.0);
        let stats = StoreStats {
            events: 2,
            deliveries: vec![("email".into(), "pending".into(), 4)],
            outbox_depth: 4,
        };
        let text = m.render(Some(&stats));
        for line in [
            "tripline_webhooks_total{source=\"ci\",outcome=\"accepted\"} 2",
            "tripline_policy_matches_total{policy=\"say \\\"hi\\\"\\n\"} 1",
            "tripline_policies_loaded 3",
            "tripline_deliveries{channel=\"email\",status=\"pending\"} 4",
            "tripline_outbox_depth 4",
            "tripline_http_request_duration_seconds_bucket{route=\"/webhook/{api_id}\",le=\"0.01\"} 0",
            "tripline_http_request_duration_seconds_bucket{route=\"/webhook/{api_id}\",le=\"0.025\"} 1",
            "tripline_http_request_duration_seconds_bucket{route=\"/webhook/{api_id}\",le=\"5\"} 1",
            "tripline_http_request_duration_seconds_bucket{route=\"/webhook/{api_id}\",le=\"+Inf\"} 2",
            "tripline_http_request_duration_seconds_count{route=\"/webhook/{api_id}\"} 2",
            "# TYPE tripline_reloads_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
    }
}
