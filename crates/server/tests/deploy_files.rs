//! The operator files in `deploy/` (Grafana dashboard, Prometheus alerts) and the metric
//! tables of docs/operations.md name only metrics a real server exports, and the docs
//! list every one it exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The crates' names, which docs use as log targets (`RUST_LOG=onair_server=debug`).
const CRATES: &[&str] = &[
    "onair_server",
    "onair_rooms",
    "onair_rtmp",
    "onair_flv",
    "onair_amf0",
    "onair_media",
];

/// Every `onair_…` name in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("onair_") {
        let start = i + at;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |n| start + n);
        // `onair_` alone is the prefix spoken of, not a metric.
        if !preceded && end > start + "onair_".len() {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// Sample names a scrape can carry, from its `# TYPE` lines.
fn exported(scrape: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let names: Vec<String> = match kind {
            "counter" => vec![format!("{name}_total")],
            "histogram" => ["_bucket", "_count", "_sum"]
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect(),
            _ => vec![name.to_owned()],
        };
        families.insert(names[0].trim_end_matches("_bucket").to_owned());
        samples.extend(names);
    }
    (families, samples)
}

#[tokio::test]
async fn dashboards_alerts_and_docs_match_what_the_server_exports() {
    // In a cluster, so its metrics are exported too; no Redis needs to answer.
    let server = common::start_server(|s| {
        s.cluster.redis_url = Some("redis://127.0.0.1:1".to_owned());
    })
    .await;
    let scrape = reqwest::get(server.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.stop().await;
    let (families, samples) = exported(&scrape);
    assert!(families.len() > 20, "{scrape}");

    let dashboard = repo_file("deploy/grafana/onair-dashboard.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    for path in [
        "deploy/grafana/onair-dashboard.json",
        "deploy/prometheus/alerts.yml",
        "docs/operations.md",
    ] {
        let unknown: Vec<_> = names_in(&repo_file(path))
            .into_iter()
            .filter(|name| {
                !samples.contains(name)
                    && !families.contains(name)
                    && !CRATES.contains(&name.as_str())
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "{path} names metrics the server does not export: {unknown:?}"
        );
    }
    let documented = names_in(&repo_file("docs/operations.md"));
    let undocumented: Vec<_> = families
        .iter()
        .filter(|family| !documented.contains(*family))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/operations.md lacks {undocumented:?}"
    );
}
