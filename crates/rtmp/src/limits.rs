/// Caps on everything an RTMP peer can make this crate buffer or allocate.
///
/// Crossing one is a typed [`Error`](crate::Error) that closes the one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest chunk size a peer may set with Set Chunk Size (default 1 MiB).
    /// A Set Chunk Size of 0, above this, or with the top bit set is
    /// [`Error::BadChunkSize`](crate::Error::BadChunkSize).
    pub max_incoming_chunk_size: u32,
    /// Largest message a chunk header may declare (default 8 MiB); checked before allocating.
    /// All partially received messages together may hold at most twice this.
    pub max_message_size: u32,
    /// Distinct chunk stream ids per connection (default 64).
    pub max_chunk_streams: usize,
    /// AMF0 nesting depth allowed in commands (default 16).
    pub amf_max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_incoming_chunk_size: 1 << 20,
            max_message_size: 8 << 20,
            max_chunk_streams: 64,
            amf_max_depth: 16,
        }
    }
}

impl Limits {
    /// Cap on the bytes held by all partially assembled messages together.
    pub(crate) fn max_buffered_partial(&self) -> usize {
        (self.max_message_size as usize).saturating_mul(2)
    }
}
