//! `s3ipfs`: the S3-to-IPFS gateway binary and its tools.

mod app;
mod caches;
mod cid_command;
mod cli;
mod config;
mod conn;
mod jobs;
mod serve;
mod stores;
mod tls;
mod users;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let config = match &cli.command {
        cli::Command::Cid(_) => None,
        _ => match cli.config() {
            Ok(config) => Some(config),
            Err(err) => {
                eprintln!("s3ipfs: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let result = match (cli.command, config) {
        (cli::Command::Cid(args), _) => cid_command::run(&args).map_err(|e| e.to_string()),
        (cli::Command::Serve, Some(config)) => serve::run_serve(&config),
        (cli::Command::User(command), Some(config)) => serve::run_user(&config, command),
        (cli::Command::Gc(args), Some(config)) => serve::run_gc(&config, &args),
        (cli::Command::Migrate, Some(config)) => serve::run_migrate(&config),
        (cli::Command::Config(cli::ConfigCommand::Check), Some(config)) => {
            serve::run_config_check(&config);
            Ok(())
        }
        (_, None) => Err("no configuration".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("s3ipfs: {err}");
            ExitCode::FAILURE
        }
    }
}
