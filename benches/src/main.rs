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
mod workload;
mod zipf;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::Args;
use crate::config::Config;
use crate::report::Summary;

fn main() -> ExitCode {
    // Bad arguments exit with status 2, from clap or from here.
    let config: Config = match Args::parse().into_config() {
        Ok(config) => config,
        Err(error) => Args::command()
            .error(clap::error::ErrorKind::ValueValidation, error)
            .exit(),
    };
    if let Some(stampede) = config.stampede {
        return run_stampede(&config, stampede);
    }
    let result = runner::run(&config, &mut |warning| {
        eprintln!("tagcached-bench: warning: {warning}");
    });
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            eprintln!("tagcached-bench: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let summary = Summary::new(&config, &result);
    for warning in summary.warnings() {
        eprintln!("tagcached-bench: warning: {warning}");
    }
    if config.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("tagcached-bench: error: cannot write JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", summary.table());
    }
    ExitCode::SUCCESS
}

/// `--stampede`: the run and its report.
fn run_stampede(config: &Config, stampede: stampede::Stampede) -> ExitCode {
    let summary = match stampede::run(config, stampede) {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("tagcached-bench: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if config.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("tagcached-bench: error: cannot write JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", summary.table());
    }
    ExitCode::SUCCESS
}
