//! `tagcached`: the daemon's entry point. Parses flags, starts the server,
//! shuts it down gracefully on SIGINT or SIGTERM, reloads its secrets (auth
//! tokens, TLS certificates) on SIGHUP, and aborts on any panic.
//!
//! Exit status: 0 after a graceful stop; 1 if the daemon cannot start
//! (the address is in use, the open file limit leaves no room, the token
//! file cannot be read, a non-loopback address without authentication,
//! an admin port beyond loopback without a token, ...); 2 for invalid flags or environment variables, as clap reports
//! them.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tagcached::fd_limit::fit_open_file_limit;
use tagcached::{Args, Server};
use tokio::signal::unix::{signal, Signal, SignalKind};
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
    // The signals are caught from before the server listens: a SIGHUP sent
    // as soon as the port answers (or the listening line is logged) would
    // otherwise find the default action, which ends the process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signals = {
        let _entered = runtime.enter();
        Signals::register()?
    };
    let server =
        Server::start(config.clone()).with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(pid = std::process::id(), "ready");
    runtime.block_on(signals.wait(&server));
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown();
    server.wait()?;
    tracing::info!("stopped");
    Ok(())
}

/// The signals the daemon acts on, caught from registration on.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    /// Catches SIGTERM, SIGINT and SIGHUP; must run inside a runtime.
    fn register() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT, reloading the server's secrets on each
    /// SIGHUP meanwhile.
    async fn wait(mut self, server: &Server) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
                _ = self.hangup.recv() => {
                    tracing::info!("SIGHUP: reloading secrets");
                    server.reload();
                }
            }
        }
    }
}
