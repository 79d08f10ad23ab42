//! `onair push FILE.flv rtmp://host/app/name`: publishes a file at real-time pace,
//! the way an encoder would.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use onair_server::client::{read_flv_tags, send_paced, RtmpClient, RtmpUrl, Tag};

/// Largest tag accepted from the file.
const MAX_TAG_SIZE: usize = 16 << 20;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The FLV file to publish.
    file: PathBuf,
    /// Where to publish: rtmp://HOST[:PORT]/APP/NAME[?query].
    url: String,
    /// Start over at the end of the file, forever, with timestamps that keep rising.
    #[arg(long = "loop")]
    repeat: bool,
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let tags = read_tags(&args.file)?;
    let url = RtmpUrl::parse(&args.url)?;
    let mut client = RtmpClient::connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    client
        .publish(&url.name)
        .await
        .with_context(|| format!("publishing to {url}"))?;
    tracing::info!(%url, file = %args.file.display(), "publishing");
    send_paced(&mut client, &tags, args.repeat)
        .await
        .with_context(|| format!("sending to {url}"))?;
    client.close().await?;
    tracing::info!(%url, "done");
    Ok(())
}

fn read_tags(file: &Path) -> anyhow::Result<Vec<Tag>> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let tags = read_flv_tags(&data, MAX_TAG_SIZE)
        .with_context(|| format!("parsing {}", file.display()))?;
    if tags.is_empty() {
        bail!("{} holds no FLV tags", file.display());
    }
    Ok(tags)
}
