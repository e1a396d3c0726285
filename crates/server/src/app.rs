//! The running gateway: owns its data directory, binds its listener, serves S3 through the front, runs the
//! background jobs (multipart expiry, garbage collection) and drains on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use s3ipfs_core::{Gateway, MetaStore};
use s3ipfs_s3::{ApiOptions, FrontOptions, S3Front, build_service};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::conn::{self, ConnLimits};
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

/// The background jobs' settings.
#[derive(Debug, Clone, Copy)]
struct Jobs {
    multipart_expiry: Duration,
    gc_grace: Duration,
    gc_interval: Duration,
}

/// A gateway ready to serve.
pub struct Application {
    listener: TcpListener,
    gateway: Gateway,
    front: S3Front,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
    jobs: Jobs,
    _lock: DataDirLock,
    /// What this start did about the root user.
    pub root: RootUser,
}

impl Application {
    /// Takes the data directory, opens the stores, clears what a crash interrupted, bootstraps the root user and
    /// binds the listener.
    pub async fn build(args: &ServeArgs) -> Result<Self, StartError> {
        let started = SystemTime::now();
        let lock = stores::lock_data_dir(&args.data.data_dir)?;
        let (meta, content) = stores::open(&args.data.data_dir).await?;
        // Only the lock holder may do this: no other process's upload is in flight.
        content.clear_interrupted_uploads().await.map_err(StoreError::from)?;
        let stale = meta.abort_orphans(started).await?;
        if stale > 0 {
            tracing::info!(uploads = stale, "aborted uploads interrupted by a previous stop");
        }
        let keys = args.root_access_key.as_deref().zip(args.root_secret_key.as_deref());
        let root = users::ensure_root(meta.as_ref(), &args.root_email, keys).await?;
        let gateway = Gateway::new(Arc::clone(&meta) as Arc<dyn MetaStore>, Arc::new(content), args.cid_profile);
        let options =
            ApiOptions { region: args.region.clone(), domains: args.domains.clone(), allow_sigv2: args.allow_sigv2 };
        let stall_timeout = Duration::from_secs(args.conn.stall_timeout_secs);
        let front = S3Front::new(
            build_service(gateway.clone(), &options)?,
            FrontOptions { region: args.region.clone(), stall_timeout },
        );
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let open_files = conn::raise_open_file_limit();
        let affordable = conn::connections_for(open_files);
        let max_connections = match args.conn.max_connections {
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
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(args.conn.header_timeout_secs),
            idle_timeout: Duration::from_secs(args.conn.idle_timeout_secs),
            stall_timeout,
            max_connections,
        };
        let listener =
            TcpListener::bind(args.listen).await.map_err(|source| StartError::Bind { addr: args.listen, source })?;
        let jobs = Jobs {
            multipart_expiry: Duration::from_secs(args.multipart_expiry_secs),
            gc_grace: Duration::from_secs(args.gc.grace_secs),
            gc_interval: Duration::from_secs(args.gc_interval_secs.max(1)),
        };
        Ok(Application { listener, gateway, front, tls, limits, jobs, _lock: lock, root })
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
        let expiry = tokio::spawn(expire_multiparts(self.gateway.clone(), self.jobs.multipart_expiry));
        let stop_gc = Arc::new(StopSignal::default());
        let gc = tokio::spawn(collect_garbage(self.gateway.clone(), self.jobs, Arc::clone(&stop_gc)));
        conn::serve(self.listener, self.front, self.tls, self.limits, shutdown).await;
        expiry.abort();
        // A collection stops between two deletions and gives its lease up, so the next start need not wait for it.
        stop_gc.stop();
        let gc_abort = gc.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), gc).await.is_err() {
            gc_abort.abort();
        }
    }
}

/// The expiry job: aborts abandoned multipart uploads, every half expiry (at most 10 minutes).
async fn expire_multiparts(gateway: Gateway, expiry: Duration) {
    let period = (expiry / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        let Some(cutoff) = SystemTime::now().checked_sub(expiry) else { continue };
        match gateway.expire_multiparts(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired abandoned multipart uploads"),
            Err(err) => tracing::warn!(error = %err, "multipart expiry failed"),
        }
    }
}

/// Tells a background job to stop: a flag it checks while it works, and a wake-up while it waits.
#[derive(Debug, Default)]
struct StopSignal {
    stopped: AtomicBool,
    wake: tokio::sync::Notify,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// The garbage collector: every `gc_interval`, deletes content unreferenced for longer than `gc_grace`, until
/// stopped.
async fn collect_garbage(gateway: Gateway, jobs: Jobs, stop: Arc<StopSignal>) {
    let mut ticks = tokio::time::interval(jobs.gc_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.wake.notified() => return,
        }
        match gateway.collect_garbage(jobs.gc_grace, &stop.stopped).await {
            Ok(Some(report)) if report.objects > 0 || report.failed > 0 => tracing::info!(
                objects = report.objects,
                bytes = report.bytes,
                failed = report.failed,
                "garbage collected"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "garbage collection failed"),
        }
        if stop.stopped.load(Ordering::Relaxed) {
            return;
        }
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
