//! `onair`: the binary. Parses the command line, loads settings, starts logging and
//! runs the server (or a helper subcommand) until a signal.

mod bench;
mod push;
mod settings;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use onair_server::config::PublishAuth;
use onair_server::{Server, Settings};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "onair",
    version,
    about = "A live-streaming and live-interaction server"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
struct CommonArgs {
    /// TOML settings file.
    #[arg(long, env = "ONAIR_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// RTMP listen address [default: 0.0.0.0:1935].
    #[arg(long, env = "ONAIR_RTMP_LISTEN", global = true)]
    rtmp_listen: Option<SocketAddr>,
    /// HTTP listen address (media over HTTP, API, pages) [default: 0.0.0.0:8080].
    #[arg(long, env = "ONAIR_HTTP_LISTEN", global = true)]
    http_listen: Option<SocketAddr>,
    /// Directory for state: admin token, database, recordings [default: ./onair-data].
    #[arg(long, env = "ONAIR_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Log format [default: pretty on a terminal, json otherwise].
    #[arg(long, env = "ONAIR_LOG_FORMAT", value_enum, global = true)]
    log_format: Option<LogFormat>,
    /// Origins allowed to open room connections from a browser: comma-separated, or `*`
    /// [default: same origin only].
    #[arg(long, env = "ONAIR_ALLOWED_ORIGINS", global = true)]
    allowed_origins: Option<String>,
    /// Require signed playback URLs (`?expires=…&sig=…`, see `onair sign`) in every app
    /// without an override; `--signed-playback=false` turns it off [default: false].
    #[arg(
        long,
        env = "ONAIR_SIGNED_PLAYBACK",
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "true|false"
    )]
    signed_playback: Option<bool>,
    /// Who may publish: open (anyone), key (stream keys from the API), webhook
    /// (--publish-webhook decides) [default: open].
    #[arg(
        long,
        env = "ONAIR_PUBLISH_AUTH",
        global = true,
        value_name = "open|key|webhook"
    )]
    publish_auth: Option<PublishAuth>,
    /// URL that allows (2xx) or refuses each publish in webhook mode.
    #[arg(long, env = "ONAIR_PUBLISH_WEBHOOK", global = true, value_name = "URL")]
    publish_webhook: Option<String>,
    /// Any other setting, as section.key=value (repeatable); see docs/configuration.md.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
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
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The stream, `{app}/{name}`.
    #[arg(value_name = "APP/NAME")]
    stream: String,
    /// Seconds until the signature expires.
    #[arg(long, default_value_t = 3_600)]
    ttl: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Publish an FLV file to an RTMP server at real-time pace.
    Push(push::PushArgs),
    /// Load-test a server: viewers of one stream, or clients of one room (see bench/README.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the effective settings as TOML and exit (secrets redacted).
    Config,
    /// Print a chat token signed with this server's secret.
    Token(TokenArgs),
    /// Print a signed playback query string, `expires=…&sig=…`, for a stream (append it
    /// to any play URL: rtmp://…/{app}/{name}?…, /{app}/{name}.flv?…, /ws/…, /sse/…).
    Sign(SignArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = load_settings(&cli.common)?;
    let log_filter = init_logging(cli.common.log_format, settings.log_level.as_deref());
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(settings, &cli.common, log_filter)),
        Command::Push(args) => runtime.block_on(push::run(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&settings.redacted())?);
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", token(&settings, args)?);
            Ok(())
        }
        Command::Sign(args) => {
            println!("{}", sign(&settings, &args)?);
            Ok(())
        }
    }
}

fn load_settings(args: &CommonArgs) -> anyhow::Result<Settings> {
    let mut settings = settings::load(args.config.as_deref(), std::env::vars(), &args.set)?;
    if let Some(addr) = args.rtmp_listen {
        settings.rtmp.listen = addr;
    }
    if let Some(addr) = args.http_listen {
        settings.http.listen = addr;
    }
    if let Some(dir) = &args.data_dir {
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
    let secrets = onair_server::secrets::Secrets::load_or_create(
        &settings.data_dir,
        settings.auth.admin_token.as_deref(),
        settings.auth.token_secret.as_deref(),
    )
    .with_context(|| format!("reading secrets from {}", settings.data_dir.display()))?;
    let name = args.name.unwrap_or_else(|| args.user.clone());
    let keys = onair_server::auth::TokenKeys::new(&secrets.token_secret);
    Ok(keys.mint(&User::new(args.user, name, role), args.ttl))
}

/// The signed query string for `args.stream`, with the secret `serve` would use.
fn sign(settings: &Settings, args: &SignArgs) -> anyhow::Result<String> {
    use onair_server::signing::{unix_now, PlaybackSigner};
    let path = onair_media::StreamPath::parse(&args.stream)
        .with_context(|| format!("{:?} is not a stream path (app/name)", args.stream))?;
    let signer =
        PlaybackSigner::load(&settings.playback, &settings.data_dir).with_context(|| {
            format!(
                "reading the playback secret from {}",
                settings.data_dir.display()
            )
        })?;
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
    args: &CommonArgs,
    log_filter: Option<LogFilterSetter>,
) -> anyhow::Result<()> {
    tracing::info!(
        config = %settings::describe(args.config.as_ref()),
        version = env!("CARGO_PKG_VERSION"),
        "starting onair"
    );
    let data_dir = settings.data_dir.clone();
    // Before the listeners are up: a SIGHUP that comes early must not kill the process.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    let mut server = Server::bind(settings)
        .await
        .context("binding the listeners")?;
    if let Some(token) = server.take_generated_admin_token() {
        // Straight to the terminal, not into the logs: shown this once.
        eprintln!(
            "\nonair generated an admin token for the REST API (kept in {}, shown only now):\n\n    {token}\n",
            data_dir.join("admin-token").display()
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

/// On each SIGHUP: reads the settings again (file, environment, flags) and applies
/// what can change live; logs what was applied and what needs a restart.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    reloader: onair_server::Reloader,
    args: CommonArgs,
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
