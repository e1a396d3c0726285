//! The running gateway: binds its listener, serves S3 over HTTP/1.1 and HTTP/2, drains connections on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3ipfs_core::{Gateway, MetaStore};
use s3ipfs_s3::{ApiOptions, build_service};
use s3s::service::S3Service;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::stores::{self, StoreError};
use crate::users::{self, RootUser};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A store failed to open.
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

/// A gateway ready to serve.
pub struct Application {
    listener: TcpListener,
    gateway: Gateway,
    multipart_expiry: std::time::Duration,
    service: S3Service,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Set when this start created the root user.
    pub root: RootUser,
}

impl Application {
    /// Opens the stores, aborts uploads a crash interrupted, bootstraps the root user and binds the listener.
    pub async fn build(args: &ServeArgs) -> Result<Self, StartError> {
        let started = SystemTime::now();
        let (meta, content) = stores::open(&args.data.data_dir).await?;
        let stale = meta.abort_stale(started).await?;
        if stale > 0 {
            tracing::info!(uploads = stale, "aborted uploads interrupted by a previous stop");
        }
        let keys = args.root_access_key.as_deref().zip(args.root_secret_key.as_deref());
        let root = users::ensure_root(meta.as_ref(), &args.root_email, keys).await?;
        let gateway = Gateway::new(Arc::clone(&meta) as Arc<dyn MetaStore>, Arc::new(content), args.cid_profile);
        let options =
            ApiOptions { region: args.region.clone(), domains: args.domains.clone(), allow_sigv2: args.allow_sigv2 };
        let service = build_service(gateway.clone(), &options)?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let listener =
            TcpListener::bind(args.listen).await.map_err(|source| StartError::Bind { addr: args.listen, source })?;
        let multipart_expiry = std::time::Duration::from_secs(args.multipart_expiry_secs);
        Ok(Application { listener, gateway, multipart_expiry, service, tls, root })
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
        let expiry = tokio::spawn(expire_multiparts(self.gateway.clone(), self.multipart_expiry));
        let graceful = GracefulShutdown::new();
        let builder = ConnBuilder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Small requests and responses must not wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            let service = self.service.clone();
            match &self.tls {
                None => {
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    tokio::spawn(async move {
                        if let Err(err) = conn.await {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                    });
                }
                Some(acceptor) => {
                    // The handshake runs in the connection's own task: a slow client cannot stall the accept loop.
                    let (acceptor, builder, watcher) = (acceptor.clone(), builder.clone(), graceful.watcher());
                    tokio::spawn(async move {
                        let stream = match acceptor.accept(stream).await {
                            Ok(stream) => stream,
                            Err(err) => return tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                        };
                        let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                        if let Err(err) = conn.await {
                            tracing::debug!(%peer, error = %err, "connection ended with an error");
                        }
                    });
                }
            }
        }
        tracing::info!(connections = graceful.count(), "shutting down: draining connections");
        expiry.abort();
        graceful.shutdown().await;
    }
}

/// The expiry job: aborts abandoned multipart uploads and frees their parts, every half expiry (at most 10 minutes).
async fn expire_multiparts(gateway: Gateway, expiry: std::time::Duration) {
    let period = (expiry / 2).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(600));
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
