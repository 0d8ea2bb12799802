//! `tagcached`: the daemon's entry point. Parses flags, starts the server,
//! shuts it down gracefully on SIGINT or SIGTERM, reloads its secrets (auth
//! tokens, TLS certificates) on SIGHUP, and aborts on any panic.
//!
//! Exit status: 0 after a graceful stop; 1 if the daemon cannot start
//! (the address is in use, the open file limit leaves no room, the token
//! file cannot be read, a non-loopback address without authentication,
//! ...); 2 for invalid flags or environment variables, as clap reports
//! them.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tagcached::fd_limit::fit_open_file_limit;
use tagcached::{Args, Server};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tagcached::abort::abort_on_panic();
    let args = Args::parse();
    // `--log-level` was checked by its parser, so this cannot fail.
    let filter = EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("bad --log-level `{}`", args.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut config = match args.into_config() {
        Ok(config) => config,
        Err(error) if error.is_start_error() => return Err(error.into()),
        Err(error) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, error)
            .exit(),
    };
    fit_open_file_limit(&mut config)?;
    // Checked here for a message that names the file; the server loads the
    // files again as it starts.
    if let Some(files) = &config.tls {
        tagcached::tls::files::server_config(files).context("cannot serve TLS")?;
    }
    let listen = config
        .listen
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let server =
        Server::start(config.clone()).with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(pid = std::process::id(), "ready");
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(wait_for_signal(&server))?;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown();
    server.wait()?;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT, reloading the server's secrets on each
/// SIGHUP meanwhile.
async fn wait_for_signal(server: &Server) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading secrets");
                server.reload();
            }
        }
    }
}
