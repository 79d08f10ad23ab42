//! An edge over real subsystems with default settings, for the edge's unit tests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use onair_control::live::{Live, LiveState};
use onair_control::stream_info::StreamInfos;
use onair_control::{AuthSettings, PlaybackSettings, StoreSettings};
use onair_outputs::hls::{Hls, HlsSettings};
use onair_outputs::record::{RecordSettings, Recordings};
use onair_relay::hub::Hub;
use onair_relay::HubSettings;
use onair_rooms::RoomSettings;
use onair_rooms_rt::{MemoryBackend, RoomHub};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::Store;
use crate::webhooks::{WebhookSettings, Webhooks};
use crate::{
    ConfigSummary, ConnectionLimits, Edge, EdgeSettings, HttpSettings, Lifecycle, LimitsSummary,
    MetricsSettings, PagesSettings, PublishAuthMode, RtmpSettings, Subsystems, TlsSettings,
};

pub(crate) async fn edge(data_dir: &Path) -> Edge {
    let hub = Hub::new(HubSettings::default(), 4096);
    let store = Store::open(data_dir, StoreSettings::default())
        .await
        .unwrap();
    let rooms = RoomHub::new(
        RoomSettings::default(),
        Arc::new(MemoryBackend::new(64)),
        Arc::clone(&hub) as Arc<dyn onair_rooms_rt::StreamLiveness>,
        Arc::new(store.clone()),
        Default::default(),
        100,
    );
    let webhooks = Webhooks::new(WebhookSettings::default(), vec![]).unwrap();
    let auth = AuthSettings::default();
    let (live, _) = LiveState::load(data_dir, &auth, &PlaybackSettings::default(), None).unwrap();
    let subsystems = Subsystems {
        hls: Hls::new(HlsSettings::default(), Arc::clone(&hub)),
        recordings: Recordings::new(
            RecordSettings::default(),
            data_dir,
            Arc::clone(&hub),
            webhooks.recording_observer(),
        ),
        stream_infos: StreamInfos::new(store.clone(), Arc::clone(&hub)),
        hub,
        rooms,
        live: Arc::new(Live::new(live)),
        store,
        webhooks,
        cluster: None,
    };
    let settings = EdgeSettings {
        rtmp: RtmpSettings::default(),
        http: HttpSettings::default(),
        tls: TlsSettings::default(),
        metrics: MetricsSettings::default(),
        pages: PagesSettings::default(),
        limits: ConnectionLimits::default(),
        auth,
        shutdown_drain: Duration::from_secs(1),
    };
    let lifecycle = Lifecycle {
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        started: Instant::now(),
    };
    Edge::new(subsystems, settings, summary(), lifecycle)
}

fn summary() -> ConfigSummary {
    ConfigSummary {
        rtmp_listen: "127.0.0.1:1935".into(),
        http_listen: "127.0.0.1:8080".into(),
        rtmps_listen: None,
        http_tls: false,
        publish_auth: PublishAuthMode::Open,
        signed_playback: false,
        signed_playback_app_overrides: 0,
        metrics_enabled: true,
        metrics_listen: None,
        rooms_backend: "memory".into(),
        webhooks_enabled: false,
        limits: LimitsSummary {
            max_connections: 1,
            max_connections_per_ip: 1,
            requests_per_second_per_ip: 0.0,
            max_streams: 1,
            max_rooms: 1,
            max_members_per_room: 1,
            max_body_bytes: 1024,
        },
    }
}
