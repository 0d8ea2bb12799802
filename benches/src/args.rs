//! The command line: raw arguments as typed ([`Args`]), then one validated
//! [`Config`] built from them in one place ([`Args::into_config`]).

use std::time::Duration;

use clap::Parser;

use crate::config::{Config, Protocol, Stop};
use crate::dataset::digits;
use crate::stampede::{Refresh, Stampede};
use crate::workload::{OpMix, ValueSize};
use crate::zipf::Distribution;

/// The largest value the bench sends: tagcached's and memcached's default
/// item limit.
pub const MAX_VALUE_SIZE: u32 = 1 << 20;
/// The longest key: memcached's bound, which tagcached shares.
pub const MAX_KEY_SIZE: usize = 250;
/// The most tags per SET: tagcached's default `max_tags`.
pub const MAX_TAGS_PER_ITEM: u32 = 1024;
/// Rendered keys are kept in memory once per thread; bound them.
pub const MAX_KEY_BYTES: u64 = 512 << 20;

/// The longest `--soft-window`: tagcached's default `max_ttl`.
pub const MAX_SOFT_WINDOW: u32 = 315_360_000;

/// The default zipf exponent for `--distribution zipf`.
pub const DEFAULT_ZIPF_EXPONENT: f64 = 0.99;

/// Command-line arguments as typed by the user.
#[derive(Debug, Parser)]
#[command(
    name = "tagcached-bench",
    version,
    about = "Load generator for tagcached, memcached (meta protocol) and Redis",
    long_about = "Load generator for tagcached, memcached (meta protocol) and Redis.\n\n\
                  Closed loop by default: every connection keeps --pipeline requests in \
                  flight. With --rate, open loop: requests are sent on a fixed schedule and \
                  latency is measured from the scheduled time, so server stalls are not \
                  hidden (no coordinated omission).\n\n\
                  Exit status: 0 on a completed run, 1 if the server could not be reached \
                  or failed during the run, 2 for bad arguments."
)]
pub struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:11311", value_name = "HOST:PORT")]
    pub server: String,

    /// Protocol to speak: tags and invalidations are tagcached-only and are
    /// dropped for the others.
    #[arg(long, value_enum, default_value_t = Protocol::Tagcached)]
    pub protocol: Protocol,

    /// Connections for the workload (invalidations get one more of their own).
    #[arg(long, short = 'c', default_value_t = 16)]
    pub connections: usize,

    /// Requests in flight per connection.
    #[arg(long, short = 'p', default_value_t = 1)]
    pub pipeline: usize,

    /// Open loop: total requests per second over all connections, sent on
    /// schedule whatever the server does.
    #[arg(long, value_name = "OPS")]
    pub rate: Option<f64>,

    /// Seconds to measure [default: 10].
    #[arg(long, short = 'd', value_name = "SECS", conflicts_with = "requests")]
    pub duration: Option<f64>,

    /// Measure this many requests in all instead of a duration. With
    /// --prefill, 0 loads the keys and measures nothing (for memory figures).
    #[arg(long, short = 'n', value_name = "N")]
    pub requests: Option<u64>,

    /// Generator threads, each with a single-threaded runtime owning a share
    /// of the connections [default: the number of cores, at most the
    /// connections].
    #[arg(long, short = 't')]
    pub threads: Option<usize>,

    /// Key space: keys are k0..k(N-1), zero-padded to --key-size.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u32,

    /// Bytes per key (1..=250; enough for `k` and the digits of --keys).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,

    /// Bytes per value: a fixed size (`100`) or a range drawn uniformly,
    /// both ends included (`64..1024`).
    #[arg(long, default_value = "100", value_parser = parse_value_size)]
    pub value_size: ValueSize,

    /// Weight of GET in the mix [default: 0.9 if no ratio is given, else 0].
    #[arg(long, value_name = "WEIGHT")]
    pub get_ratio: Option<f64>,

    /// Weight of SET in the mix [default: 0.1 if no ratio is given, else 0].
    #[arg(long, value_name = "WEIGHT")]
    pub set_ratio: Option<f64>,

    /// Weight of DELETE in the mix [default: 0].
    #[arg(long, value_name = "WEIGHT")]
    pub delete_ratio: Option<f64>,

    /// Key and tag popularity: `uniform`, or `zipf:S` with exponent S > 0
    /// (`zipf` alone is zipf:0.99); rank 0 is the hottest.
    #[arg(long, default_value = "uniform", value_parser = parse_distribution)]
    pub distribution: Distribution,

    /// Tags on each SET, drawn from the tag space by --distribution.
    #[arg(long, default_value_t = 0)]
    pub tags_per_item: u32,

    /// Tag space: tags are t0..t(N-1).
    #[arg(long, default_value_t = 1000)]
    pub tag_space: u32,

    /// INVALIDATE_TAGS per second (one tag each, drawn by --distribution),
    /// sent on schedule on a connection of their own.
    #[arg(long, default_value_t = 0.0, value_name = "PER_SEC")]
    pub invalidate_rate: f64,

    /// TTL of every SET in seconds; 0 for none.
    #[arg(long, default_value_t = 0)]
    pub ttl: u32,

    /// Store every key once before measuring.
    #[arg(long)]
    pub prefill: bool,

    /// Seed of every random choice; the same seed picks the same operations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print the result as one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// tagcached: send keys on any connection instead of their shard's.
    #[arg(long)]
    pub no_shard_aware: bool,

    /// Seconds to wait for a connection or for any reply before giving up.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub timeout: f64,

    /// tagcached: a file whose first token every connection (the workload's,
    /// the invalidations', the stampede's) sends with AUTH when the server
    /// requires authentication; the format of the server's
    /// --auth-token-file (one token per line, # comments).
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<std::path::PathBuf>,

    /// Open loop: spin through the last millisecond before each request is
    /// due instead of sleeping, so requests leave on time rather than up to
    /// 1 ms late (tokio's timer resolution; the lateness is measured as send
    /// lag and charged to latency). Costs a core per generator thread: use
    /// it when the generator has cores of its own.
    #[arg(long)]
    pub spin: bool,

    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Also report the CPU time of this process (the server's, when it runs
    /// on this machine) over the measured phase, as read from /proc/PID/stat:
    /// what a request costs the server, beside what it costs the generator.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Connect with TLS, verifying the server against the system's CA
    /// certificates (or --tls-ca's) and the host of --server (or
    /// --tls-server-name). The handshake is part of connecting, not of the
    /// measured run.
    #[arg(long)]
    pub tls: bool,

    /// Verify the server against the CA certificates in this PEM file;
    /// implies --tls.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// The name the server's certificate must carry [default: the host of
    /// --server]; implies --tls.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Run the stampede workload instead of the op mix: --connections
    /// readers doing cache-aside on --keys hot keys (key i tagged
    /// t(i mod --tag-space)), an origin that takes --origin-latency per
    /// value, and --invalidate-rate invalidations a second, `hard`, or
    /// `soft` with refresh leases. Reports origin recomputations per
    /// invalidation and read latency.
    #[arg(long, value_enum, value_name = "REFRESH")]
    pub stampede: Option<Refresh>,

    /// --stampede: milliseconds the origin takes to compute a value.
    #[arg(long, default_value_t = 10.0, value_name = "MS", requires = "stampede")]
    pub origin_latency: f64,

    /// --stampede soft: the stale window of each invalidation, seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS", requires = "stampede")]
    pub soft_window: u32,

    /// --stampede soft: milliseconds a reader waits after a HOT_MISS before
    /// reading again, doubling up to 8 times that.
    #[arg(long, default_value_t = 2.0, value_name = "MS", requires = "stampede")]
    pub hot_miss_wait: f64,
}

/// Arguments that parse one by one but not together.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The first token of a token file (see `--auth-token-file`).
fn read_auth_token(path: &std::path::Path) -> Result<bytes::Bytes, ConfigError> {
    let text = std::fs::read_to_string(path)
        .or_else(|error| fail(format!("--auth-token-file {}: {error}", path.display())))?;
    let token = tagcached_protocol::request::token_lines(&text)
        .next()
        .map(|(_, token)| bytes::Bytes::copy_from_slice(token.as_bytes()));
    match token {
        Some(token) => Ok(token),
        None => fail(format!(
            "--auth-token-file {}: no token in the file",
            path.display()
        )),
    }
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    server.rsplit_once(':').map_or(server, |(host, _)| host)
}

fn fail<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

fn positive_seconds(name: &str, seconds: f64) -> Result<Duration, ConfigError> {
    if !(seconds > 0.0 && seconds <= 1e9) {
        return fail(format!(
            "{name} must be a positive number of seconds, not {seconds}"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Args {
    /// Checks the arguments together and builds the [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if !(1..=100_000).contains(&self.connections) {
            return fail("--connections must be between 1 and 100000");
        }
        if !(1..=65_536).contains(&self.pipeline) {
            return fail("--pipeline must be between 1 and 65536");
        }
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return fail(format!("--rate must be a positive number, not {rate}"));
            }
        }
        let stop = match (self.duration, self.requests) {
            (_, Some(0)) if !self.prefill => {
                return fail("--requests must be at least 1 (or 0 with --prefill: load only)")
            }
            (_, Some(requests)) => Stop::Requests(requests),
            (Some(seconds), None) => Stop::After(positive_seconds("--duration", seconds)?),
            (None, None) => Stop::After(Duration::from_secs(10)),
        };
        let threads = match self.threads {
            Some(0) => return fail("--threads must be at least 1"),
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
        .min(self.connections);
        if self.keys == 0 {
            return fail("--keys must be at least 1");
        }
        let needed = 1 + digits(u64::from(self.keys - 1));
        if self.key_size < needed || self.key_size > MAX_KEY_SIZE {
            return fail(format!(
                "--key-size must be between {needed} (`k` and the digits of --keys) and \
                 {MAX_KEY_SIZE}, not {}",
                self.key_size
            ));
        }
        if u64::from(self.keys) * self.key_size as u64 > MAX_KEY_BYTES {
            return fail(format!(
                "--keys × --key-size is over {} MiB of keys; use fewer or shorter keys",
                MAX_KEY_BYTES >> 20
            ));
        }
        let mix = mix(self.get_ratio, self.set_ratio, self.delete_ratio)?;
        if self.tags_per_item > MAX_TAGS_PER_ITEM {
            return fail(format!(
                "--tags-per-item must be at most {MAX_TAGS_PER_ITEM}"
            ));
        }
        if self.tag_space == 0 {
            return fail("--tag-space must be at least 1");
        }
        if !(self.invalidate_rate >= 0.0 && self.invalidate_rate.is_finite()) {
            return fail("--invalidate-rate must be a non-negative number");
        }
        let timeout = positive_seconds("--timeout", self.timeout)?;
        let auth_token = match &self.auth_token_file {
            Some(path) => Some(read_auth_token(path)?),
            None => None,
        };
        let stampede = match self.stampede {
            Some(refresh) => Some(self.stampede_settings(refresh, stop)?),
            None => None,
        };
        let tls = if self.tls || self.tls_ca.is_some() || self.tls_server_name.is_some() {
            let name = self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host_of(&self.server).to_owned());
            let client = crate::stream::TlsClient::new(self.tls_ca.as_deref(), &name)
                .map_err(|error| ConfigError(format!("--tls: {error}")))?;
            if self.protocol != Protocol::Tagcached {
                return fail("--tls is for tagcached (--protocol tagcached)");
            }
            Some(client)
        } else {
            None
        };
        Ok(Config {
            tls,
            server: self.server,
            protocol: self.protocol,
            connections: self.connections,
            pipeline: self.pipeline,
            rate: self.rate,
            stop,
            threads,
            keys: self.keys,
            key_size: self.key_size,
            value_size: self.value_size,
            mix,
            distribution: self.distribution,
            tags_per_item: self.tags_per_item,
            tag_space: self.tag_space,
            invalidate_rate: self.invalidate_rate,
            ttl: self.ttl,
            prefill: self.prefill,
            seed: self.seed,
            json: self.json,
            shard_aware: !self.no_shard_aware && self.protocol == Protocol::Tagcached,
            timeout,
            auth_token,
            quiet: self.quiet,
            server_pid: self.server_pid,
            spin: self.spin,
            stampede,
        })
    }

    /// The `--stampede` settings, and the other arguments checked against
    /// them.
    fn stampede_settings(&self, refresh: Refresh, stop: Stop) -> Result<Stampede, ConfigError> {
        let Stop::After(duration) = stop else {
            return fail("--stampede measures for a --duration, not a number of --requests");
        };
        if self.protocol != Protocol::Tagcached {
            return fail("--stampede needs tagcached's tags and leases (--protocol tagcached)");
        }
        if self.pipeline != 1 {
            return fail("--stampede readers send one request at a time; --pipeline must be 1");
        }
        if self.tags_per_item != 0 {
            return fail("--stampede tags key i with t(i mod --tag-space); drop --tags-per-item");
        }
        if self.invalidate_rate <= 0.0 {
            return fail("--stampede needs --invalidate-rate above 0");
        }
        if self.server_pid.is_some() {
            return fail("--stampede does not report the server's CPU time; drop --server-pid");
        }
        let millis = |name: &str, ms: f64, min: f64| {
            if ms >= min && ms <= 60_000.0 {
                Ok(Duration::from_secs_f64(ms / 1000.0))
            } else {
                fail(format!(
                    "{name} must be {min} to 60000 milliseconds, not {ms}"
                ))
            }
        };
        if !(1..=MAX_SOFT_WINDOW).contains(&self.soft_window) {
            return fail(format!(
                "--soft-window must be 1 to {MAX_SOFT_WINDOW} seconds"
            ));
        }
        Ok(Stampede {
            refresh,
            duration,
            origin_latency: millis("--origin-latency", self.origin_latency, 0.0)?,
            soft_window: self.soft_window,
            hot_miss_wait: millis("--hot-miss-wait", self.hot_miss_wait, 0.01)?,
        })
    }
}

/// The op mix: weights as given, unspecified ones 0, or 90/10 GET/SET when
/// none is given (so `--set-ratio 1` alone means SET only).
fn mix(get: Option<f64>, set: Option<f64>, delete: Option<f64>) -> Result<OpMix, ConfigError> {
    let (get, set, delete) = match (get, set, delete) {
        (None, None, None) => (0.9, 0.1, 0.0),
        (get, set, delete) => (
            get.unwrap_or(0.0),
            set.unwrap_or(0.0),
            delete.unwrap_or(0.0),
        ),
    };
    for (name, weight) in [("get", get), ("set", set), ("delete", delete)] {
        if !(weight >= 0.0 && weight.is_finite()) {
            return fail(format!(
                "--{name}-ratio must be a non-negative number, not {weight}"
            ));
        }
    }
    if get + set + delete <= 0.0 {
        return fail("the --get-ratio, --set-ratio and --delete-ratio weights sum to 0");
    }
    Ok(OpMix::new(get, set, delete))
}

/// Parses `100` or `64..1024` (both ends included).
pub fn parse_value_size(text: &str) -> Result<ValueSize, String> {
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{part}` is not a byte count"))
    };
    let size = match text.split_once("..") {
        Some((min, max)) => ValueSize {
            min: number(min)?,
            max: number(max.strip_prefix('=').unwrap_or(max))?,
        },
        None => {
            let size = number(text)?;
            ValueSize {
                min: size,
                max: size,
            }
        }
    };
    if size.min > size.max {
        return Err(format!("empty range {}..{}", size.min, size.max));
    }
    if size.max > MAX_VALUE_SIZE {
        return Err(format!("values are at most {MAX_VALUE_SIZE} bytes"));
    }
    Ok(size)
}

/// Parses `uniform`, `zipf` or `zipf:S`.
pub fn parse_distribution(text: &str) -> Result<Distribution, String> {
    match text.split_once(':') {
        None if text == "uniform" => Ok(Distribution::Uniform),
        None if text == "zipf" => Ok(Distribution::Zipf {
            exponent: DEFAULT_ZIPF_EXPONENT,
        }),
        Some(("zipf", exponent)) => match exponent.parse::<f64>() {
            Ok(exponent) if exponent > 0.0 && exponent <= 100.0 => {
                Ok(Distribution::Zipf { exponent })
            }
            _ => Err(format!(
                "the zipf exponent must be a number in (0, 100], not `{exponent}`"
            )),
        },
        _ => Err("expected `uniform`, `zipf` or `zipf:S`".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let args =
            Args::try_parse_from(std::iter::once("tagcached-bench").chain(args.iter().copied()))
                .map_err(|error| error.to_string())?;
        args.into_config().map_err(|error| error.to_string())
    }

    fn assert_shares(mix: OpMix, expected: [f64; 3]) {
        let shares = mix.shares();
        assert!(
            shares
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{shares:?} != {expected:?}"
        );
    }

    #[test]
    fn defaults_are_a_ten_second_closed_loop_90_10_mix() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.server, "127.0.0.1:11311");
        assert_eq!(config.protocol, Protocol::Tagcached);
        assert_eq!(config.stop, Stop::After(Duration::from_secs(10)));
        assert_eq!(config.rate, None);
        assert_shares(config.mix, [0.9, 0.1, 0.0]);
        assert_eq!(config.value_size, ValueSize { min: 100, max: 100 });
        assert_eq!(config.distribution, Distribution::Uniform);
        assert!(config.shard_aware);
        assert!(config.threads >= 1 && config.threads <= config.connections);
    }

    #[test]
    fn every_knob_parses() {
        let config = parse(&[
            "--server",
            "10.1.2.3:99",
            "--protocol",
            "redis",
            "-c",
            "50",
            "-p",
            "16",
            "--rate",
            "5000",
            "--requests",
            "1000",
            "--threads",
            "3",
            "--keys",
            "1000",
            "--key-size",
            "8",
            "--value-size",
            "64..1024",
            "--get-ratio",
            "3",
            "--set-ratio",
            "1",
            "--distribution",
            "zipf:1.2",
            "--tags-per-item",
            "3",
            "--tag-space",
            "50",
            "--invalidate-rate",
            "100",
            "--ttl",
            "60",
            "--prefill",
            "--seed",
            "7",
            "--json",
            "--timeout",
            "0.5",
        ])
        .unwrap();
        assert_eq!(config.server, "10.1.2.3:99");
        assert_eq!(config.protocol, Protocol::Redis);
        assert_eq!(
            (config.connections, config.pipeline, config.threads),
            (50, 16, 3)
        );
        assert_eq!(config.rate, Some(5000.0));
        assert_eq!(config.stop, Stop::Requests(1000));
        assert_eq!((config.keys, config.key_size), (1000, 8));
        assert_eq!(config.value_size, ValueSize { min: 64, max: 1024 });
        assert_shares(config.mix, [0.75, 0.25, 0.0]);
        assert_eq!(config.distribution, Distribution::Zipf { exponent: 1.2 });
        assert_eq!(
            (config.tags_per_item, config.tag_space, config.ttl),
            (3, 50, 60)
        );
        assert!(config.prefill && config.json);
        assert_eq!(config.seed, 7);
        assert_eq!(config.timeout, Duration::from_millis(500));
        // Tags and shard-awareness are tagcached's alone.
        assert!(!config.shard_aware);
        assert_eq!(config.effective_tags_per_item(), 0);
        assert_eq!(config.effective_invalidate_rate(), 0.0);
    }

    #[test]
    fn one_ratio_alone_is_the_whole_mix() {
        assert_shares(parse(&["--set-ratio", "1"]).unwrap().mix, [0.0, 1.0, 0.0]);
        let mix = parse(&["--get-ratio", "1", "--delete-ratio", "1"])
            .unwrap()
            .mix;
        assert_shares(mix, [0.5, 0.0, 0.5]);
    }

    #[test]
    fn threads_are_capped_by_connections_and_shard_awareness_can_be_off() {
        let config = parse(&["-c", "2", "-t", "8", "--no-shard-aware"]).unwrap();
        assert_eq!(config.threads, 2);
        assert!(!config.shard_aware);
    }

    #[test]
    fn value_sizes_and_distributions_parse() {
        assert_eq!(
            parse_value_size("100"),
            Ok(ValueSize { min: 100, max: 100 })
        );
        assert_eq!(
            parse_value_size("64..1024"),
            Ok(ValueSize { min: 64, max: 1024 })
        );
        assert_eq!(parse_value_size("1..=2"), Ok(ValueSize { min: 1, max: 2 }));
        assert!(parse_value_size("10..5").is_err());
        assert!(parse_value_size("big").is_err());
        assert!(parse_value_size("2000000").is_err());
        assert_eq!(
            parse_distribution("zipf"),
            Ok(Distribution::Zipf {
                exponent: DEFAULT_ZIPF_EXPONENT
            })
        );
        assert!(parse_distribution("zipf:0").is_err());
        assert!(parse_distribution("zipf:-1").is_err());
        assert!(parse_distribution("zipf:x").is_err());
        assert!(parse_distribution("normal").is_err());
    }

    #[test]
    fn stampede_settings_parse_and_default() {
        let config = parse(&["--stampede", "soft", "--invalidate-rate", "10"]).unwrap();
        let stampede = config.stampede.expect("a stampede run");
        assert_eq!(stampede.refresh, Refresh::Soft);
        assert_eq!(stampede.duration, Duration::from_secs(10));
        assert_eq!(stampede.origin_latency, Duration::from_millis(10));
        assert_eq!(stampede.soft_window, 60);
        assert_eq!(stampede.hot_miss_wait, Duration::from_millis(2));
        let config = parse(&[
            "--stampede",
            "hard",
            "--invalidate-rate",
            "10",
            "--duration",
            "3",
            "--origin-latency",
            "20",
            "--soft-window",
            "5",
            "--hot-miss-wait",
            "0.5",
        ])
        .unwrap();
        let stampede = config.stampede.unwrap();
        assert_eq!(stampede.refresh, Refresh::Hard);
        assert_eq!(stampede.duration, Duration::from_secs(3));
        assert_eq!(stampede.origin_latency, Duration::from_millis(20));
        assert_eq!(stampede.soft_window, 5);
        assert_eq!(stampede.hot_miss_wait, Duration::from_micros(500));
        assert!(parse(&[]).unwrap().stampede.is_none());
    }

    #[test]
    fn stampede_refuses_what_it_cannot_run() {
        let stampede = ["--stampede", "soft", "--invalidate-rate", "10"];
        for (extra, expected) in [
            (&["--requests", "5"][..], "--duration"),
            (&["--protocol", "redis"], "--protocol tagcached"),
            (&["--pipeline", "2"], "--pipeline"),
            (&["--tags-per-item", "1"], "--tags-per-item"),
            (&["--invalidate-rate", "0"], "--invalidate-rate"),
            (&["--origin-latency=-1"], "--origin-latency"),
            (&["--soft-window", "0"], "--soft-window"),
            (&["--hot-miss-wait", "0"], "--hot-miss-wait"),
            (&["--server-pid", "1"], "--server-pid"),
        ] {
            let args: Vec<&str> = stampede.iter().chain(extra).copied().collect();
            let error = parse(&args).expect_err(&format!("{extra:?} should be refused"));
            assert!(error.contains(expected), "{extra:?}: {error}");
        }
        let error = parse(&["--soft-window", "5"]).expect_err("needs --stampede");
        assert!(error.contains("--stampede"), "{error}");
    }

    #[test]
    fn requests_zero_with_prefill_loads_only() {
        let config = parse(&["--prefill", "--requests", "0"]).unwrap();
        assert_eq!(config.stop, Stop::Requests(0));
        assert!(config.prefill);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_reason() {
        for (args, expected) in [
            (&["--connections", "0"][..], "--connections"),
            (&["--pipeline", "0"], "--pipeline"),
            (&["--duration", "0"], "--duration"),
            (&["--duration=-1"], "--duration"),
            (&["--requests", "0"], "--requests"),
            (
                &["--duration", "1", "--requests", "5"],
                "cannot be used with",
            ),
            (&["--threads", "0"], "--threads"),
            (&["--rate", "0"], "--rate"),
            (&["--keys", "0"], "--keys"),
            (&["--keys", "100000", "--key-size", "5"], "--key-size"),
            (&["--key-size", "251"], "--key-size"),
            (&["--get-ratio", "0", "--set-ratio", "0"], "sum to 0"),
            (&["--set-ratio=-1"], "--set-ratio"),
            (&["--value-size", "5..1"], "empty range"),
            (&["--distribution", "pareto"], "zipf"),
            (&["--tag-space", "0"], "--tag-space"),
            (&["--tags-per-item", "5000"], "--tags-per-item"),
            (&["--invalidate-rate=-3"], "--invalidate-rate"),
            (&["--protocol", "http"], "invalid value"),
            (&["--timeout", "0"], "--timeout"),
            (&["--bogus"], "unexpected argument"),
        ] {
            let error = parse(args).expect_err(&format!("{args:?} should be refused"));
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }
}
