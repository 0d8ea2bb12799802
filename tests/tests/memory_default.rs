//! The default `--memory` in a memory-limited cgroup (issue 8, item 10):
//! a quarter of the cgroup's limit, not of the machine's RAM.
//!
//! The test makes a child of this process's memory cgroup with a 512 MiB
//! limit and starts the daemon in it (`sh -c 'echo $$ > cgroup.procs; exec
//! ...'`). That needs a writable cgroup hierarchy (root, v1, or v2 with the
//! memory controller delegated); where there is none it says so and
//! passes, and the parsing is still covered by the unit tests of
//! `tagcached::host_memory`.

use std::path::{Path, PathBuf};

use tagcached_tests::daemon::built_binary;
use tagcached_tests::{within, Daemon, BASE_ARGS};

const LIMIT: u64 = 512 << 20;

/// A cgroup made for the test, removed when dropped (once its processes
/// are gone).
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    /// A child of this process's memory cgroup limited to `limit` bytes, or
    /// why there cannot be one here.
    fn create(limit: u64) -> Result<TestCgroup, String> {
        let (parent, limit_file) = own_memory_cgroup()?;
        let dir = parent.join(format!("tagcached-test-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|error| format!("mkdir {}: {error}", dir.display()))?;
        let cgroup = TestCgroup { dir };
        let file = cgroup.dir.join(limit_file);
        std::fs::write(&file, limit.to_string())
            .map_err(|error| format!("write {}: {error}", file.display()))?;
        Ok(cgroup)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The daemon was killed when its `Daemon` was dropped; the kernel
        // may take a moment to empty the cgroup.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

/// This process's cgroup directory in the hierarchy with the memory
/// controller, and the name of its limit file; only for a mount that shows
/// the whole hierarchy (root `/`).
fn own_memory_cgroup() -> Result<(PathBuf, &'static str), String> {
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    let cgroups = read("/proc/self/cgroup")?;
    let mountinfo = read("/proc/self/mountinfo")?;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (v2, limit_file) = if controllers.split(',').any(|c| c == "memory") {
            (false, "memory.limit_in_bytes")
        } else if id == "0" && controllers.is_empty() {
            (true, "memory.max")
        } else {
            continue;
        };
        let mount = mountinfo.lines().find_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let mount: Vec<&str> = mount.split_whitespace().collect();
            let fs: Vec<&str> = fs.split_whitespace().collect();
            let wanted = if v2 {
                fs.first() == Some(&"cgroup2")
            } else {
                fs.first() == Some(&"cgroup")
                    && fs
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|o| o == "memory"))
            };
            (wanted && mount.get(3) == Some(&"/")).then(|| PathBuf::from(mount[4]))
        });
        let Some(mount) = mount else { continue };
        let dir = mount.join(path.trim_start_matches('/'));
        if v2 && !controllers_of(&dir).contains("memory") {
            continue;
        }
        return Ok((dir, limit_file));
    }
    Err("no writable memory cgroup hierarchy".to_owned())
}

/// The controllers a v2 cgroup enables for its children.
fn controllers_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default()
}

/// Before: the default came from /proc/meminfo alone, so a daemon limited
/// to 512 MiB on this machine took 1 GiB, twice its whole allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_memory_is_a_quarter_of_the_cgroup_limit() {
    let binary = built_binary().await;
    let cgroup = match TestCgroup::create(LIMIT) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!("skipped: cannot make a memory-limited cgroup here ({why})");
            return;
        }
    };
    within(async {
        let procs = cgroup.dir.join("cgroup.procs");
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "echo $$ > '{}' && exec \"$0\" \"$@\"",
                procs.display()
            ))
            .arg(binary)
            .args(BASE_ARGS)
            .args(["--threads", "1"]);
        let mut daemon = Daemon::spawn(command).await;
        daemon.connect().await.ping().await;
        let log = daemon.drain_log();
        let all = log.join("\n");
        let listening = log
            .iter()
            .find(|line| line.contains("listening"))
            .expect("the listening line");
        assert!(listening.contains("memory=128MiB"), "{all}");
        assert!(
            log.iter()
                .any(|line| line.contains("no --memory") && line.contains("cgroup_limit=512MiB")),
            "the log says where the default came from:\n{all}"
        );
        drop(daemon);
    })
    .await;
    drop(cgroup);
}
