//! A minimal ISO BMFF box writer: boxes are opened, filled and closed, and closing
//! patches the 32-bit size in front of them.

use bytes::{BufMut, BytesMut};

pub(crate) struct BoxWriter {
    buf: BytesMut,
}

impl BoxWriter {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Starts a box; returns its position for [`end`](Self::end).
    pub(crate) fn start(&mut self, fourcc: &[u8; 4]) -> usize {
        let pos = self.buf.len();
        self.buf.put_u32(0);
        self.buf.put_slice(fourcc);
        pos
    }

    /// Starts a full box (version and 24-bit flags after the header).
    pub(crate) fn start_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let pos = self.start(fourcc);
        self.buf
            .put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        pos
    }

    /// Closes the box started at `pos`. Boxes here are bounded far below 4 GiB (parts
    /// are capped at a few MiB), so the 32-bit size always fits.
    pub(crate) fn end(&mut self, pos: usize) {
        let size = u32::try_from(self.buf.len() - pos).unwrap_or(u32::MAX);
        self.patch_u32(pos, size);
    }

    pub(crate) fn patch_u32(&mut self, pos: usize, value: u32) {
        if let Some(slot) = self.buf.get_mut(pos..pos + 4) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.put_u64(v);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.put_bytes(0, n);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }

    pub(crate) fn into_inner(self) -> BytesMut {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes() {
        let mut w = BoxWriter::with_capacity(64);
        let outer = w.start(b"moof");
        let inner = w.start_full(b"mfhd", 0, 0);
        w.u32(7);
        w.end(inner);
        w.end(outer);
        let out = w.into_inner();
        assert_eq!(&out[..8], b"\0\0\0\x18moof");
        assert_eq!(&out[8..16], b"\0\0\0\x10mfhd");
        assert_eq!(&out[20..24], &[0, 0, 0, 7]);
    }
}
