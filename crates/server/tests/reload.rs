//! Reloading settings into a running server (what SIGHUP does): the admin token, CORS
//! and connection limits change at once; other changed keys are reported as needing a
//! restart; invalid settings change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{start_server, ADMIN_TOKEN};

async fn status_with_token(server: &common::TestServer, token: &str) -> u16 {
    reqwest::Client::new()
        .get(server.http_url("/api/v1/streams"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn reload_applies_secrets_cors_and_limits_and_names_what_needs_a_restart() {
    let server = start_server(|_| {}).await;
    assert_eq!(status_with_token(&server, ADMIN_TOKEN).await, 200);

    let mut next = server.settings.clone();
    next.auth.admin_token = Some("rotated-admin-token".into());
    next.auth.allowed_origins = vec!["https://app.example".into()];
    next.limits.max_connections_per_ip = 3;
    next.rtmp.listen = "127.0.0.1:1".parse().unwrap();
    let report = server.reloader.reload(&next).unwrap();
    assert_eq!(
        report.applied,
        [
            "auth.admin_token",
            "auth.allowed_origins",
            "limits.max_connections_per_ip"
        ]
    );
    assert_eq!(report.needs_restart, ["rtmp.listen"]);

    assert_eq!(status_with_token(&server, ADMIN_TOKEN).await, 403);
    assert_eq!(status_with_token(&server, "rotated-admin-token").await, 200);
    let granted = reqwest::Client::new()
        .get(server.http_url("/healthz"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        granted.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    // Three connections from this address are now the most: of eight opened, at least
    // five are closed by the server at once, whatever is still open from before.
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(tokio::net::TcpStream::connect(server.http).await.unwrap());
    }
    let mut closed = 0;
    for conn in &mut conns {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            tokio::io::AsyncReadExt::read(conn, &mut buf),
        )
        .await;
        if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert!(closed >= 5, "only {closed} of 8 connections refused");
    drop(conns);

    // Invalid settings are refused whole.
    let mut bad = next.clone();
    bad.auth.admin_token = Some("never-applied".into());
    bad.limits.max_connections = 0;
    assert!(server.reloader.reload(&bad).is_err());
    assert_eq!(status_with_token(&server, "rotated-admin-token").await, 200);
    server.stop().await;
}
