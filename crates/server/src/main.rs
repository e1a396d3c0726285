//! `s3ipfs`: the S3-to-IPFS gateway binary and its tools.

mod cid_command;
mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Cid(args) => cid_command::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("s3ipfs: {err}");
            ExitCode::FAILURE
        }
    }
}
