//! Writing a round's answers: frames encoded on different threads, in
//! request order, with one system call when the kernel takes them all.
//!
//! Small answers are copied into one buffer as they are collected, which
//! costs less than keeping each as a shared slice of the buffer it was
//! encoded in (two atomic operations, and a slot in the vectored write);
//! answers of [`COPY_LIMIT`] bytes or more, large values, are never copied.
//! Nor are a batch's answers when they are all it holds and nothing is
//! collected yet, as for a lone request: the two buffers trade places.

use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::command::Batch;

/// Answers this long or longer go out from the buffer they were encoded in.
pub const COPY_LIMIT: usize = 4 * 1024;
/// Most buffers handed to one `writev`.
const MAX_IO_SLICES: usize = 64;
/// A copy buffer that grew past this is not kept once written.
const BUFFER_KEEP: usize = 16 * 1024;

/// Answers collected for writing, in order: the frozen `chunks`, then
/// `tail`.
#[derive(Default)]
pub(super) struct Output {
    chunks: Vec<Bytes>,
    tail: BytesMut,
}

impl Output {
    /// Takes the next `bytes` bytes of `batch`'s answers (see
    /// [`Batch::take_answers`]).
    pub(super) fn take_from(&mut self, batch: &mut Batch, bytes: usize) {
        if bytes == 0 {
        } else if bytes < COPY_LIMIT {
            batch.copy_answers(bytes, &mut self.tail);
        } else {
            self.seal();
            self.chunks.push(batch.split_answers(bytes));
        }
    }

    /// Adds an answer encoded elsewhere.
    pub(super) fn push(&mut self, frame: Bytes) {
        self.seal();
        self.chunks.push(frame);
    }

    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push(self.tail.split().freeze());
        }
    }

    /// Writes everything collected, in order, and empties the output;
    /// returns whether there was anything. Waits for as long as the socket
    /// takes it: this is where a client that does not read holds up its own
    /// connection, and only its own. Flushes, which sends TLS records still
    /// queued (for plain TCP a flush does nothing).
    pub(super) async fn write_to<S>(&mut self, stream: &mut S) -> io::Result<bool>
    where
        S: AsyncWrite + Unpin,
    {
        let wrote = !self.chunks.is_empty() || !self.tail.is_empty();
        if self.chunks.is_empty() {
            if !self.tail.is_empty() {
                stream.write_all(&self.tail).await?;
                self.tail.clear();
            }
        } else {
            self.seal();
            write_all_vectored(stream, &mut self.chunks).await?;
            self.chunks.clear();
        }
        if wrote {
            stream.flush().await?;
        }
        if self.tail.capacity() > BUFFER_KEEP {
            self.tail = BytesMut::new();
        }
        Ok(wrote)
    }
}

/// Caller guarantees no chunk is empty.
async fn write_all_vectored<S>(stream: &mut S, chunks: &mut [Bytes]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut next = 0;
    while next < chunks.len() {
        let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
        let count = (chunks.len() - next).min(MAX_IO_SLICES);
        for (slice, chunk) in slices.iter_mut().zip(&chunks[next..next + count]) {
            *slice = IoSlice::new(chunk);
        }
        let mut written = stream.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[next];
            if written >= chunk.len() {
                written -= chunk.len();
                next += 1;
            } else {
                chunk.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}
