//! `tagcached`: the daemon's entry point. Parses flags, starts the server,
//! shuts it down gracefully on SIGINT or SIGTERM, and aborts on any panic.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use tagcached::{Args, Server};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tagcached::abort::abort_on_panic();
    let args = Args::parse();
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("bad --log-level `{}`", args.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = args.into_config()?;
    let server = Server::start(config.clone())
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        addr = %server.local_addr(),
        threads = config.threads,
        memory = config.memory,
        "ready"
    );
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(wait_for_signal())?;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown();
    server.wait()?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
