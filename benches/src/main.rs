//! `tagcached-bench`: a load generator for tagcached, and for memcached and
//! Redis running the same workload, to compare them.
//!
//! The binary is glue: [`args`] turns the command line into a [`Config`],
//! [`runner`] runs it on generator threads of [`connection`]s that speak
//! through a [`driver`], and [`report`] prints what the [`recorder`]s saw.
//! `--stampede` runs the [`stampede`] workload instead.

mod args;
mod config;
mod connection;
mod cpu;
mod dataset;
mod driver;
mod progress;
mod recorder;
mod report;
mod rng;
mod runner;
mod schedule;
mod stampede;
mod stream;
mod workload;
mod zipf;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use serde::Serialize;

use crate::args::Args;
use crate::config::Config;
use crate::report::Summary;
use crate::stampede::StampedeSummary;

fn main() -> ExitCode {
    // Bad arguments exit with status 2, from clap or from here.
    let config: Config = match Args::parse().into_config() {
        Ok(config) => config,
        Err(error) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, error)
            .exit(),
    };
    if let Some(stampede) = config.stampede {
        return match stampede::run(&config, stampede) {
            Ok(summary) => print_report(config.json, &summary, StampedeSummary::table),
            Err(error) => fail(error),
        };
    }
    let result = runner::run(&config, &mut |warning| {
        eprintln!("tagcached-bench: warning: {warning}");
    });
    let result = match result {
        Ok(result) => result,
        Err(error) => return fail(error),
    };
    let summary = Summary::new(&config, &result);
    for warning in summary.warnings() {
        eprintln!("tagcached-bench: warning: {warning}");
    }
    print_report(config.json, &summary, Summary::table)
}

/// Prints a run's report, as one JSON object or as `table` has it.
fn print_report<T: Serialize>(json: bool, summary: &T, table: fn(&T) -> String) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(summary) {
            Ok(json) => println!("{json}"),
            Err(error) => return fail(format!("cannot write JSON: {error}")),
        }
    } else {
        print!("{}", table(summary));
    }
    ExitCode::SUCCESS
}

/// Reports a failed run.
fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("tagcached-bench: error: {error}");
    ExitCode::FAILURE
}
