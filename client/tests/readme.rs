//! The README's examples, run as written, so that they cannot drift from
//! what the code does: the shell session of "A session from the shell",
//! line by line against a real server, and the Rust snippets of "From Rust"
//! and "Hard or soft invalidation", which must be doctests (compiled by
//! `cargo test`): the crate's and `Client::fetch`'s.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::cli::{cli, run, Output, CLI};
use support::start_server;

const README: &str = include_str!("../../README.md");
const LIB_RS: &str = include_str!("../src/lib.rs");
const CACHE_ASIDE_RS: &str = include_str!("../src/cache_aside.rs");

/// The body of the first code block tagged `info` after `heading`.
fn readme_block(heading: &str, info: &str) -> Vec<&'static str> {
    let section = README
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no `{heading}`"))
        .1;
    let fence = format!("```{info}\n");
    let block = section
        .split_once(&fence)
        .unwrap_or_else(|| panic!("no {fence:?} block after `{heading}`"))
        .1;
    let block = block.split_once("```\n").expect("the block ends").0;
    block.lines().collect()
}

/// One command of the session and what the README says it prints.
#[derive(Debug, Default)]
struct Step {
    command: String,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// `line` without a trailing `  # comment`, and whether the comment says
/// the line is printed on stderr.
fn without_comment(line: &str) -> (&str, bool) {
    match line.split_once("  #") {
        Some((text, comment)) => (text.trim_end(), comment.trim() == "on stderr"),
        None => (line, false),
    }
}

/// The session as steps: a `$ ` line is a command, the lines up to the
/// next one what it prints.
fn session() -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in readme_block("## A session from the shell", "sh") {
        let (text, on_stderr) = without_comment(line);
        if let Some(command) = text.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_owned(),
                ..Step::default()
            });
            continue;
        }
        let step = steps.last_mut().expect("the session starts with a command");
        if on_stderr {
            step.stderr.push(text.to_owned());
        } else {
            step.stdout.push(text.to_owned());
        }
    }
    steps
}

/// The server's counter `name`, read with the CLI.
fn stat(server: &str, name: &str) -> u64 {
    let stats = cli(server, &["stats"]);
    assert_eq!(stats.code, Some(0), "{stats:?}");
    stats
        .stdout_text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// Whether printed lines match the README's. The numbers the session
/// cannot fix, invalidation sequences (they start at the server's boot
/// time) and clock times in Unix milliseconds, are long: each run of ten
/// or more digits in the README matches any run of digits. Everything else,
/// counters included, must be as shown.
fn lines_match(printed: &[&str], readme: &[String]) -> bool {
    printed.len() == readme.len()
        && printed
            .iter()
            .zip(readme)
            .all(|(printed, readme)| line_matches(printed, readme))
}

fn line_matches(printed: &str, readme: &str) -> bool {
    let (mut printed, mut readme) = (printed, readme);
    loop {
        let long = readme.bytes().take_while(u8::is_ascii_digit).count();
        if long >= 10 {
            let digits = printed.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            (printed, readme) = (&printed[digits..], &readme[long..]);
            continue;
        }
        let mut readme_chars = readme.chars();
        let mut printed_chars = printed.chars();
        match (readme_chars.next(), printed_chars.next()) {
            (None, None) => return true,
            (Some(expected), Some(found)) if expected == found => {
                (printed, readme) = (printed_chars.as_str(), readme_chars.as_str());
            }
            _ => return false,
        }
    }
}

fn printed_lines(bytes: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    text.lines().collect()
}

/// Issue 8: the session showed `get_invalidated 1`, which a session at a
/// person's pace never prints: the sweep removes the invalidated entry
/// before the read. Now the README's figures are what this produces.
#[test]
fn the_readme_shell_session_prints_what_the_readme_shows() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let steps = session();
    assert!(steps.len() >= 8, "the session was found: {steps:?}");
    for step in steps {
        if let Some(alias) = step.command.strip_prefix("alias tc=") {
            // Stands for the binary under test, as `tc` below.
            assert!(alias.contains("--bin tagcached-cli"), "{alias}");
            continue;
        }
        // A soft invalidation leaves its entries stale, not dead: nothing
        // for the sweep to remove.
        let invalidates =
            step.command.starts_with("tc invalidate ") && !step.command.contains("--soft");
        let reclaimed = stat(&addr, "invalidated_reclaimed");

        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("tc() {{ \"$TC\" \"$@\"; }}\n{}", step.command))
            .env("TC", CLI)
            .env("TAGCACHED_SERVER", &addr);
        let output: Output = run(shell, b"");
        let stdout = printed_lines(&output.stdout);
        let stderr: Vec<&str> = output.stderr.lines().collect();
        assert!(
            lines_match(&stdout, &step.stdout) && lines_match(&stderr, &step.stderr),
            "`$ {}` printed\n{stdout:?} on stdout and\n{stderr:?} on stderr; the README shows\n{:?} and\n{:?}",
            step.command,
            step.stdout,
            step.stderr,
        );

        if invalidates {
            // A person types the next command seconds later; the sweep,
            // every 10 ms, has long removed the entry by then.
            let deadline = Instant::now() + Duration::from_secs(5);
            while stat(&addr, "invalidated_reclaimed") == reclaimed {
                assert!(Instant::now() < deadline, "the sweep removed nothing");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The visible lines of the first `no_run` example in `docs`, doc comment
/// lines with their `//!` or `///` taken off.
fn doctest(docs: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    docs.map(|line| line.strip_prefix(' ').unwrap_or(line))
        .skip_while(|line| *line != "```no_run")
        .skip(1)
        .take_while(|line| *line != "```")
        // rustdoc's hidden lines: compiled, not shown.
        .filter(|line| *line != "#" && !line.starts_with("# "))
        .collect()
}

/// The visible lines of the first `no_run` example in the crate's docs.
fn crate_doctest() -> Vec<&'static str> {
    doctest(LIB_RS.lines().filter_map(|line| line.strip_prefix("//!")))
}

/// The visible lines of the `no_run` example in the docs of the item that
/// `source` declares on the line starting with `item`.
fn item_doctest(source: &'static str, item: &str) -> Vec<&'static str> {
    let lines: Vec<&'static str> = source.lines().map(str::trim_start).collect();
    let at = lines
        .iter()
        .position(|line| line.starts_with(item))
        .unwrap_or_else(|| panic!("no `{item}`"));
    let docs = lines[..at]
        .iter()
        .rev()
        .take_while(|line| line.starts_with("///"))
        .filter_map(|line| line.strip_prefix("///"))
        .collect::<Vec<_>>();
    doctest(docs.into_iter().rev())
}

/// Issue 8: the README's snippet passed `|| render(42)` where a closure
/// returning a future is needed, and nothing compiled it. It is now the
/// crate's doctest, which `cargo test` compiles.
#[test]
fn the_readme_rust_snippet_is_the_crate_doctest() {
    let readme = readme_block("## From Rust", "rust");
    let doctest = crate_doctest();
    assert!(doctest.len() > 5, "the doctest was found: {doctest:?}");
    assert_eq!(
        readme, doctest,
        "README's snippet must be the visible lines of the example in client/src/lib.rs"
    );
}

/// The Rust snippet of "Hard or soft invalidation" is the example of
/// `Client::fetch`, so that it compiles as shown.
#[test]
fn the_readme_soft_invalidation_snippet_is_the_fetch_doctest() {
    let readme = readme_block("## Hard or soft invalidation", "rust");
    let doctest = item_doctest(CACHE_ASIDE_RS, "pub async fn fetch<");
    assert!(doctest.len() > 5, "the doctest was found: {doctest:?}");
    assert_eq!(
        readme, doctest,
        "README's snippet must be the visible lines of Client::fetch's example"
    );
}
