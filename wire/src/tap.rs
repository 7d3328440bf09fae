//! A tap on a stream's received bytes, exactly as they came (ciphertext under Noise, garbage, a
//! banner): what a failing step shows of what the peer sent while it ran, even when the decoder could
//! make nothing of it. Bounded: the latest [`Tap::KEEP`] bytes are kept, all are counted.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Default)]
struct TapLog {
    /// The latest bytes received, at most [`Tap::KEEP`].
    kept: Vec<u8>,
    /// Bytes received in all.
    total: u64,
}

/// The received side of a [`Tapped`] stream; clones share the log.
#[derive(Debug, Clone, Default)]
pub struct Tap(Arc<Mutex<TapLog>>);

impl Tap {
    /// The latest received bytes kept.
    pub const KEEP: usize = 64 * 1024;

    /// The position in the received stream now.
    pub fn mark(&self) -> u64 {
        self.0.lock().map_or(0, |log| log.total)
    }

    /// How many bytes came since `mark`, and those of them still kept (the latest ones when more
    /// came than are kept).
    pub fn since(&self, mark: u64) -> (u64, Vec<u8>) {
        let Ok(log) = self.0.lock() else {
            return (0, Vec::new());
        };
        let count = log.total.saturating_sub(mark);
        let kept = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(log.kept.len());
        let start = log.kept.len() - kept;
        (count, log.kept[start..].to_vec())
    }

    /// Notes bytes received.
    pub fn record(&self, bytes: &[u8]) {
        if let Ok(mut log) = self.0.lock() {
            log.total += bytes.len() as u64;
            log.kept.extend_from_slice(bytes);
            if log.kept.len() > Self::KEEP {
                let cut = log.kept.len() - Self::KEEP;
                log.kept.drain(..cut);
            }
        }
    }
}

/// A stream whose every received byte is copied to a [`Tap`].
#[derive(Debug)]
pub struct Tapped<S> {
    inner: S,
    tap: Tap,
}

impl<S> Tapped<S> {
    /// `inner`, tapped; the returned [`Tap`] reads what it receives.
    pub fn new(inner: S) -> (Tapped<S>, Tap) {
        let tap = Tap::default();
        (
            Tapped {
                inner,
                tap: tap.clone(),
            },
            tap,
        )
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tap.record(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_tap_keeps_the_latest_bytes_and_counts_all() {
        let tap = Tap::default();
        tap.record(&[1, 2, 3]);
        let mark = tap.mark();
        assert_eq!(tap.since(mark), (0, vec![]));
        tap.record(&[4, 5]);
        assert_eq!(tap.since(mark), (2, vec![4, 5]));
        tap.record(&vec![9; Tap::KEEP]);
        let (count, kept) = tap.since(mark);
        assert_eq!(count, 2 + Tap::KEEP as u64);
        assert_eq!(kept.len(), Tap::KEEP);
        assert!(kept.iter().all(|b| *b == 9));
    }

    #[tokio::test]
    async fn a_tapped_stream_records_what_it_reads_and_not_what_it_writes() {
        let (a, mut b) = tokio::io::duplex(64);
        let (mut tapped, tap) = Tapped::new(a);
        tapped.write_all(b"out").await.unwrap();
        let mut three = [0u8; 3];
        b.read_exact(&mut three).await.unwrap();
        b.write_all(b"in!").await.unwrap();
        tapped.read_exact(&mut three).await.unwrap();
        assert_eq!(tap.since(0), (3, b"in!".to_vec()));
    }
}
