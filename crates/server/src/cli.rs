//! Command-line interface: the subcommands and their arguments.

use std::path::PathBuf;

use s3ipfs_cid::Profile;

/// S3-compatible gateway that stores every object on IPFS.
#[derive(Debug, clap::Parser)]
#[command(name = "s3ipfs", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the IPFS CID of a file (what `ipfs add` prints), optionally writing its DAG as a CAR.
    Cid(CidArgs),
}

/// Arguments of `s3ipfs cid`.
#[derive(Debug, clap::Args)]
pub struct CidArgs {
    /// Import profile: kubo-v1 (`ipfs add --cid-version=1`), kubo-v0 (plain `ipfs add`) or unixfs-v1-2025.
    #[arg(long, default_value = "kubo-v1")]
    pub profile: Profile,
    /// Also write the file's DAG as a CAR v1 file to this path.
    #[arg(long, value_name = "OUT")]
    pub car: Option<PathBuf>,
    /// The file to import, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
}
