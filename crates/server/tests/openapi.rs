//! schemathesis (an outside property-based API tester) against `/api/v1/openapi.json`:
//! no request it generates may get a 5xx or a response that breaks the schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{run_tool, spawn_publisher, start_server, tool, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    if !tool("schemathesis") {
        return;
    }
    let server = start_server(|s| s.limits.requests_per_second_per_ip = 0.0).await;
    // A live stream, so the stream endpoints' examples find something.
    let publisher = spawn_publisher(&server, "live/demo").await;
    server.wait_live("live/demo", Duration::from_secs(10)).await;
    let schema = server.http_url("/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let (ok, stdout, stderr) = run_tool(
        "schemathesis",
        &[
            "run",
            &schema,
            "--header",
            &auth,
            "--checks",
            "all",
            "--max-time",
            "60",
            "--no-color",
        ],
        Duration::from_secs(240),
    )
    .await;
    publisher.abort();
    server.stop().await;
    assert!(ok, "schemathesis found problems:\n{stdout}\n{stderr}");
}
