//! `GET /metrics`: what every worker reported ([`crate::probe`]) and the
//! server-wide counters, in the Prometheus text format 0.0.4.
//!
//! The values are gathered, never recorded here: each worker keeps its own
//! plain counters and histograms, and a scrape copies and adds them up.
//! So the exposition crate is used for its data model and text encoder
//! only. It is tikv's `prometheus` (rust-prometheus): long maintained, with
//! an encoder for exactly the 0.0.4 text format Prometheus scrapes by
//! default (`prometheus-client` writes OpenMetrics instead), and a plain
//! data model (`proto::MetricFamily`) that a snapshot fills as it is. Its
//! own `Counter` and `Histogram` types, shared atomics registered in a
//! registry, are not used: recording through them would put shared
//! cache lines on the request path, which the worker-owned arrays avoid.
//! Built without default features, it brings no protobuf.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use tagcached_store::ShardStats;

use crate::latency::{CommandLatency, BUCKET_BOUNDS_NS, COMMANDS};
use crate::probe::WorkerReport;
use crate::shared::Shared;

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics text, from every worker's report (each worker's shard is
/// its index).
pub fn render(shared: &Shared, reports: &[WorkerReport]) -> Result<String, prometheus::Error> {
    let mut families = Families::default();
    per_shard(&mut families, reports);
    server_wide(&mut families, shared);
    latency(&mut families, reports);
    let mut text = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&families.0, &mut text)?;
    String::from_utf8(text).map_err(|error| prometheus::Error::Msg(error.to_string()))
}

/// The families in the order they are written.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

impl Families {
    /// A family of `kind` with one metric per `(labels, value)`.
    fn add(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
    ) {
        let metrics: Vec<Metric> = samples
            .into_iter()
            .map(|(labels, value)| {
                let mut metric = Metric::from_label(label_pairs(labels));
                match kind {
                    MetricType::COUNTER => {
                        let mut counter = Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    }
                    _ => {
                        let mut gauge = Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                }
                metric
            })
            .collect();
        self.push(name, help, kind, metrics);
    }

    fn push(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        family.set_metric(metrics);
        self.0.push(family);
    }

    /// One unlabelled sample.
    fn one(&mut self, name: &str, help: &str, kind: MetricType, value: f64) {
        self.add(name, help, kind, [(Vec::new(), value)]);
    }
}

fn label_pairs(labels: Vec<(&'static str, String)>) -> Vec<LabelPair> {
    labels
        .into_iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value);
            pair
        })
        .collect()
}

/// Reads one figure of a shard's [`ShardStats`].
type Read = fn(&ShardStats) -> u64;
/// A counter or gauge read from each shard's [`ShardStats`]: name, help,
/// type.
type ShardField = (&'static str, &'static str, MetricType, Read);

/// Every per-shard figure but sets, which are one family by outcome.
#[rustfmt::skip]
const SHARD_FIELDS: [ShardField; 19] = [
    ("tagcached_get_hits_total", "Reads (GET and each key of GETM) answered with a value, stale ones included.", MetricType::COUNTER, |s| s.get_hits),
    ("tagcached_get_misses_total", "Reads answered with no value, for any reason.", MetricType::COUNTER, |s| s.get_misses),
    ("tagcached_get_misses_invalidated_total", "Misses that found their entry invalidated by a tag (and removed it).", MetricType::COUNTER, |s| s.get_misses_invalidated),
    ("tagcached_get_misses_expired_total", "Misses that found their entry expired (and removed it).", MetricType::COUNTER, |s| s.get_misses_expired),
    ("tagcached_get_stale_hits_total", "Reads answered with a stale value (ALLOW_STALE in a soft window, or past stale_after); counted in hits too.", MetricType::COUNTER, |s| s.get_stale),
    ("tagcached_get_hot_misses_total", "Lease reads that found no fresh value while another reader held the lease; counted in misses too.", MetricType::COUNTER, |s| s.get_hot_misses),
    ("tagcached_deletes_total", "DELETEs that removed a live entry.", MetricType::COUNTER, |s| s.deletes),
    ("tagcached_touches_total", "TOUCHes that reset a live entry's TTL.", MetricType::COUNTER, |s| s.touches),
    ("tagcached_evictions_total", "Live entries evicted (least recently used) to make room.", MetricType::COUNTER, |s| s.evictions),
    ("tagcached_expired_reclaimed_total", "Expired entries removed, by a read, a write, the sweep or eviction.", MetricType::COUNTER, |s| s.expired_reclaimed),
    ("tagcached_invalidated_reclaimed_total", "Invalidated entries removed, by whoever found them.", MetricType::COUNTER, |s| s.invalidated_reclaimed),
    ("tagcached_tag_invalidations_total", "Tag invalidations applied: one per tag of each invalidation, on each shard.", MetricType::COUNTER, |s| s.tag_invalidations),
    ("tagcached_leases_granted_total", "Refresh leases granted.", MetricType::COUNTER, |s| s.leases_granted),
    ("tagcached_leases_lost_total", "SETs refused because their lease was no longer the key's.", MetricType::COUNTER, |s| s.set_lease_lost),
    ("tagcached_leases_held", "Refresh leases held now.", MetricType::GAUGE, |s| s.leases_held),
    ("tagcached_entries", "Entries held, including expired or invalidated ones not yet reclaimed.", MetricType::GAUGE, |s| s.curr_items),
    ("tagcached_tags_tracked", "Tags the shard remembers (carried by an entry or recently invalidated).", MetricType::GAUGE, |s| s.tags_tracked),
    ("tagcached_memory_used_bytes", "Bytes charged against the shard's memory budget.", MetricType::GAUGE, |s| s.bytes),
    ("tagcached_memory_limit_bytes", "The shard's memory budget (--memory divided by --threads).", MetricType::GAUGE, |s| s.limit_bytes),
];

fn shard_label(report: &WorkerReport) -> Vec<(&'static str, String)> {
    vec![("shard", report.worker.to_string())]
}

fn per_shard(families: &mut Families, reports: &[WorkerReport]) {
    for (name, help, kind, field) in SHARD_FIELDS {
        let samples = reports
            .iter()
            .map(|report| (shard_label(report), field(&report.shard) as f64));
        families.add(name, help, kind, samples);
    }
    let outcomes: [(&str, Read); 4] = [
        ("stored", |s| s.sets),
        ("fenced", |s| s.sets_fenced),
        ("cas_mismatch", |s| s.cas_mismatches),
        ("lease_lost", |s| s.set_lease_lost),
    ];
    let samples = reports.iter().flat_map(|report| {
        outcomes.iter().map(move |(outcome, field)| {
            let labels = vec![
                ("shard", report.worker.to_string()),
                ("outcome", (*outcome).to_owned()),
            ];
            (labels, field(&report.shard) as f64)
        })
    });
    families.add(
        "tagcached_sets_total",
        "SETs by outcome: stored, fenced (a tag was invalidated after the fence), cas_mismatch, \
         lease_lost. Refusals for invalid input are not counted.",
        MetricType::COUNTER,
        samples,
    );
}

fn server_wide(families: &mut Families, shared: &Shared) {
    use MetricType::{COUNTER, GAUGE};
    let counters = &shared.counters;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    let load_size = |counter: &AtomicUsize| counter.load(Ordering::Relaxed) as f64;
    #[rustfmt::skip]
    let figures = [
        ("tagcached_connections", "Data-port connections open now.", GAUGE, load_size(&counters.curr_connections)),
        ("tagcached_connections_accepted_total", "Data-port connections accepted since start.", COUNTER, load(&counters.total_connections)),
        ("tagcached_connections_rejected_total", "Data-port connections refused (BUSY) at --max-connections.", COUNTER, load(&counters.rejected_connections)),
        ("tagcached_idle_timeouts_total", "Connections closed for sending nothing for --idle-timeout.", COUNTER, load(&counters.idle_kicks)),
        ("tagcached_frame_timeouts_total", "Connections closed for a frame not whole within --frame-timeout.", COUNTER, load(&counters.frame_timeouts)),
        ("tagcached_partial_frame_refusals_total", "Connections refused (BUSY) for taking the server past --partial-frame-memory.", COUNTER, load(&counters.partial_frame_refusals)),
        ("tagcached_partial_frame_bytes", "Bytes of request frames partly received, over all connections.", GAUGE, load_size(&counters.partial_frame_bytes)),
        ("tagcached_auth_failures_total", "AUTH requests with a wrong token (each closes its connection).", COUNTER, load(&counters.auth_failures)),
        ("tagcached_auth_refusals_total", "Requests refused AUTH_REQUIRED: sent before authenticating.", COUNTER, load(&counters.auth_refusals)),
        ("tagcached_auth_timeouts_total", "Connections closed for not authenticating within --auth-timeout.", COUNTER, load(&counters.auth_timeouts)),
    ];
    for (name, help, kind, value) in figures {
        families.one(name, help, kind, value);
    }
    let by_mode = |total: &AtomicU64, soft: &AtomicU64| {
        let soft = soft.load(Ordering::Relaxed);
        let hard = total.load(Ordering::Relaxed).saturating_sub(soft);
        [
            (vec![("mode", "hard".to_owned())], hard as f64),
            (vec![("mode", "soft".to_owned())], soft as f64),
        ]
    };
    families.add(
        "tagcached_invalidations_total",
        "INVALIDATE_TAGS requests (and POST /purge) served, by mode.",
        COUNTER,
        by_mode(&counters.invalidations, &counters.soft_tag_invalidations),
    );
    families.add(
        "tagcached_flushes_total",
        "FLUSH_ALL requests served, by mode.",
        COUNTER,
        by_mode(&counters.flushes, &counters.soft_flushes),
    );
    families.one(
        "tagcached_invalidations_numbered_total",
        "How far the invalidation sequence has advanced since start: invalidations, flushes \
         and purges numbered. (The sequence itself starts near 2^60 and does not fit a \
         float's 53 bits; STATS and /purge give it whole.)",
        COUNTER,
        shared.sequence.current().saturating_sub(shared.boot_seq) as f64,
    );
    families.one(
        "tagcached_uptime_seconds",
        "Seconds since the server started.",
        GAUGE,
        shared.started.elapsed().as_secs_f64(),
    );
    families.one(
        "tagcached_threads",
        "Worker threads, one shard each.",
        GAUGE,
        shared.config.threads as f64,
    );
    families.add(
        "tagcached_build_info",
        "Always 1; the version in a label.",
        GAUGE,
        [(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
    );
}

fn latency(families: &mut Families, reports: &[WorkerReport]) {
    let mut total = CommandLatency::default();
    for report in reports {
        total.merge(&report.latency);
    }
    let metrics = COMMANDS
        .iter()
        .enumerate()
        .map(|(index, command)| {
            let (counts, sum_ns) = total.command(index);
            let mut cumulative = 0;
            let buckets = BUCKET_BOUNDS_NS
                .iter()
                .zip(counts)
                .map(|(&bound_ns, &count)| {
                    cumulative += count;
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(bound_ns as f64 / 1e9);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            let mut histogram = Histogram::default();
            histogram.set_bucket(buckets);
            histogram.set_sample_count(counts.iter().sum());
            histogram.set_sample_sum(sum_ns as f64 / 1e9);
            let mut metric =
                Metric::from_label(label_pairs(vec![("command", (*command).to_owned())]));
            metric.set_histogram(histogram);
            metric
        })
        .collect();
    families.push(
        "tagcached_command_duration_seconds",
        "Time the server took over each data-port request, by command, summed over workers: \
         from when a connection's round of requests starts to run to when all their answers \
         are ready to write (hops to other shards included; reading, decoding and writing \
         not). Every request of a round is recorded with the round's duration.",
        MetricType::HISTOGRAM,
        metrics,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    #[test]
    fn every_per_shard_name_is_valid_prefixed_and_counters_end_in_total() {
        for (name, _, kind, _) in SHARD_FIELDS {
            assert!(valid_name(name) && name.starts_with("tagcached_"), "{name}");
            assert_eq!(
                kind == MetricType::COUNTER,
                name.ends_with("_total"),
                "{name}"
            );
        }
    }
}
