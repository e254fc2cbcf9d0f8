#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use r1_runtime::{AdminServer, Readiness, Shutdown};
use r1_testkit::http_request;

#[tokio::test(flavor = "multi_thread")]
async fn admin_server_reports_liveness_readiness_and_metrics_until_shutdown() {
    let mut registry = Registry::default();
    let checks = Counter::<u64>::default();
    registry.register("r1_test_checks", "Checks done", checks.clone());
    checks.inc_by(3);

    let server = AdminServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let readiness = Readiness::default();
    let shutdown = Shutdown::default();
    let serving =
        tokio::spawn(server.serve(Arc::new(registry), readiness.clone(), shutdown.clone()));

    let get = move |path: &'static str| {
        tokio::task::spawn_blocking(move || http_request(addr, "GET", path, None).unwrap())
    };
    assert_eq!(get("/live").await.unwrap().0, 200);
    assert_eq!(get("/ready").await.unwrap().0, 503);
    readiness.set_ready(true);
    assert_eq!(get("/ready").await.unwrap().0, 200);
    let (status, body) = get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("r1_test_checks_total 3"), "{body}");

    shutdown.begin();
    serving.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn shutdown_on_a_trigger_starts_when_the_trigger_resolves() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Shutdown::on(async move {
        let _ = rx.await;
    });
    assert!(!shutdown.is_started());
    tx.send(()).unwrap();
    shutdown.started().await;
    assert!(shutdown.is_started());
}
