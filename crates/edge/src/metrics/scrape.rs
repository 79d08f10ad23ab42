//! What a scrape reads: the server-wide counters, and state that exists anyway (live
//! streams, rooms, webhook counts, the runtime, the process), encoded as OpenMetrics.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{LagReason, Proto, PublishRefusal, RefuseReason};
use super::{read, PerProto};
use crate::Edge;
use onair_outputs::record::RecordFailure;

/// The scrape body. A registry is built per scrape: it holds nothing but views of the
/// live state, so nothing points back at the server.
pub(crate) fn render(edge: &Edge) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_with_unit(
        "onair_http_request_duration",
        "Time from an HTTP request's arrival to its response head, by method, matched route and status",
        Unit::Seconds,
        edge.metrics.http.family(),
    );
    registry.register_collector(Box::new(Scrape(edge.clone())));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Scrape(Edge);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let e = &mut encoder;
        connections(e, &self.0)?;
        media(e, &self.0)?;
        rooms(e, &self.0)?;
        webhooks(e, &self.0)?;
        cluster(e, &self.0)?;
        recording(e, &self.0)?;
        runtime(e, &self.0)
    }
}

fn connections(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let m = &edge.metrics;
    counter_by(
        e,
        "onair_connections_accepted",
        "TCP connections accepted, by listener protocol",
        &per_proto(&m.connections_accepted, &Proto::CONNECTIONS),
    )?;
    let mut refused = Vec::new();
    for (row, reason) in RefuseReason::ALL.iter().enumerate() {
        for proto in Proto::CONNECTIONS {
            let count = read(&m.connections_refused[row][proto.index()]);
            refused.push(([proto.as_str(), reason.as_str()], count));
        }
    }
    family(
        e,
        "onair_connections_refused",
        "TCP connections refused at accept, by listener protocol and the limit that refused them",
        None,
        MetricType::Counter,
        ["protocol", "reason"],
        refused,
    )?;
    gauge_by(
        e,
        "onair_connections_open",
        "TCP connections open now, by listener protocol",
        &per_proto(&m.connections_open, &Proto::CONNECTIONS),
    )?;
    family(
        e,
        "onair_http_requests_refused",
        "HTTP requests answered 429 by the per-address request rate limit",
        None,
        MetricType::Counter,
        ["reason"],
        [(["rate_limited"], read(&m.requests_rate_limited))],
    )
}

fn media(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let m = &edge.metrics;
    let hub = edge.hub.totals();
    gauge(
        e,
        "onair_streams",
        "Live streams",
        None,
        edge.hub.stream_count() as u64,
    )?;
    gauge(
        e,
        "onair_hls_playlists",
        "HLS playlists held in memory: live streams and those kept for hls.linger_ms after their publisher left",
        None,
        edge.hls.playlist_count() as u64,
    )?;
    gauge(
        e,
        "onair_hls_memory",
        "HLS segments and parts held in memory over every stream",
        Some(&Unit::Bytes),
        edge.hls.bytes() as u64,
    )?;
    gauge_by(
        e,
        "onair_publishers",
        "Publishers sending now, by protocol",
        &per_proto(&m.publishers, &Proto::PUBLISHERS),
    )?;
    counter_by(
        e,
        "onair_publishes",
        "Publishes started, by protocol",
        &per_proto(&m.publishes, &Proto::PUBLISHERS),
    )?;
    let refused: Vec<_> = PublishRefusal::ALL
        .iter()
        .zip(&m.publishes_refused)
        .map(|(reason, count)| ([reason.as_str()], read(count)))
        .collect();
    family(
        e,
        "onair_publishes_refused",
        "Publishes refused, by reason",
        None,
        MetricType::Counter,
        ["reason"],
        refused,
    )?;
    gauge_by(
        e,
        "onair_viewers",
        "Playbacks now, by protocol (a person on the watch page is one playback)",
        &with_hls(per_proto(&m.viewers, &Proto::VIEWERS), edge.hls.sessions()),
    )?;
    let audience: u64 = edge
        .hub
        .streams()
        .iter()
        .map(|s| s.media_viewers().max(edge.rooms.audience_members(s.path())))
        .sum();
    gauge(
        e,
        "onair_audience",
        "People watching live streams, each counted once per stream (the REST views' viewers)",
        None,
        audience,
    )?;
    counter_by(
        e,
        "onair_plays",
        "Plays started, by protocol",
        &with_hls(per_proto(&m.plays, &Proto::VIEWERS), edge.hls.plays()),
    )?;
    counter(
        e,
        "onair_media_received",
        "Media payload bytes received from publishers",
        Some(&Unit::Bytes),
        hub.bytes_in,
    )?;
    counter(
        e,
        "onair_media_received_frames",
        "Media frames received from publishers",
        None,
        hub.frames_in,
    )?;
    counter(
        e,
        "onair_media_sent",
        "Media bytes written to viewers (RTMP chunks, FLV tags and their framing)",
        Some(&Unit::Bytes),
        hub.bytes_out,
    )?;
    counter(
        e,
        "onair_viewer_frames_dropped",
        "Frames viewers skipped because they fell behind",
        None,
        hub.frames_dropped,
    )?;
    counter(
        e,
        "onair_viewer_keyframe_skips",
        "Times a viewer that fell behind skipped ahead to a keyframe",
        None,
        hub.viewer_skips,
    )?;
    family(
        e,
        "onair_viewers_disconnected",
        "Viewers disconnected for not keeping up: too many keyframe skips, or a socket that accepted nothing",
        None,
        MetricType::Counter,
        ["reason"],
        [
            ([LagReason::TooSlow.as_str()], hub.viewers_dropped_slow),
            (
                [LagReason::WriteTimeout.as_str()],
                read(&m.viewers_write_timeout),
            ),
        ],
    )
}

fn rooms(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let m = &edge.metrics;
    let counters = edge.rooms.counters();
    gauge(
        e,
        "onair_rooms",
        "Rooms that exist now",
        None,
        edge.rooms.len() as u64,
    )?;
    gauge_by(
        e,
        "onair_room_members",
        "Room connections open now, by protocol",
        &per_proto(&m.members, &Proto::MEMBERS),
    )?;
    counter_by(
        e,
        "onair_room_joins",
        "Room connections that joined, by protocol",
        &per_proto(&m.member_joins, &Proto::MEMBERS),
    )?;
    family(
        e,
        "onair_room_messages_accepted",
        "Client messages a room accepted, by type",
        None,
        MetricType::Counter,
        ["type"],
        counters.accepted().map(|(kind, n)| ([kind], n)),
    )?;
    family(
        e,
        "onair_room_messages_shed",
        "Client messages a room accepted over its broadcast budget and sent to their sender only, by type",
        None,
        MetricType::Counter,
        ["type"],
        counters.shed().map(|(kind, n)| ([kind], n)),
    )?;
    family(
        e,
        "onair_room_messages_aggregated",
        "Client messages counted into a like, aggregate or gifts event instead of sent as themselves, by type",
        None,
        MetricType::Counter,
        ["type"],
        counters.aggregated().map(|(kind, n)| ([kind], n)),
    )?;
    family(
        e,
        "onair_room_messages_refused",
        "Client messages refused, by error code (rate_limited and slow_mode are sends over a rate limit)",
        None,
        MetricType::Counter,
        ["reason"],
        counters.refused().map(|(code, n)| ([code], n)),
    )?;
    family(
        e,
        "onair_room_events_broadcast",
        "Events rooms broadcast to their members, by type",
        None,
        MetricType::Counter,
        ["type"],
        counters.broadcast().map(|(kind, n)| ([kind], n)),
    )?;
    counter_by(
        e,
        "onair_room_events_delivered",
        "Events written to room connections, by protocol",
        &per_proto(&m.room_deliveries, &Proto::MEMBERS),
    )?;
    counter(
        e,
        "onair_room_chat_skipped",
        "Chat messages a connection's sampler left out to keep its rate readable",
        None,
        read(&m.room_chat_skipped),
    )?;
    counter(
        e,
        "onair_room_events_lost",
        "Kept room events connections skipped because the room moved on faster than they could be sent (gap events)",
        None,
        read(&m.room_events_lost),
    )?;
    family(
        e,
        "onair_room_members_disconnected",
        "Room connections closed because their client stopped reading (4008)",
        None,
        MetricType::Counter,
        ["reason"],
        [([LagReason::WriteTimeout.as_str()], read(&m.members_stalled))],
    )
}

fn webhooks(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let counts = edge.webhooks.counts();
    counter(
        e,
        "onair_webhook_deliveries",
        "Webhook notifications answered with a 2xx",
        None,
        counts.delivered,
    )?;
    counter(
        e,
        "onair_webhook_failures",
        "Webhook notifications given up after their last attempt",
        None,
        counts.failed,
    )?;
    counter(
        e,
        "onair_webhook_dropped",
        "Webhook notifications never sent: the queue was full or the server was stopping",
        None,
        counts.dropped,
    )?;
    counter(
        e,
        "onair_webhook_retries",
        "Webhook delivery attempts after the first",
        None,
        counts.retries,
    )
}

/// Only in a cluster (`cluster.redis_url`).
fn cluster(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let Some(cluster) = &edge.cluster else {
        return Ok(());
    };
    let up = matches!(cluster.health(), onair_cluster::RedisHealth::Up { .. });
    gauge(
        e,
        "onair_cluster_redis_up",
        "1 while Redis answered this node's latest heartbeat, else 0",
        None,
        u64::from(up),
    )?;
    counter(
        e,
        "onair_cluster_redis_round_trips",
        "Round trips to Redis answered",
        None,
        cluster.round_trips(),
    )?;
    counter(
        e,
        "onair_cluster_redis_failures",
        "Connection attempts and round trips to Redis that failed or timed out",
        None,
        cluster.failures(),
    )?;
    counter(
        e,
        "onair_cluster_stream_conflicts",
        "Renewals that found a path published here held by another node",
        None,
        cluster.stream_conflicts(),
    )
}

fn recording(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    let stats = edge.recordings.stats();
    gauge(
        e,
        "onair_recordings_active",
        "Recording files being written now",
        None,
        edge.recordings.writing_count() as u64,
    )?;
    counter(
        e,
        "onair_record_files",
        "Recording files finished",
        None,
        stats.files(),
    )?;
    counter(
        e,
        "onair_record",
        "Bytes written to recording files",
        Some(&Unit::Bytes),
        stats.bytes(),
    )?;
    let errors = RecordFailure::ALL
        .iter()
        .map(|failure| ([failure.as_str()], stats.errors(*failure)));
    family(
        e,
        "onair_record_errors",
        "Recording failures: a file not created, a write failed, frames skipped",
        None,
        MetricType::Counter,
        ["reason"],
        errors,
    )
}

fn runtime(e: &mut DescriptorEncoder, edge: &Edge) -> fmt::Result {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let tasks = handle.metrics().num_alive_tasks() as u64;
        gauge(
            e,
            "onair_tokio_tasks_alive",
            "Tokio tasks alive",
            None,
            tasks,
        )?;
    }
    gauge(
        e,
        "onair_uptime",
        "Time since the server started",
        Some(&Unit::Seconds),
        edge.lifecycle.started.elapsed().as_secs(),
    )?;
    if let Some(rss) = super::process::resident_memory_bytes() {
        gauge(
            e,
            "onair_process_resident_memory",
            "Resident memory of the process",
            Some(&Unit::Bytes),
            rss,
        )?;
    }
    if let Some(fds) = super::process::open_fds() {
        gauge(
            e,
            "onair_process_open_fds",
            "Open file descriptors",
            None,
            fds,
        )?;
    }
    if let Some(max) = super::process::max_fds() {
        gauge(
            e,
            "onair_process_max_fds",
            "Limit on open file descriptors",
            None,
            max,
        )?;
    }
    Ok(())
}

/// `values` with the HLS figure, which the HLS output keeps itself.
fn with_hls(mut values: Vec<(&'static str, u64)>, hls: u64) -> Vec<(&'static str, u64)> {
    for (proto, value) in &mut values {
        if *proto == Proto::Hls.as_str() {
            *value = hls;
        }
    }
    values
}

fn per_proto(values: &PerProto, protos: &[Proto]) -> Vec<(&'static str, u64)> {
    protos
        .iter()
        .map(|p| (p.as_str(), read(&values[p.index()])))
        .collect()
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(e.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(e.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn counter_by(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(&'static str, u64)],
) -> fmt::Result {
    let rows = series.iter().map(|(proto, n)| ([*proto], *n));
    family(e, name, help, None, MetricType::Counter, ["protocol"], rows)
}

fn gauge_by(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(&'static str, u64)],
) -> fmt::Result {
    let rows = series.iter().map(|(proto, n)| ([*proto], *n));
    family(e, name, help, None, MetricType::Gauge, ["protocol"], rows)
}

/// One metric with a series per row; each row gives its label values in the order of
/// `labels`.
fn family<const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    labels: [&'static str; N],
    rows: impl IntoIterator<Item = ([&'static str; N], u64)>,
) -> fmt::Result {
    let mut metric = e.encode_descriptor(name, help, unit, kind)?;
    for (values, count) in rows {
        let mut pairs = [("", ""); N];
        for ((pair, label), value) in pairs.iter_mut().zip(labels).zip(values) {
            *pair = (label, value);
        }
        let series = metric.encode_family(&pairs)?;
        match kind {
            MetricType::Gauge => ConstGauge::new(count).encode(series)?,
            _ => ConstCounter::new(count).encode(series)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::text_check;

    /// Every metric of a real server's scrape follows the rules, and the must-haves
    /// are there.
    #[tokio::test]
    async fn a_scrape_parses_and_every_name_follows_the_rules() {
        let data_dir = tempfile::tempdir().unwrap();
        let edge = &crate::testing::edge(data_dir.path()).await;
        // One request in the histogram, so its series show.
        edge.metrics
            .http
            .family()
            .get_or_create(&super::super::http::RequestLabels::for_test())
            .observe(0.01);
        let body = super::render(edge).unwrap();
        let families = text_check::check(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        for name in [
            "onair_connections_accepted",
            "onair_connections_refused",
            "onair_connections_open",
            "onair_publishers",
            "onair_viewers",
            "onair_audience",
            "onair_media_received_bytes",
            "onair_media_sent_bytes",
            "onair_viewer_frames_dropped",
            "onair_viewer_keyframe_skips",
            "onair_viewers_disconnected",
            "onair_rooms",
            "onair_room_members",
            "onair_room_messages_accepted",
            "onair_room_messages_shed",
            "onair_room_messages_aggregated",
            "onair_room_messages_refused",
            "onair_room_events_broadcast",
            "onair_room_events_delivered",
            "onair_room_chat_skipped",
            "onair_webhook_deliveries",
            "onair_webhook_failures",
            "onair_recordings_active",
            "onair_record_bytes",
            "onair_record_errors",
            "onair_record_files",
            "onair_http_requests_refused",
            "onair_http_request_duration_seconds",
            "onair_tokio_tasks_alive",
        ] {
            assert!(families.contains_key(name), "{name} missing from\n{body}");
        }
        #[cfg(target_os = "linux")]
        for name in [
            "onair_process_resident_memory_bytes",
            "onair_process_open_fds",
        ] {
            assert!(families.contains_key(name), "{name} missing from\n{body}");
        }
        let histogram = &families["onair_http_request_duration_seconds"];
        assert_eq!(histogram.kind, "histogram");
        assert!(histogram
            .samples
            .iter()
            .any(|(name, labels, _)| name.ends_with("_count")
                && labels.get("route").map(String::as_str) == Some("/healthz")));
    }
}
