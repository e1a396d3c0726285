//! Command-line interface: the subcommands and their arguments. Every setting has a flag and an environment
//! variable (listed in `.env.example`).

use std::net::SocketAddr;
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
    /// Run the S3 gateway.
    Serve(Box<ServeArgs>),
    /// Manage users and their access keys.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the IPFS CID of a file (what `ipfs add` prints), optionally writing its DAG as a CAR.
    Cid(CidArgs),
    /// Delete stored content that nothing has referenced for the grace period (a running server does this itself
    /// every --gc-interval-secs; this command is safe to run beside it).
    Gc(GcCommandArgs),
}

/// How long unreferenced content is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct GcArgs {
    /// Content no object version, part or upload in progress has referenced for this many seconds is deleted.
    #[arg(long = "gc-grace-secs", env = "S3IPFS_GC_GRACE_SECS", default_value_t = 900)]
    pub grace_secs: u64,
}

/// Arguments of `s3ipfs gc`.
#[derive(Debug, Clone, clap::Args)]
pub struct GcCommandArgs {
    /// Storage location.
    #[command(flatten)]
    pub data: DataArgs,
    /// Grace period.
    #[command(flatten)]
    pub gc: GcArgs,
    /// Only report what would be deleted, and how many bytes.
    #[arg(long)]
    pub dry_run: bool,
}

/// Limits that keep a stalled or flooding client from holding the server's resources.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Seconds a client may take to send a request's headers (and a TLS handshake).
    #[arg(long, env = "S3IPFS_HEADER_TIMEOUT_SECS", default_value_t = 20)]
    pub header_timeout_secs: u64,
    /// Seconds a connection stays open with no request in flight (keep-alive, or nothing sent at all).
    #[arg(long, env = "S3IPFS_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub idle_timeout_secs: u64,
    /// Seconds a request body may send nothing, or a response wait for the client to read, before the request fails.
    #[arg(long, env = "S3IPFS_STALL_TIMEOUT_SECS", default_value_t = 30)]
    pub stall_timeout_secs: u64,
    /// Connections served at once; more are answered 503 SlowDown and closed. 0 derives it from the open-file limit.
    #[arg(long, env = "S3IPFS_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
}

/// Where the embedded stores live.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Directory of the embedded metadata database and the local CID store.
    #[arg(long, env = "S3IPFS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// Arguments of `s3ipfs serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "S3IPFS_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Storage location.
    #[command(flatten)]
    pub data: DataArgs,
    /// Region reported to clients and expected in signatures.
    #[arg(long, env = "S3IPFS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Base domains for virtual-hosted-style requests (`bucket.DOMAIN`), comma-separated; path style always works.
    #[arg(long = "domain", env = "S3IPFS_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,
    /// Accept SigV2 presigned URLs (what boto3 and aws-cli v1 generate by default).
    #[arg(long, env = "S3IPFS_ALLOW_SIGV2", default_value_t = false)]
    pub allow_sigv2: bool,
    /// PEM certificate chain: serve HTTPS (the SDKs send checksum trailers only over HTTPS).
    #[arg(long, env = "S3IPFS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "S3IPFS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Multipart uploads older than this many seconds are aborted and their parts freed (default 7 days).
    #[arg(long, env = "S3IPFS_MULTIPART_EXPIRY_SECS", default_value_t = 7 * 24 * 3600)]
    pub multipart_expiry_secs: u64,
    /// Garbage collection's grace period.
    #[command(flatten)]
    pub gc: GcArgs,
    /// Seconds between garbage collections.
    #[arg(long, env = "S3IPFS_GC_INTERVAL_SECS", default_value_t = 300)]
    pub gc_interval_secs: u64,
    /// Connection limits and timeouts.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// CID profile of new objects: kubo-v1, kubo-v0 or unixfs-v1-2025.
    #[arg(long, env = "S3IPFS_CID_PROFILE", default_value = "kubo-v1")]
    pub cid_profile: Profile,
    /// Email of the first user, created on first start.
    #[arg(long, env = "S3IPFS_ROOT_EMAIL", default_value = "admin@localhost")]
    pub root_email: String,
    /// Access key id of the first user (generated and printed once when not given).
    #[arg(long, env = "S3IPFS_ROOT_ACCESS_KEY", requires = "root_secret_key")]
    pub root_access_key: Option<String>,
    /// Secret key of the first user.
    #[arg(long, env = "S3IPFS_ROOT_SECRET_KEY", hide_env_values = true, requires = "root_access_key")]
    pub root_secret_key: Option<String>,
}

/// `s3ipfs user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Register a user and print a new access key pair.
    Create {
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// Storage location.
        #[command(flatten)]
        data: DataArgs,
    },
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
