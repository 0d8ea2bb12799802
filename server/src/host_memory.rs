//! How much memory the host gives this process: the machine's RAM
//! (`/proc/meminfo`) and, in a container or a systemd unit, its cgroup's
//! memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`). The default
//! `--memory` is a quarter of the smaller ([`HostMemory::default_budget`]):
//! a container limited to 512 MiB whose cache took a quarter of the
//! machine's RAM would be killed by the OOM killer, not evict.
//!
//! The cgroup is found the way the kernel documents it: `/proc/self/cgroup`
//! names this process's cgroup in each hierarchy, `/proc/self/mountinfo`
//! says where each hierarchy is mounted and which of its cgroups the mount
//! shows (a container usually sees its own cgroup as the root), and a limit
//! set on any ancestor up to that mount applies too, so the smallest one
//! found counts. Parsing is done on the files' text, so the tests run on
//! samples of each layout.

use std::path::{Path, PathBuf};

/// The largest default budget, whatever the host has: 1 GiB.
pub const MAX_DEFAULT_BUDGET: u64 = 1 << 30;

/// A cgroup v1 "limit" at or above this is the kernel's way of saying none
/// (it reports `PAGE_COUNTER_MAX` pages, about 2^63 bytes).
const V1_UNLIMITED: u64 = 1 << 60;

/// What the host gives this process, as far as it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMemory {
    /// `MemTotal` in `/proc/meminfo`.
    pub ram: Option<u64>,
    /// The smallest memory limit on this process's cgroup or its ancestors.
    pub cgroup_limit: Option<u64>,
}

impl HostMemory {
    /// Reads this process's host (Linux's `/proc` and `/sys/fs/cgroup`;
    /// elsewhere both are unknown).
    pub fn read() -> HostMemory {
        let read = |path: &Path| std::fs::read_to_string(path).ok();
        HostMemory {
            ram: read(Path::new("/proc/meminfo")).and_then(|text| mem_total(&text)),
            cgroup_limit: cgroup_memory_limit(&read),
        }
    }

    /// The memory this process may use: the smaller of RAM and the cgroup
    /// limit, whichever are known.
    pub fn available(&self) -> Option<u64> {
        match (self.ram, self.cgroup_limit) {
            (Some(ram), Some(limit)) => Some(ram.min(limit)),
            (ram, limit) => ram.or(limit),
        }
    }

    /// The default `--memory`: a quarter of [`HostMemory::available`], at
    /// most [`MAX_DEFAULT_BUDGET`] (which is also the budget when nothing
    /// is known).
    pub fn default_budget(&self) -> u64 {
        self.available().map_or(MAX_DEFAULT_BUDGET, |bytes| {
            (bytes / 4).min(MAX_DEFAULT_BUDGET)
        })
    }
}

/// `MemTotal` from a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The smallest memory limit on this process's cgroups (v2, and the v1
/// `memory` hierarchy) and their ancestors up to what the mount shows;
/// `None` when there is none or nothing can be read. `read` returns a
/// file's text.
fn cgroup_memory_limit(read: &dyn Fn(&Path) -> Option<String>) -> Option<u64> {
    let cgroups = read(Path::new("/proc/self/cgroup"))?;
    let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
    let mut smallest: Option<u64> = None;
    for line in cgroups.lines() {
        // hierarchy-ID:controller-list:cgroup-path
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let hierarchy = if id == "0" && controllers.is_empty() {
            Hierarchy::V2
        } else if controllers.split(',').any(|name| name == "memory") {
            Hierarchy::V1Memory
        } else {
            continue;
        };
        let Some(mount) = find_mount(&mountinfo, hierarchy) else {
            continue;
        };
        for dir in mount.dirs_up_from(path) {
            let limit = read(&dir.join(hierarchy.limit_file()))
                .and_then(|text| hierarchy.parse_limit(&text));
            if let Some(limit) = limit {
                smallest = Some(smallest.map_or(limit, |known| known.min(limit)));
            }
        }
    }
    smallest
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    /// The unified hierarchy (cgroup v2).
    V2,
    /// The v1 hierarchy the `memory` controller is attached to.
    V1Memory,
}

impl Hierarchy {
    fn limit_file(self) -> &'static str {
        match self {
            Hierarchy::V2 => "memory.max",
            Hierarchy::V1Memory => "memory.limit_in_bytes",
        }
    }

    /// A limit file's text: v2 writes `max` for none, v1 a huge number.
    fn parse_limit(self, text: &str) -> Option<u64> {
        let limit: u64 = text.trim().parse().ok()?;
        match self {
            Hierarchy::V1Memory if limit >= V1_UNLIMITED => None,
            _ => Some(limit),
        }
    }
}

/// Where a hierarchy is mounted, and which of its cgroups the mount shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The cgroup shown at the mount point (`/` unless a container mounts
    /// only its own).
    root: String,
    mount_point: PathBuf,
}

impl Mount {
    /// The directories of `cgroup` (a path in the hierarchy) and of each
    /// ancestor the mount shows, from `cgroup` up to the mount point.
    fn dirs_up_from(&self, cgroup: &str) -> Vec<PathBuf> {
        let root = self.root.trim_end_matches('/');
        // Outside the mount's root (a cgroup namespace shows `/`): only the
        // mount point's own files can be read.
        let relative = cgroup
            .strip_prefix(root)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or("");
        let mut dirs = vec![self.mount_point.clone()];
        let mut dir = self.mount_point.clone();
        for part in relative.split('/').filter(|part| !part.is_empty()) {
            dir.push(part);
            dirs.push(dir.clone());
        }
        dirs.reverse();
        dirs
    }
}

/// The mount of `hierarchy` in a `/proc/self/mountinfo` text, whose lines
/// read `id parent major:minor root mount-point options [optional...] -
/// fstype source super-options`.
fn find_mount(mountinfo: &str, hierarchy: Hierarchy) -> Option<Mount> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        let mount: Vec<&str> = mount.split_whitespace().collect();
        let filesystem: Vec<&str> = filesystem.split_whitespace().collect();
        let (root, mount_point) = (*mount.get(3)?, *mount.get(4)?);
        let fstype = *filesystem.first()?;
        let options = filesystem.get(2).copied().unwrap_or("");
        let matches = match hierarchy {
            Hierarchy::V2 => fstype == "cgroup2",
            Hierarchy::V1Memory => {
                fstype == "cgroup" && options.split(',').any(|option| option == "memory")
            }
        };
        matches.then(|| Mount {
            root: root.to_owned(),
            mount_point: PathBuf::from(mount_point),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A host made of file texts.
    fn limit_on(files: &[(&str, &str)]) -> Option<u64> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
            .collect();
        cgroup_memory_limit(&|path: &Path| files.get(path).cloned())
    }

    const V2_MOUNT: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn v2_reads_memory_max_of_the_cgroup() {
        let limit = limit_on(&[
            ("/proc/self/cgroup", "0::/system.slice/tagcached.service\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            (
                "/sys/fs/cgroup/system.slice/tagcached.service/memory.max",
                "536870912\n",
            ),
            ("/sys/fs/cgroup/system.slice/memory.max", "max\n"),
        ]);
        assert_eq!(limit, Some(512 << 20));
    }

    #[test]
    fn v2_max_everywhere_is_no_limit() {
        let limit = limit_on(&[
            ("/proc/self/cgroup", "0::/user.slice/session-1.scope\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            (
                "/sys/fs/cgroup/user.slice/session-1.scope/memory.max",
                "max\n",
            ),
            ("/sys/fs/cgroup/user.slice/memory.max", "max\n"),
        ]);
        assert_eq!(limit, None);
    }

    #[test]
    fn a_smaller_limit_on_an_ancestor_counts() {
        let limit = limit_on(&[
            ("/proc/self/cgroup", "0::/kubepods/burstable/pod1/abc\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            (
                "/sys/fs/cgroup/kubepods/burstable/pod1/abc/memory.max",
                "max\n",
            ),
            (
                "/sys/fs/cgroup/kubepods/burstable/pod1/memory.max",
                "268435456\n",
            ),
            (
                "/sys/fs/cgroup/kubepods/burstable/memory.max",
                "1073741824\n",
            ),
        ]);
        assert_eq!(limit, Some(256 << 20));
    }

    #[test]
    fn v2_in_a_cgroup_namespace_reads_the_mount_point() {
        // Docker with a private cgroup namespace: the container's cgroup is
        // `/` and is what the mount shows.
        let limit = limit_on(&[
            ("/proc/self/cgroup", "0::/\n"),
            (
                "/proc/self/mountinfo",
                "700 690 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n",
            ),
            ("/sys/fs/cgroup/memory.max", "536870912\n"),
        ]);
        assert_eq!(limit, Some(512 << 20));
    }

    #[test]
    fn v1_reads_limit_in_bytes_under_a_mount_showing_only_the_container() {
        // Docker on cgroup v1: /proc/self/cgroup names the host's path, the
        // mount shows that cgroup as its root.
        let limit = limit_on(&[
            (
                "/proc/self/cgroup",
                "12:pids:/docker/0123abcd\n4:memory:/docker/0123abcd\n1:name=systemd:/docker/0123abcd\n",
            ),
            (
                "/proc/self/mountinfo",
                "\
600 590 0:40 /docker/0123abcd /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
601 590 0:41 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
",
            ),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n"),
        ]);
        assert_eq!(limit, Some(512 << 20));
    }

    #[test]
    fn v1_unlimited_is_no_limit_and_hybrid_hosts_read_both() {
        // A hybrid host (this one's layout): v1 controllers, an empty v2
        // hierarchy under /sys/fs/cgroup/unified.
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let cgroups = "4:memory:/process_api/3ec5\n1:cpu:/\n0::/\n";
        let unlimited = limit_on(&[
            ("/proc/self/cgroup", cgroups),
            ("/proc/self/mountinfo", mountinfo),
            (
                "/sys/fs/cgroup/memory/process_api/3ec5/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(unlimited, None);
        let limited = limit_on(&[
            ("/proc/self/cgroup", cgroups),
            ("/proc/self/mountinfo", mountinfo),
            (
                "/sys/fs/cgroup/memory/process_api/3ec5/memory.limit_in_bytes",
                "536870912\n",
            ),
        ]);
        assert_eq!(limited, Some(512 << 20));
    }

    #[test]
    fn nothing_readable_is_no_limit() {
        assert_eq!(limit_on(&[]), None);
        assert_eq!(
            limit_on(&[
                ("/proc/self/cgroup", "0::/\n"),
                ("/proc/self/mountinfo", "")
            ]),
            None,
            "no cgroup file system mounted"
        );
        assert_eq!(
            limit_on(&[
                ("/proc/self/cgroup", "0::/\n"),
                ("/proc/self/mountinfo", V2_MOUNT),
                ("/sys/fs/cgroup/memory.max", "lots\n"),
            ]),
            None,
            "an unreadable limit"
        );
    }

    #[test]
    fn the_default_budget_is_a_quarter_of_the_smaller_at_most_1_gib() {
        let host = |ram: Option<u64>, cgroup_limit: Option<u64>| HostMemory { ram, cgroup_limit };
        // The container: 512 MiB on a large machine takes 128 MiB.
        assert_eq!(
            host(Some(64 << 30), Some(512 << 20)).default_budget(),
            128 << 20
        );
        assert_eq!(host(Some(2 << 30), None).default_budget(), 512 << 20);
        assert_eq!(host(Some(64 << 30), None).default_budget(), 1 << 30);
        assert_eq!(
            host(Some(1 << 30), Some(8 << 30)).default_budget(),
            256 << 20
        );
        assert_eq!(host(None, Some(1 << 30)).default_budget(), 256 << 20);
        assert_eq!(host(None, None).default_budget(), 1 << 30);
    }

    #[test]
    fn mem_total_is_read_in_kib() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        20000000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_host_reads_without_error() {
        let host = HostMemory::read();
        assert!(host.ram.is_some_and(|ram| ram > 0));
        assert!(host.default_budget() <= MAX_DEFAULT_BUDGET);
    }
}
