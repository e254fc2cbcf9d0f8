#![allow(clippy::unwrap_used)]

use std::time::Duration;

use prometheus_client::registry::Registry;
use r1_runtime::serve::{Listeners, Tasks, drain};
use r1_runtime::{Readiness, Shutdown};
use r1_testkit::http_request;

#[tokio::test(flavor = "multi_thread")]
async fn listeners_serve_grpc_and_admin_until_shutdown_and_drain() {
    let any_port = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(any_port, any_port).await.unwrap();
    let (grpc, admin) = (listeners.grpc_addr, listeners.admin_addr);
    assert_ne!(grpc.port(), 0);
    assert_ne!(admin.port(), 0);
    let shutdown = Shutdown::default();
    let mut tasks = Tasks::new();
    listeners.serve(
        &mut tasks,
        tonic::service::Routes::default(),
        Registry::default(),
        Readiness::default(),
        &shutdown,
    );
    let live = tokio::task::spawn_blocking(move || http_request(admin, "GET", "/live", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.0, 200);
    assert!(std::net::TcpStream::connect(grpc).is_ok());

    shutdown.begin();
    assert!(drain(&mut tasks, Duration::from_secs(30)).await);
    assert!(tasks.is_empty());
    assert!(std::net::TcpStream::connect(admin).is_err());
    assert!(std::net::TcpStream::connect(grpc).is_err());
}

#[tokio::test]
async fn drain_reports_tasks_that_outlive_the_grace_period() {
    let mut tasks = Tasks::new();
    tasks.spawn(async { anyhow::bail!("this task fails") });
    tasks.spawn(std::future::pending());
    assert!(!drain(&mut tasks, Duration::from_millis(50)).await);
    assert_eq!(
        tasks.len(),
        1,
        "the failed task was joined, the pending one was not"
    );
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let error = Listeners::bind(addr, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains(&format!("binding gRPC address {addr}")),
        "{error:#}"
    );
}
