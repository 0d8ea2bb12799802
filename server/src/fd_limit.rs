//! The open file limit against `--max-connections`: every connection is a
//! socket, and a process past its soft `RLIMIT_NOFILE` cannot accept. A
//! client it cannot accept gets no BUSY either (BUSY is written on an
//! accepted socket); it waits in the kernel's accept queue while the
//! accept loop fails every few milliseconds. Common defaults (a soft limit
//! of 1,024) are far below the default 10,000 connections.
//!
//! So at start the daemon raises its soft limit toward the hard limit as
//! far as `max_connections` plus its own descriptors need ([`reserve`]);
//! if the hard limit is lower, it lowers its effective `max_connections`
//! to what fits, so that clients past it are answered BUSY, and says so
//! once in the log. Raising the hard limit needs privileges the daemon
//! should not have: that is the operator's (`ulimit -Hn`, systemd's
//! `LimitNOFILE=`).

use std::io;

use rlimit::Resource;

use crate::config::Config;

/// Refused connections answered BUSY at once: each holds its socket until
/// the answer is written (at most a second).
const BUSY_IN_FLIGHT: u64 = 64;
/// Standard streams, the signal handler's runtime (an epoll, a waker and a
/// socket pair), files read at start, and some slack.
const BASE: u64 = 3 + 4 + 25;

/// Descriptors the daemon needs besides its connections' sockets: each
/// worker's runtime (an epoll and a waker) and listeners (one per address),
/// the BUSY answers in flight, the standard streams, the signal handler's
/// runtime, and some slack.
pub fn reserve(threads: usize, addresses: usize) -> u64 {
    BASE + BUSY_IN_FLIGHT + threads as u64 * (2 + addresses as u64)
}

/// What [`fit_open_file_limit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The soft limit already covered `max_connections`.
    Enough {
        /// The soft limit.
        soft: u64,
    },
    /// The soft limit was raised to cover `max_connections`.
    Raised {
        /// The soft limit before.
        from: u64,
        /// The soft limit now.
        to: u64,
    },
    /// The hard limit cannot cover `max_connections` (or the soft limit
    /// could not be raised): the soft limit was raised as far as it could
    /// be and `max_connections` lowered to fit.
    Lowered {
        /// The limit now in force.
        limit: u64,
        /// `max_connections` as asked.
        from: usize,
        /// `max_connections` now.
        to: usize,
    },
}

/// Why the open file limit does not allow the daemon to run.
#[derive(Debug, thiserror::Error)]
pub enum FdLimitError {
    /// The limit could not be read.
    #[error("cannot read the open file limit: {0}")]
    Io(#[from] io::Error),
    /// Even the hard limit leaves no descriptor for a connection.
    #[error(
        "the open file limit ({limit}) leaves no room for connections: the daemon needs \
         about {reserve} descriptors for itself; raise it (ulimit -n, LimitNOFILE=)"
    )]
    TooLow {
        /// The limit in force.
        limit: u64,
        /// What the daemon needs besides connections.
        reserve: u64,
    },
}

/// What to do given the `soft` and `hard` limits and the descriptors
/// `needed`: the new soft limit, if it changes.
fn plan(soft: u64, hard: u64, needed: u64) -> Option<u64> {
    (soft < needed)
        .then(|| needed.min(hard))
        .filter(|&to| to > soft)
}

/// Raises this process's soft open file limit as far as `config` needs,
/// or lowers `config.max_connections` to what the hard limit allows; logs
/// either once.
pub fn fit_open_file_limit(config: &mut Config) -> Result<Fit, FdLimitError> {
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE)?;
    let reserve = reserve(config.threads, config.listen.len());
    let needed = config.max_connections as u64 + reserve;
    let mut limit = soft;
    if let Some(to) = plan(soft, hard, needed) {
        // A system may cap the soft limit below the hard one (macOS's
        // kern.maxfilesperproc): serve what the current limit allows.
        match rlimit::setrlimit(Resource::NOFILE, to, hard) {
            Ok(()) => limit = to,
            Err(error) => tracing::warn!(%error, "cannot raise the open file limit to {to}"),
        }
    }
    if limit >= needed {
        if limit == soft {
            return Ok(Fit::Enough { soft });
        }
        tracing::info!(
            max_connections = config.max_connections,
            "raised the open file limit from {soft} to {limit}"
        );
        return Ok(Fit::Raised {
            from: soft,
            to: limit,
        });
    }
    let fits = limit.saturating_sub(reserve);
    if fits == 0 {
        return Err(FdLimitError::TooLow { limit, reserve });
    }
    let from = config.max_connections;
    let to = usize::try_from(fits).unwrap_or(usize::MAX);
    config.max_connections = to;
    tracing::warn!(
        "lowering --max-connections from {from} to {to}: the open file limit is {limit} \
         (hard limit {hard}) and the daemon needs about {reserve} for itself; raise the \
         hard limit (ulimit -Hn, systemd's LimitNOFILE=) to serve more"
    );
    Ok(Fit::Lowered { limit, from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_only_as_far_as_needed_and_allowed() {
        assert_eq!(plan(1024, 524_288, 10_100), Some(10_100));
        assert_eq!(plan(256, 20_000, 10_100), Some(10_100));
        assert_eq!(plan(1024, 4096, 10_100), Some(4096), "up to the hard limit");
        assert_eq!(plan(20_000, 20_000, 10_100), None, "enough already");
        assert_eq!(plan(256, 256, 10_100), None, "cannot raise");
        assert_eq!(plan(1024, rlimit::INFINITY, 10_100), Some(10_100));
    }

    #[test]
    fn the_reserve_grows_with_workers_and_addresses() {
        assert!(
            reserve(1, 1) < 128,
            "a 256 limit leaves room for connections"
        );
        assert_eq!(reserve(4, 2) - reserve(2, 2), 2 * 4);
        assert_eq!(reserve(2, 2) - reserve(2, 1), 2);
    }

    #[test]
    fn this_process_already_fits_a_small_config() {
        let mut config = Config {
            max_connections: 16,
            ..Config::local_ephemeral()
        };
        let fit = fit_open_file_limit(&mut config).expect("fits");
        assert!(
            matches!(fit, Fit::Enough { .. } | Fit::Raised { .. }),
            "{fit:?}"
        );
        assert_eq!(config.max_connections, 16);
    }
}
