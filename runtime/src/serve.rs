//! The servers every service runs beside its own work: gRPC (its API) and the
//! admin HTTP server, bound before the service reports ready, served on a
//! task set until shutdown, and drained within a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::{AdminServer, Readiness, Shutdown};

/// The tasks of a running service.
pub type Tasks = JoinSet<anyhow::Result<()>>;

/// The gRPC and admin listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    grpc: TcpListener,
    admin: AdminServer,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

impl Listeners {
    /// Binds both addresses (port 0 picks a free port; see the `*_addr` fields).
    pub async fn bind(grpc: SocketAddr, admin: SocketAddr) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(grpc)
            .await
            .with_context(|| format!("binding gRPC address {grpc}"))?;
        let admin = AdminServer::bind(admin)
            .await
            .with_context(|| format!("binding admin address {admin}"))?;
        Ok(Self {
            grpc_addr: grpc.local_addr()?,
            admin_addr: admin.local_addr()?,
            grpc,
            admin,
        })
    }

    /// Serves `routes` over gRPC and the admin endpoints on `tasks` until
    /// `shutdown` starts.
    pub fn serve(
        self,
        tasks: &mut Tasks,
        routes: tonic::service::Routes,
        registry: Registry,
        readiness: Readiness,
        shutdown: &Shutdown,
    ) {
        let admin = self
            .admin
            .serve(Arc::new(registry), readiness, shutdown.clone());
        tasks.spawn(async move { admin.await.context("admin server") });
        let grpc_shutdown = shutdown.clone();
        let listener = self.grpc;
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    grpc_shutdown.started(),
                )
                .await
                .context("gRPC server")
        });
    }
}

/// Waits for every task to end, at most `grace`; logs the ones that failed.
/// Returns false when the grace period ran out first.
pub async fn drain(tasks: &mut Tasks, grace: Duration) -> bool {
    let joined = tokio::time::timeout(grace, async {
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "a service task failed"),
                Err(e) => tracing::error!(error = %e, "a service task panicked"),
            }
        }
    })
    .await;
    joined.is_ok()
}

/// The one line a service prints on stdout once it is ready, for supervisors
/// and tests that bound port 0: `{"event":"ready","grpc":"…",…}`.
pub fn print_ready(addresses: &[(&str, SocketAddr)]) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), "ready".into());
    for (name, addr) in addresses {
        line.insert((*name).into(), addr.to_string().into());
    }
    println!("{}", serde_json::Value::Object(line));
}

/// The body of a service binary's `main`: telemetry, SIGTERM/SIGINT as the
/// shutdown signal, the service, and its exit status: 0 when it stopped
/// cleanly, 64 with one line for a configuration error (an error whose
/// message `config_error` returns), 1 for anything else.
pub async fn service_main<F, Fut>(
    telemetry: &crate::TelemetryArgs,
    run: F,
    config_error: impl Fn(&anyhow::Error) -> Option<String>,
) where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::telemetry::init(telemetry);
    let shutdown = Shutdown::on(crate::signal());
    if let Err(e) = run(shutdown).await {
        match config_error(&e) {
            Some(message) => crate::exit::config_error(message),
            None => {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        }
    }
}
