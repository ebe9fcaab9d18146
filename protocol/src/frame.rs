//! Frames: how messages are cut out of a byte stream.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes. The
//! decoder takes bytes as they arrive, in any chunking, and hands out whole
//! frames. Three rules, each for a reason:
//!
//! - check, then parse: the length is checked against the decoder's maximum
//!   before a single byte of the body is buffered, so a peer cannot make us
//!   allocate what it merely announces;
//! - "incomplete" is not an error: [`FrameDecoder::next_frame`] returns
//!   `Ok(None)` until a whole frame is there;
//! - after an error the decoder stays failed: the stream is out of step and
//!   nothing after the bad length can be trusted.

use std::collections::VecDeque;

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why the byte stream cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame announced more bytes than the decoder accepts.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Appends one frame holding `body` to `out`.
///
/// Panics if `body` is longer than `u32::MAX` bytes: that is a bug in our own
/// code (every caller's messages are bounded far below), not a peer's input.
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).expect("our own frames are bounded far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// Cuts frames out of a byte stream; see the module docs.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: VecDeque<u8>,
    frame_len_max: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `frame_len_max` bytes.
    pub fn new(frame_len_max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: VecDeque::new(),
            frame_len_max,
            failed: None,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend(bytes);
        }
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.buf.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER_LEN];
        for (i, b) in self.buf.iter().take(FRAME_HEADER_LEN).enumerate() {
            header[i] = *b;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > self.frame_len_max {
            let e = FrameError::TooLarge {
                len,
                max: self.frame_len_max,
            };
            self.failed = Some(e);
            self.buf.clear();
            return Err(e);
        }
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.drain(..FRAME_HEADER_LEN);
        Ok(Some(self.buf.drain(..len).collect()))
    }

    /// Bytes buffered that are not a whole frame yet: non-zero means a frame is
    /// under way (a reader can bound how long its remainder may take).
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes received beyond the frames taken so far (handed to whoever reads
    /// the stream next, e.g. after a handshake).
    pub fn into_remaining(self) -> Vec<u8> {
        self.buf.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_come_out_whole_in_any_chunking() {
        let mut wire = Vec::new();
        encode_frame(b"hello", &mut wire);
        encode_frame(b"", &mut wire);
        encode_frame(&[7u8; 300], &mut wire);
        for chunk in [1, 2, 3, 7, 1000] {
            let mut d = FrameDecoder::new(1024);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(
                got,
                vec![b"hello".to_vec(), vec![], vec![7u8; 300]],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_oversized_length_fails_before_the_body_arrives_and_stays_failed() {
        let mut d = FrameDecoder::new(16);
        d.push(&17u32.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        d.push(&[0, 0, 0, 1, 9]);
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn remaining_bytes_are_handed_on() {
        let mut wire = Vec::new();
        encode_frame(b"a", &mut wire);
        wire.extend_from_slice(b"rest");
        let mut d = FrameDecoder::new(16);
        d.push(&wire);
        assert_eq!(d.next_frame().unwrap(), Some(b"a".to_vec()));
        assert_eq!(d.into_remaining(), b"rest");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..64) {
            let mut d = FrameDecoder::new(max);
            d.push(&bytes);
            for _ in 0..bytes.len() + 1 {
                match d.next_frame() {
                    Ok(Some(f)) => prop_assert!(f.len() <= max),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
