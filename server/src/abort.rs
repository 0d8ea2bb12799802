//! A panic anywhere aborts the process.
//!
//! A worker owns its shard, and the other workers reach that shard only
//! through its inbox. If a worker's task panicked and the process went on,
//! the shard's keys would be unreachable, or reachable in a state that a
//! half-finished operation left behind, and the daemon would look alive to
//! every health check. A cache holds nothing that a restart does not
//! rebuild, so failing loudly and restarting clean is the safe answer: the
//! hook logs the panic (where, what, and a backtrace when `RUST_BACKTRACE`
//! asks for one) and aborts before any unwinding could leave state behind.

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;

/// Installs the hook. The binary calls this first thing; an embedding
/// application decides for itself.
pub fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        log_panic(info);
        std::process::abort();
    }));
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string panic payload)");
    let location = info
        .location()
        .map_or_else(|| "unknown".to_owned(), ToString::to_string);
    let backtrace = Backtrace::capture();
    // Both to the log and straight to stderr: the subscriber may be the
    // thing that panicked, and the process is about to die either way.
    tracing::error!(thread, %location, message, "panic: aborting the process");
    eprintln!(
        "tagcached: thread '{thread}' panicked at {location}: {message}; aborting\n{backtrace}"
    );
}
