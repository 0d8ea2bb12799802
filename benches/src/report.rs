//! The result: a table for people, one JSON object for scripts. Both come
//! from the same [`Summary`].

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::Config;
use crate::recorder::{hit_ratio, KindStats};
use crate::runner::RunResult;
use crate::workload::OpKind;

/// CPU use at or above this share of the threads' capacity counts as
/// saturated: the generator, not the server, may have set the pace.
pub const SATURATION: f64 = 0.9;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of a nanosecond histogram.
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// One operation kind's figures, or all kinds'.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    /// Operations completed.
    pub ops: u64,
    /// Operations per second of measuring.
    pub ops_per_sec: f64,
    /// GET hits over lookups; `null` without lookups.
    pub hit_ratio: Option<f64>,
    /// Error replies.
    pub errors: u64,
    /// Latency, µs.
    pub latency_us: Latency,
}

impl KindSummary {
    fn of(stats: &KindStats, seconds: f64) -> KindSummary {
        KindSummary {
            ops: stats.ops,
            ops_per_sec: stats.ops as f64 / seconds,
            hit_ratio: hit_ratio(stats.hits, stats.misses),
            errors: stats.errors,
            latency_us: Latency::of(&stats.latency),
        }
    }
}

/// Per-kind figures.
#[derive(Debug, Clone, Serialize)]
pub struct PerOp {
    /// GET.
    pub get: KindSummary,
    /// SET.
    pub set: KindSummary,
    /// DELETE.
    pub delete: KindSummary,
    /// INVALIDATE_TAGS.
    pub invalidate: KindSummary,
}

/// The generator's own CPU use while measuring.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub system_s: f64,
    /// CPU time over (elapsed × usable threads): 1.0 is every thread busy.
    pub utilization: f64,
    /// Whether utilization reached [`SATURATION`] (never with `--spin`,
    /// whose spinning is CPU use by design: look at `send_lag_us` instead).
    pub saturated: bool,
}

/// The CPU time of the process named by `--server-pid` while measuring.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCpu {
    /// The process.
    pub pid: u32,
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub system_s: f64,
    /// User and system time over the requests completed, µs: what a
    /// request cost the server.
    pub us_per_op: f64,
}

/// Everything the run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// tagcached, memcached or redis.
    pub protocol: &'static str,
    /// The address given.
    pub server: String,
    /// The server's own version string (tagcached).
    pub server_version: Option<String>,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Open loop: requests per second asked for.
    pub rate: Option<f64>,
    /// Connections opened, the invalidator's included.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Generator threads.
    pub threads: usize,
    /// Whether keys went to their shard's connection.
    pub shard_aware: bool,
    /// Whether connections were TLS (`--tls`).
    pub tls: bool,
    /// The server's shards (tagcached).
    pub shard_count: Option<u16>,
    /// Seconds from the start of measuring to the last reply.
    pub elapsed_s: f64,
    /// Operations completed, every kind.
    pub ops: u64,
    /// Operations per second, every kind.
    pub ops_per_sec: f64,
    /// GET hits over lookups.
    pub hit_ratio: Option<f64>,
    /// Error replies, every kind.
    pub errors: u64,
    /// Latency of every kind together, µs.
    pub latency_us: Latency,
    /// Per kind.
    pub per_op: PerOp,
    /// Open loop: how late requests were sent after they were due, µs.
    pub send_lag_us: Option<Latency>,
    /// Open loop: requests due before the end but never sent.
    pub backlog: u64,
    /// The generator's CPU use, if `/proc` told.
    pub cpu: Option<Cpu>,
    /// With `--server-pid`, that process's CPU use, if `/proc` told.
    pub server_cpu: Option<ServerCpu>,
    /// The pid `--server-pid` gave, kept to say so when `/proc` did not
    /// tell.
    #[serde(skip)]
    server_pid: Option<u32>,
}

impl Summary {
    /// Summarizes a run.
    pub fn new(config: &Config, result: &RunResult) -> Summary {
        let seconds = result.elapsed.as_secs_f64().max(1e-9);
        let kind = |kind: OpKind| KindSummary::of(result.stats.kind(kind), seconds);
        let total = KindSummary::of(&result.stats.total(), seconds);
        let usable_threads = std::thread::available_parallelism()
            .map_or(result.threads, |cores| cores.get().min(result.threads));
        let cpu = result.cpu.map(|cpu| {
            let utilization = cpu.total().as_secs_f64() / (seconds * usable_threads as f64);
            Cpu {
                user_s: cpu.user.as_secs_f64(),
                system_s: cpu.system.as_secs_f64(),
                utilization,
                saturated: !(config.rate.is_some() && config.spin) && utilization >= SATURATION,
            }
        });
        let server_cpu = config
            .server_pid
            .zip(result.server_cpu)
            .map(|(pid, cpu)| ServerCpu {
                pid,
                user_s: cpu.user.as_secs_f64(),
                system_s: cpu.system.as_secs_f64(),
                us_per_op: cpu.total().as_secs_f64() * 1e6 / total.ops.max(1) as f64,
            });
        Summary {
            protocol: config.protocol.name(),
            server: config.server.clone(),
            server_version: result.server_version.clone(),
            mode: if config.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            rate: config.rate,
            connections: result.connections,
            pipeline: config.pipeline,
            threads: result.threads,
            shard_aware: result.shard_aware,
            tls: config.tls.is_some(),
            shard_count: result.shard_count,
            elapsed_s: seconds,
            ops: total.ops,
            ops_per_sec: total.ops_per_sec,
            hit_ratio: total.hit_ratio,
            errors: total.errors,
            latency_us: total.latency_us.clone(),
            per_op: PerOp {
                get: kind(OpKind::Get),
                set: kind(OpKind::Set),
                delete: kind(OpKind::Delete),
                invalidate: kind(OpKind::Invalidate),
            },
            send_lag_us: config.rate.map(|_| Latency::of(&result.stats.send_lag)),
            backlog: result.backlog,
            cpu,
            server_cpu,
            server_pid: config.server_pid,
        }
    }

    /// The warnings worth a line on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(cpu) = &self.cpu {
            if cpu.saturated {
                warnings.push(format!(
                    "the generator used {:.0}% of its {} thread(s): it may be the bottleneck; \
                     add --threads or run it on other cores",
                    cpu.utilization * 100.0,
                    self.threads
                ));
            }
        }
        if let (Some(pid), None) = (self.server_pid, &self.server_cpu) {
            warnings.push(format!(
                "--server-pid {pid}: /proc/{pid}/stat could not be read, so the server's CPU \
                 time is not reported"
            ));
        }
        if self.backlog > 0 {
            warnings.push(format!(
                "{} requests due on schedule were never sent: the server (or the generator) \
                 could not keep up with --rate; latencies above understate the delay",
                self.backlog
            ));
        }
        warnings
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate} ops/s"),
            None => "closed loop".to_string(),
        };
        let shards = match (self.shard_aware, self.shard_count) {
            (true, Some(shards)) => format!(", shard-aware over {shards} shards"),
            (false, Some(shards)) => format!(", not shard-aware ({shards} shards)"),
            _ => String::new(),
        };
        let server = match &self.server_version {
            Some(version) => format!("{} ({version})", self.server),
            None => self.server.clone(),
        };
        let _ =
            writeln!(
            out,
            "{}{} at {server}: {mode}, {} connections × pipeline {}, {} threads{shards}, {:.2} s",
            self.protocol,
            if self.tls { " over TLS" } else { "" },
            self.connections, self.pipeline, self.threads, self.elapsed_s
        );
        let _ = writeln!(
            out,
            "\n{:<11} {:>11} {:>12} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op",
            "ops",
            "ops/s",
            "hit%",
            "errors",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs"
        );
        let per_op = [
            ("get", &self.per_op.get),
            ("set", &self.per_op.set),
            ("delete", &self.per_op.delete),
            ("invalidate", &self.per_op.invalidate),
        ];
        let total = KindSummary {
            ops: self.ops,
            ops_per_sec: self.ops_per_sec,
            hit_ratio: self.hit_ratio,
            errors: self.errors,
            latency_us: self.latency_us.clone(),
        };
        for (name, kind) in per_op
            .into_iter()
            .filter(|(_, kind)| kind.ops > 0)
            .chain([("total", &total)])
        {
            let hit = kind
                .hit_ratio
                .map_or("-".to_string(), |ratio| format!("{:.1}%", ratio * 100.0));
            let latency = &kind.latency_us;
            let _ = writeln!(
                out,
                "{name:<11} {:>11} {:>12.1} {hit:>7} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                kind.ops,
                kind.ops_per_sec,
                kind.errors,
                latency.p50,
                latency.p90,
                latency.p99,
                latency.p999,
                latency.max
            );
        }
        if let Some(cpu) = &self.cpu {
            let _ = writeln!(
                out,
                "\ngenerator CPU: {:.2} s user + {:.2} s system = {:.0}% of {} thread(s){}",
                cpu.user_s,
                cpu.system_s,
                cpu.utilization * 100.0,
                self.threads,
                if cpu.saturated { " (SATURATED)" } else { "" }
            );
        }
        if let Some(server) = &self.server_cpu {
            let _ = writeln!(
                out,
                "server CPU (pid {}): {:.2} s user + {:.2} s system = {:.2} µs per request",
                server.pid, server.user_s, server.system_s, server.us_per_op
            );
        }
        if let Some(lag) = &self.send_lag_us {
            let _ = writeln!(
                out,
                "send lag behind schedule: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                lag.p50, lag.p99, lag.max
            );
        }
        if self.backlog > 0 {
            let _ = writeln!(
                out,
                "backlog: {} scheduled requests never sent",
                self.backlog
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::args::Args;
    use crate::cpu::CpuTime;
    use crate::driver::Reply;
    use crate::recorder::Recorder;

    fn summary(cpu_seconds: u64) -> Summary {
        summary_with(cpu_seconds, &[], None)
    }

    /// A run of 101 requests over 2 s, the generator busy for
    /// `cpu_seconds`, with `extra` arguments and, as the server's CPU time,
    /// `server_cpu`.
    fn summary_with(cpu_seconds: u64, extra: &[&str], server_cpu: Option<CpuTime>) -> Summary {
        let args = ["tagcached-bench", "--threads", "1", "-c", "1"];
        let config = Args::parse_from(args.iter().chain(extra))
            .into_config()
            .unwrap();
        let mut recorder = Recorder::default();
        for latency_us in 1..=100u64 {
            recorder.record(OpKind::Get, Reply::Hit, latency_us * 1000, 0);
        }
        recorder.record(OpKind::Set, Reply::Failed, 500_000, 0);
        let result = RunResult {
            stats: recorder.run.clone(),
            elapsed: Duration::from_secs(2),
            backlog: 0,
            cpu: Some(CpuTime {
                user: Duration::from_secs(cpu_seconds),
                system: Duration::ZERO,
            }),
            server_cpu,
            shard_count: Some(2),
            shard_aware: true,
            threads: 1,
            connections: 1,
            server_version: None,
        };
        Summary::new(&config, &result)
    }

    #[test]
    fn the_servers_cpu_is_reported_per_request() {
        let server_cpu = CpuTime {
            user: Duration::from_millis(800),
            system: Duration::from_millis(210),
        };
        let report = summary_with(0, &["--server-pid", "4242"], Some(server_cpu));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["server_cpu"]["pid"], 4242);
        // 1.01 s over 101 requests.
        let per_op = json["server_cpu"]["us_per_op"].as_f64().unwrap();
        assert!((per_op - 10_000.0).abs() < 1e-6, "{per_op}");
        assert!(report.table().contains("server CPU (pid 4242)"));
        assert!(report.warnings().is_empty());

        let without = serde_json::to_value(summary(0)).unwrap();
        assert_eq!(without["server_cpu"], serde_json::Value::Null);
    }

    #[test]
    fn a_server_pid_that_cannot_be_read_is_warned_about() {
        let report = summary_with(0, &["--server-pid", "4242"], None);
        let warnings = report.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("/proc/4242/stat"), "{warnings:?}");
        assert!(!report.table().contains("server CPU"));
    }

    #[test]
    fn json_has_the_promised_fields() {
        let json = serde_json::to_value(summary(0)).unwrap();
        assert_eq!(json["ops"], 101);
        assert_eq!(json["ops_per_sec"], 50.5);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["hit_ratio"], 1.0);
        let p50 = json["latency_us"]["p50"].as_f64().unwrap();
        assert!((50.0..=51.1).contains(&p50), "{p50}");
        assert!(json["latency_us"]["p99"].as_f64().unwrap() >= 99.0);
        assert!(json["latency_us"]["p999"].as_f64().unwrap() >= 499.0);
        assert_eq!(json["per_op"]["get"]["ops"], 100);
        assert_eq!(json["per_op"]["set"]["errors"], 1);
        assert_eq!(
            json["per_op"]["delete"]["hit_ratio"],
            serde_json::Value::Null
        );
        assert_eq!(json["cpu"]["saturated"], false);
    }

    #[test]
    fn a_busy_generator_is_flagged() {
        let busy = summary(2);
        assert!(busy.cpu.as_ref().unwrap().saturated);
        assert_eq!(busy.warnings().len(), 1);
        assert!(busy.table().contains("SATURATED"));
        assert!(summary(0).warnings().is_empty());
    }

    #[test]
    fn table_lists_kinds_that_ran_and_the_total() {
        let table = summary(0).table();
        assert!(table.contains("\nget "), "{table}");
        assert!(table.contains("\nset "), "{table}");
        assert!(!table.contains("\ndelete "), "{table}");
        assert!(table.contains("\ntotal "), "{table}");
    }
}
