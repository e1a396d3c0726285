//! `s3ipfs`: the S3-to-IPFS gateway binary and its tools.

mod app;
mod cid_command;
mod cli;
mod conn;
mod serve;
mod stores;
mod tls;
mod users;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Cid(args) => cid_command::run(&args).map_err(|e| e.to_string()),
        cli::Command::Serve(args) => serve::run_serve(&args),
        cli::Command::User(command) => serve::run_user(command),
        cli::Command::Gc(args) => serve::run_gc(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("s3ipfs: {err}");
            ExitCode::FAILURE
        }
    }
}
