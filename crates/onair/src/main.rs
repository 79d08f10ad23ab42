//! `onair`: the binary. Parses the command line, loads settings, starts logging and
//! runs the server (or a helper subcommand) until a signal.

mod push;
mod settings;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use onair_server::config::PublishAuth;
use onair_server::{Server, Settings};
use tokio_util::sync::CancellationToken;

/// jemalloc rather than glibc's malloc: a flooded room allocates and frees hundreds of
/// thousands of small buffers a second across threads, where glibc spent a quarter of
/// the server's core in its free lists (ARCHITECTURE.md, "Why jemalloc").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "onair",
    version,
    about = "A live-streaming and live-interaction server",
    after_help = "Without a command, onair serves: the options above are `serve`'s, and may also \
                  come before `config`, `token` or `sign`."
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the settings come from: what every command that reads the server's settings
/// or secrets takes, so what `token` and `sign` print is what `serve` accepts.
#[derive(Debug, Clone, Default, Args)]
struct SettingsArgs {
    /// TOML settings file.
    #[arg(long, env = "ONAIR_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for state: admin token, secrets, database, recordings [default: ./onair-data].
    #[arg(long, env = "ONAIR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Any other setting, as section.key=value (repeatable); see docs/configuration.md.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl SettingsArgs {
    /// `self`, with what it leaves out taken from `outer` (given before the command).
    fn or(self, outer: &SettingsArgs) -> SettingsArgs {
        SettingsArgs {
            config: self.config.or_else(|| outer.config.clone()),
            data_dir: self.data_dir.or_else(|| outer.data_dir.clone()),
            set: outer.set.iter().cloned().chain(self.set).collect(),
        }
    }
}

/// The server's own flags (`serve`, `config`).
#[derive(Debug, Clone, Default, Args)]
struct ServerArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// RTMP listen address [default: 0.0.0.0:1935].
    #[arg(long, env = "ONAIR_RTMP_LISTEN")]
    rtmp_listen: Option<SocketAddr>,
    /// HTTP listen address (media over HTTP, API, pages) [default: 0.0.0.0:8080].
    #[arg(long, env = "ONAIR_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Log format [default: pretty on a terminal, json otherwise].
    #[arg(long, env = "ONAIR_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Origins whose pages may use this server from a browser: the REST API and
    /// HTTP-FLV and HLS playback (CORS), and room connections over SSE and WebSocket
    /// (Origin check). Comma-separated, or `*` [default: same origin only].
    #[arg(long, env = "ONAIR_ALLOWED_ORIGINS")]
    allowed_origins: Option<String>,
    /// Require signed playback URLs (`?expires=…&sig=…`, see `onair sign`) in every app
    /// without an override; `--signed-playback=false` turns it off [default: false].
    #[arg(
        long,
        env = "ONAIR_SIGNED_PLAYBACK",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "true|false"
    )]
    signed_playback: Option<bool>,
    /// Who may publish: open (anyone), key (stream keys from the API), webhook
    /// (--publish-webhook decides) [default: open].
    #[arg(long, env = "ONAIR_PUBLISH_AUTH", value_name = "open|key|webhook")]
    publish_auth: Option<PublishAuth>,
    /// URL that allows (2xx) or refuses each publish in webhook mode.
    #[arg(long, env = "ONAIR_PUBLISH_WEBHOOK", value_name = "URL")]
    publish_webhook: Option<String>,
}

impl ServerArgs {
    /// `self`, with what it leaves out taken from `outer` (given before the command).
    fn or(self, outer: &ServerArgs) -> ServerArgs {
        ServerArgs {
            settings: self.settings.or(&outer.settings),
            rtmp_listen: self.rtmp_listen.or(outer.rtmp_listen),
            http_listen: self.http_listen.or(outer.http_listen),
            log_format: self.log_format.or(outer.log_format),
            allowed_origins: self
                .allowed_origins
                .or_else(|| outer.allowed_origins.clone()),
            signed_playback: self.signed_playback.or(outer.signed_playback),
            publish_auth: self.publish_auth.or(outer.publish_auth),
            publish_webhook: self
                .publish_webhook
                .or_else(|| outer.publish_webhook.clone()),
        }
    }

    /// The server flags given before a command, with that command's settings sources.
    fn with_settings(&self, settings: SettingsArgs) -> ServerArgs {
        ServerArgs {
            settings: settings.or(&self.settings),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// Display name [default: the user id].
    #[arg(long)]
    name: Option<String>,
    /// viewer, moderator or streamer.
    #[arg(long, default_value = "viewer")]
    role: String,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    /// The token is signed with the secret of the server these settings describe.
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The stream, `{app}/{name}`.
    #[arg(value_name = "APP/NAME")]
    stream: String,
    /// Seconds until the signature expires.
    #[arg(long, default_value_t = 3_600)]
    ttl: u64,
    /// The signature uses the playback secret of the server these settings describe.
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServerArgs),
    /// Publish an FLV file to an RTMP server at real-time pace.
    Push(push::PushArgs),
    /// Load-test a server: viewers of one stream, or clients of one room (see bench/README.md).
    #[command(subcommand)]
    Bench(onair_bench::BenchCommand),
    /// Print the effective settings as TOML and exit (secrets redacted).
    Config(ServerArgs),
    /// Print a chat token signed with this server's secret.
    Token(TokenArgs),
    /// Print a signed playback query string, `expires=…&sig=…`, for a stream (append it
    /// to any play URL: rtmp://…/{app}/{name}?…, /{app}/{name}.flv?…, /ws/…, /sse/…).
    Sign(SignArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let outer = cli.server;
    let runtime = || tokio::runtime::Runtime::new().context("starting the async runtime");
    match cli.command.unwrap_or(Command::Serve(ServerArgs::default())) {
        Command::Serve(args) => {
            let args = args.or(&outer);
            let settings = load_settings(&args)?;
            let log_filter = init_logging(args.log_format, settings.log_level.as_deref());
            runtime()?.block_on(serve(settings, &args, log_filter))
        }
        Command::Push(args) => {
            init_logging(outer.log_format, None);
            runtime()?.block_on(push::run(args))
        }
        Command::Bench(args) => {
            init_logging(outer.log_format, None);
            runtime()?.block_on(onair_bench::run(args))
        }
        Command::Config(args) => {
            let settings = load_settings(&args.or(&outer))?;
            print!("{}", toml::to_string_pretty(&settings.redacted())?);
            Ok(())
        }
        Command::Token(args) => {
            let settings = load_settings(&outer.with_settings(args.settings.clone()))?;
            println!("{}", token(&settings, args)?);
            Ok(())
        }
        Command::Sign(args) => {
            let settings = load_settings(&outer.with_settings(args.settings.clone()))?;
            println!("{}", sign(&settings, &args)?);
            Ok(())
        }
    }
}

fn load_settings(args: &ServerArgs) -> anyhow::Result<Settings> {
    let sources = &args.settings;
    let mut settings = settings::load(sources.config.as_deref(), std::env::vars(), &sources.set)?;
    if let Some(addr) = args.rtmp_listen {
        settings.rtmp.listen = addr;
    }
    if let Some(addr) = args.http_listen {
        settings.http.listen = addr;
    }
    if let Some(dir) = &sources.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(origins) = &args.allowed_origins {
        settings.auth.allowed_origins = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(signed) = args.signed_playback {
        settings.playback.signed = signed;
    }
    if let Some(mode) = args.publish_auth {
        settings.auth.publish = mode;
    }
    if let Some(url) = &args.publish_webhook {
        settings.auth.publish_webhook = Some(url.clone());
    }
    if let Ok(token) = std::env::var("ONAIR_ADMIN_TOKEN") {
        if !token.is_empty() {
            settings.auth.admin_token = Some(token);
        }
    }
    settings.validate()?;
    Ok(settings)
}

fn token(settings: &Settings, args: TokenArgs) -> anyhow::Result<String> {
    use onair_server::rooms::{Role, User};
    let role = match args.role.as_str() {
        "viewer" => Role::Viewer,
        "moderator" => Role::Moderator,
        "streamer" => Role::Streamer,
        other => anyhow::bail!("unknown role {other:?}: use viewer, moderator or streamer"),
    };
    let data_dir = &settings.data_dir;
    let dir_existed = data_dir.exists();
    let (secret, created) =
        onair_server::secrets::token_secret(data_dir, settings.auth.token_secret.as_deref())
            .with_context(|| format!("reading the token secret from {}", data_dir.display()))?;
    if created {
        warn_new_secret(data_dir, dir_existed, "token secret", "token");
    }
    let name = args.name.unwrap_or_else(|| args.user.clone());
    let keys = onair_server::auth::TokenKeys::new(&secret);
    Ok(keys.mint(&User::new(args.user, name, role), args.ttl))
}

/// Says on stderr that a helper command made a new secret (and maybe the data dir)
/// rather than read the server's: what it prints is refused by a server that keeps its
/// state anywhere else.
fn warn_new_secret(data_dir: &Path, dir_existed: bool, secret: &str, command: &str) {
    let made = if dir_existed {
        format!("made a new {secret} in {}", data_dir.display())
    } else {
        format!(
            "{} did not exist: made it, with a new {secret}",
            data_dir.display()
        )
    };
    eprintln!(
        "warning: {made}.\n\
         A server started with another --data-dir (or another config) will refuse what this \
         prints; run `onair {command}` with the server's --data-dir and --config."
    );
}

/// The signed query string for `args.stream`, with the secret `serve` would use.
fn sign(settings: &Settings, args: &SignArgs) -> anyhow::Result<String> {
    use onair_server::signing::{unix_now, PlaybackSigner};
    let path = onair_media::StreamPath::parse(&args.stream)
        .with_context(|| format!("{:?} is not a stream path (app/name)", args.stream))?;
    let data_dir = &settings.data_dir;
    let dir_existed = data_dir.exists();
    let secret_file = data_dir.join(onair_server::signing::PLAYBACK_SECRET_FILE);
    let secret_existed = !settings.playback.secrets.is_empty() || secret_file.exists();
    let signer = PlaybackSigner::load(&settings.playback, data_dir)
        .with_context(|| format!("reading the playback secret from {}", data_dir.display()))?;
    if !secret_existed {
        warn_new_secret(data_dir, dir_existed, "playback secret", "sign");
    }
    if !signer.required_for(path.app()) {
        eprintln!(
            "note: signed playback is off for app {:?} in these settings; the server will not ask for this signature",
            path.app()
        );
    }
    let expires = unix_now()
        .checked_add(args.ttl)
        .context("--ttl is too large")?;
    Ok(signer.sign(&path, expires))
}

/// Replaces the log filter of the running process (SIGHUP with a new `log_level`).
type LogFilterSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Installs the logger; `RUST_LOG` wins over the `log_level` setting, which wins over
/// `info`. Returns how to change the filter later (`None` under `RUST_LOG`).
fn init_logging(format: Option<LogFormat>, level: Option<&str>) -> Option<LogFilterSetter> {
    use tracing_subscriber::EnvFilter;
    let from_env = EnvFilter::try_from_default_env().ok();
    let fixed = from_env.is_some();
    let filter = from_env
        .or_else(|| level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let setter: LogFilterSetter = match format {
        LogFormat::Json => {
            let builder = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |l| set_filter(&handle, l))
        }
        LogFormat::Pretty => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |l| set_filter(&handle, l))
        }
    };
    (!fixed).then_some(setter)
}

fn set_filter<S>(
    handle: &tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, S>,
    level: &str,
) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
    handle.reload(filter).map_err(|e| e.to_string())
}

async fn serve(
    settings: Settings,
    args: &ServerArgs,
    log_filter: Option<LogFilterSetter>,
) -> anyhow::Result<()> {
    tracing::info!(
        config = %settings::describe(args.settings.config.as_ref()),
        version = env!("CARGO_PKG_VERSION"),
        "starting onair"
    );
    let data_dir = settings.data_dir.clone();
    let https = settings.tls.http && settings.tls.cert_path.is_some();
    let keys_required = settings.auth.publish == PublishAuth::Key;
    // Before the listeners are up: a SIGHUP that comes early must not kill the process.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    let mut server = Server::bind(settings)
        .await
        .context("binding the listeners")?;
    if let Some(token) = server.take_generated_admin_token() {
        // Straight to the terminal, not into the logs: shown this once.
        let urls = Urls {
            http: server.http_addr()?,
            rtmp: server.rtmp_addr()?,
            https,
        };
        eprintln!(
            "{}",
            first_start(&token, &data_dir.join("admin-token"), &urls, keys_required)
        );
    }
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(
        hangups,
        server.reloader(),
        args.clone(),
        log_filter,
    ));
    server.run(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Where a person on this machine reaches the server.
struct Urls {
    http: SocketAddr,
    rtmp: SocketAddr,
    https: bool,
}

impl Urls {
    /// `addr` as a browser or encoder on this machine would write it: a wildcard
    /// listen address is reached as localhost.
    fn host(addr: SocketAddr, default_port: u16) -> String {
        let host = match addr.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        if addr.port() == default_port {
            host
        } else {
            format!("{host}:{}", addr.port())
        }
    }

    fn http(&self, path: &str) -> String {
        let (scheme, port) = if self.https {
            ("https", 443)
        } else {
            ("http", 80)
        };
        format!("{scheme}://{}{path}", Self::host(self.http, port))
    }

    fn rtmp(&self, path: &str) -> String {
        format!("rtmp://{}{path}", Self::host(self.rtmp, 1935))
    }
}

/// What the first start says, once: the admin token it generated and where to go.
fn first_start(token: &str, file: &Path, urls: &Urls, keys_required: bool) -> String {
    let (key, key_note) = if keys_required {
        (
            "?key=KEY",
            "\n    (publishing needs a stream key: make one on the admin page or with POST /api/v1/keys)",
        )
    } else {
        ("", "")
    };
    let line = |url: String, what: &str| format!("    {url:<44} {what}\n");
    format!(
        "\nonair generated an admin token for the REST API and the admin page \
         (kept in {}, shown only now):\n\n    {token}\n\n\
         Open:\n{}{}\
         Publish (OBS: server {}, stream key demo{key}):{key_note}\n    \
         ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine -c:v libx264 -g 60 \
         -c:a aac -f flv \"{}{key}\"\n\
         Watch:\n{}",
        file.display(),
        line(urls.http("/"), "live streams"),
        line(
            urls.http("/admin"),
            "the admin page (paste the token above)"
        ),
        urls.rtmp("/live"),
        urls.rtmp("/live/demo"),
        line(
            urls.http("/watch/live/demo"),
            "player and chat of live/demo"
        ),
    )
}

/// On each SIGHUP: reads the settings again (file, environment, flags) and applies
/// what can change live; logs what was applied and what needs a restart.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    reloader: onair_server::Reloader,
    args: ServerArgs,
    log_filter: Option<LogFilterSetter>,
) {
    while hangups.recv().await.is_some() {
        let settings = match load_settings(&args) {
            Ok(settings) => settings,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "reload refused: the settings do not load; nothing changed");
                continue;
            }
        };
        match reloader.reload(&settings) {
            Ok(report) => {
                if report.applied.iter().any(|k| k == "log_level") {
                    let level = settings.log_level.as_deref().unwrap_or("info");
                    match &log_filter {
                        Some(set) => {
                            if let Err(error) = set(level) {
                                tracing::error!(%error, "log_level not applied");
                            }
                        }
                        None => tracing::warn!("RUST_LOG is set and wins over log_level"),
                    }
                }
                tracing::info!(
                    applied = ?report.applied,
                    needs_restart = ?report.needs_restart,
                    "settings reloaded"
                );
            }
            Err(error) => tracing::error!(%error, "reload refused; nothing changed"),
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
