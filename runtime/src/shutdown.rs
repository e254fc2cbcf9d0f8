//! Graceful shutdown: the trigger is a future handed to a service's `run`,
//! so tests can pass any future and binaries pass [`signal`].

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// The shutdown state every task of a service watches.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown that starts when `trigger` resolves.
    pub fn on(trigger: impl Future<Output = ()> + Send + 'static) -> Self {
        let shutdown = Self::default();
        let token = shutdown.token.clone();
        tokio::spawn(async move {
            trigger.await;
            token.cancel();
        });
        shutdown
    }

    pub fn begin(&self) {
        self.token.cancel();
    }

    pub fn is_started(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has started.
    pub async fn started(&self) {
        self.token.cancelled().await;
    }
}
