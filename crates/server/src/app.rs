//! The running gateway: opens the configured stores (owning the data directory when the metadata store is
//! embedded), binds its listener, serves S3 through the front, runs the background jobs and drains on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3ipfs_s3::{ApiOptions, FrontOptions, S3Front, build_service};
use tokio::net::TcpListener;

use crate::caches::Caches;
use crate::config::{Config, ConfigError};
use crate::conn::{self, ConnLimits};
use crate::jobs::{Jobs, StopSignal, heartbeat_ttl};
use crate::stores::{self, DataDirLock, StoreError};
use crate::users::{self, RootUser};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A store failed to open, or the data directory is another server's.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metadata store refused a bootstrap step.
    #[error("bootstrapping the root user: {0}")]
    Root(#[from] s3ipfs_core::MetaError),
    /// The S3 service could not be built.
    #[error(transparent)]
    Service(#[from] s3ipfs_s3::BuildError),
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A gateway ready to serve.
pub struct Application {
    listener: TcpListener,
    front: S3Front,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
    jobs: Jobs,
    caches: Caches,
    _lock: Option<DataDirLock>,
    /// What this start did about the root user.
    pub root: RootUser,
}

impl Application {
    /// Opens the stores (taking the data directory when the metadata store is embedded), clears what a crash
    /// interrupted, bootstraps the root user and binds the listener.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        let started = SystemTime::now();
        let embedded = config.meta.postgres().is_none();
        let lock = if embedded { Some(stores::lock_data_dir(&config.server.data_dir)?) } else { None };
        let mut caches = Caches::connect(config).await?;
        let meta = caches.meta(config, stores::open_meta(config, config.meta.migrate).await?, embedded);
        let content = caches.content(config, stores::open_content(config).await?, true)?;
        meta.heartbeat(heartbeat_ttl(&config.jobs)).await?;
        if embedded {
            // Only the lock holder may do this: no other process's upload is in flight.
            content.clear_interrupted_uploads().await.map_err(StoreError::from)?;
            let stale = meta.abort_orphans(started).await?;
            if stale > 0 {
                tracing::info!(uploads = stale, "aborted uploads interrupted by a previous stop");
            }
        }
        let server = &config.server;
        let keys = server.root_access_key.as_deref().zip(server.root_secret_key.as_ref().map(|s| s.expose()));
        let root = users::ensure_root(meta.as_ref(), &server.root_email, keys).await?;
        let profile = config.cid_profile()?;
        let gateway = content.gateway(Arc::clone(&meta), profile);
        let options = ApiOptions {
            region: server.region.clone(),
            domains: server.domains.clone(),
            allow_sigv2: server.allow_sigv2,
        };
        let stall_timeout = Duration::from_secs(server.stall_timeout_secs);
        let front = S3Front::new(
            build_service(gateway.clone(), &options)?,
            FrontOptions { region: server.region.clone(), stall_timeout },
        );
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let limits = connection_limits(config, stall_timeout);
        let listener = TcpListener::bind(server.listen)
            .await
            .map_err(|source| StartError::Bind { addr: server.listen, source })?;
        let tmp_idle = (stall_timeout * 10).max(Duration::from_secs(300));
        let stop = Arc::new(StopSignal::default());
        let jobs = Jobs { gateway, meta, content, config: config.jobs.clone(), tmp_idle, stop };
        Ok(Application { listener, front, tls, limits, jobs, caches, _lock: lock, root })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The URL clients use: `https://` when TLS is configured.
    pub fn endpoint(&self) -> std::io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.local_addr()?))
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits for open connections to finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let stop = Arc::clone(&self.jobs.stop);
        let tasks = self.jobs.spawn();
        conn::serve(self.listener, self.front, self.tls, self.limits, shutdown).await;
        // A collection stops between two deletions and gives its lease up, so the next start need not wait for it.
        stop.stop();
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                abort.abort();
            }
        }
        self.caches.log_counts();
    }
}

/// The connection limits: the configured ones, with a connection budget the open-file limit can afford.
fn connection_limits(config: &Config, stall_timeout: Duration) -> ConnLimits {
    let open_files = conn::raise_open_file_limit();
    let affordable = conn::connections_for(open_files);
    let max_connections = match config.server.max_connections {
        0 => affordable,
        n if n > affordable => {
            tracing::warn!(
                requested = n,
                open_files,
                max_connections = affordable,
                "more connections than open files allow: the limit is lowered"
            );
            affordable
        }
        n => n,
    };
    tracing::info!(open_files, max_connections, "connection limits");
    ConnLimits {
        header_timeout: Duration::from_secs(config.server.header_timeout_secs),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        stall_timeout,
        max_connections,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
