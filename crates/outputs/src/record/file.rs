//! One recording on disk: created under a free name, written through a buffer, handed
//! to the operating system when the recorder says so, synced when closed.
//!
//! Files are written in place, never renamed: FLV (and fMP4) are playable while they
//! grow, so what a crash leaves is a recording up to the last flush.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use onair_media::StreamPath;
use tokio::io::{AsyncWriteExt, BufWriter};

use super::name::RecordingName;
use super::settings::RecordFormat;

/// Bytes gathered before they are written even without a flush.
const BUFFER_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct RecordingFile {
    name: RecordingName,
    path: PathBuf,
    out: BufWriter<tokio::fs::File>,
    bytes: u64,
    last_flush: Instant,
}

impl RecordingFile {
    /// Creates a new file for `stream` starting `now` under `dir`, making its
    /// directories; a name already taken gets the next `-{n}` suffix.
    pub(crate) async fn create(
        dir: &Path,
        stream: &StreamPath,
        format: RecordFormat,
        now: SystemTime,
    ) -> io::Result<Self> {
        let mut name = RecordingName::new(stream.clone(), now, 0, format);
        tokio::fs::create_dir_all(dir.join(stream.app()).join(stream.name())).await?;
        loop {
            let path = dir.join(name.relative_path());
            let opened = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await;
            match opened {
                Ok(file) => {
                    return Ok(Self {
                        name,
                        path,
                        out: BufWriter::with_capacity(BUFFER_BYTES, file),
                        bytes: 0,
                        last_flush: Instant::now(),
                    })
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    name = name.next_suffix().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "every file name for this second is taken",
                        )
                    })?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub(crate) fn name(&self) -> &RecordingName {
        &self.name
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (buffered ones included).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data).await?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// Hands what is buffered to the operating system.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        self.out.flush().await
    }

    pub(crate) fn since_flush(&self) -> std::time::Duration {
        self.last_flush.elapsed()
    }

    /// Flushes and syncs the file to the disk.
    pub(crate) async fn close(mut self) -> io::Result<()> {
        self.out.flush().await?;
        self.out.get_mut().sync_data().await
    }
}
