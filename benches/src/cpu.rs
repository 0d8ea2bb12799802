//! CPU time of a process: the generator's own, to tell when the bench, not
//! the server, was the bottleneck; and, with `--server-pid`, the server's,
//! to tell what a request cost it.
//!
//! Read from `/proc/<pid>/stat` (utime and stime) rather than `getrusage`,
//! which would need `unsafe` (forbidden in this workspace). Linux reports
//! these in USER_HZ ticks, fixed at 100 per second by the kernel ABI.

use std::time::Duration;

/// Ticks per second in `/proc/<pid>/stat`.
const USER_HZ: u64 = 100;

/// CPU time used by the process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// In user mode.
    pub user: Duration,
    /// In the kernel on the process's behalf.
    pub system: Duration,
}

impl CpuTime {
    /// The process's CPU time now, if `/proc` can tell.
    pub fn now() -> Option<CpuTime> {
        parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// Process `pid`'s CPU time now, if `/proc` can tell (it exists and
    /// this user may read its stat).
    pub fn of(pid: u32) -> Option<CpuTime> {
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Parses utime and stime (fields 14 and 15) out of a `/proc/<pid>/stat`
/// line. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) is the 12th.
    let mut fields = after_name.split_whitespace().skip(11);
    let ticks = |field: Option<&str>| field?.parse::<u64>().ok();
    let user = ticks(fields.next())?;
    let system = ticks(fields.next())?;
    let to_duration = |ticks: u64| Duration::from_millis(ticks * 1000 / USER_HZ);
    Some(CpuTime {
        user: to_duration(user),
        system: to_duration(system),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_an_awkward_name() {
        let stat = "4242 (my (odd) bench) R 1 4242 4242 0 -1 4194304 500 0 0 0 \
                    250 37 0 0 20 0 3 0 1000 100000 200 18446744073709551615";
        let cpu = parse_stat(stat).unwrap();
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(370));
        assert_eq!(cpu.total(), Duration::from_millis(2870));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let before = CpuTime::now().expect("/proc/self/stat is readable on Linux");
        let mut x = 0u64;
        for i in 0..10_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = CpuTime::now().unwrap();
        assert!(after.total() >= before.total());
    }
}
