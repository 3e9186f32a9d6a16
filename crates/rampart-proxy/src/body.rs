//! Body types: the boxed body every response uses, and the inbound body wrapper that enforces
//! the size limit and the minimum upload rate while streaming.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use tokio::time::{Instant, Sleep};

/// An error from any body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the gateway sends and every request it forwards.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why an inbound body was cut off; shared with the handler so it can answer correctly.
#[derive(Debug, Default)]
pub struct BodyFlags(AtomicU8);

impl BodyFlags {
    const TOO_LARGE: u8 = 1;
    const TOO_SLOW: u8 = 2;

    /// Returns true if the body went over the size limit.
    pub fn too_large(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::TOO_LARGE
    }

    /// Returns true if the body was sent too slowly.
    pub fn too_slow(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::TOO_SLOW
    }

    fn set(&self, v: u8) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// The inbound body failed a limit.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// More bytes than `max_body_bytes`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Slower than `min_body_rate_bytes_per_sec` after the grace period.
    #[error("request body slower than {0} bytes/s")]
    TooSlow(u64),
}

/// Wraps a client's body: counts bytes against `max_body_bytes` and checks, once the grace
/// period is over, that the upload averages at least the minimum rate (slow-POST defence).
#[derive(Debug)]
pub struct InboundBody<B> {
    inner: B,
    max_bytes: u64,
    min_rate: u64,
    grace: Duration,
    started: Instant,
    seen: u64,
    timer: Option<Pin<Box<Sleep>>>,
    flags: Arc<BodyFlags>,
}

impl<B> InboundBody<B> {
    /// Wraps `inner`.
    pub fn new(
        inner: B,
        max_bytes: u64,
        min_rate: u64,
        grace: Duration,
        flags: Arc<BodyFlags>,
    ) -> Self {
        Self {
            inner,
            max_bytes,
            min_rate,
            grace,
            started: Instant::now(),
            seen: 0,
            timer: None,
            flags,
        }
    }

    fn too_slow(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.started);
        if self.min_rate == 0 || elapsed <= self.grace {
            return false;
        }
        u128::from(self.seen) * 1000 < u128::from(self.min_rate) * elapsed.as_millis()
    }
}

impl<B> Body for InboundBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.max_bytes {
                        this.flags.set(BodyFlags::TOO_LARGE);
                        return Poll::Ready(Some(Err(Box::new(InboundError::TooLarge(
                            this.max_bytes,
                        )))));
                    }
                }
                this.timer = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.min_rate == 0 {
                    return Poll::Pending;
                }
                loop {
                    let now = Instant::now();
                    if this.too_slow(now) {
                        this.flags.set(BodyFlags::TOO_SLOW);
                        return Poll::Ready(Some(Err(Box::new(InboundError::TooSlow(
                            this.min_rate,
                        )))));
                    }
                    // Wake up when the average would next drop below the minimum rate.
                    let needed_ms =
                        u64::try_from(u128::from(this.seen) * 1000 / u128::from(this.min_rate))
                            .unwrap_or(u64::MAX);
                    let at = this.started
                        + Duration::from_millis(needed_ms.max(this.grace.as_millis() as u64) + 1);
                    let at = at.max(now + Duration::from_millis(1));
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    match timer.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) => continue,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    #[tokio::test]
    async fn too_large_is_cut_off() {
        let flags = Arc::new(BodyFlags::default());
        let b = InboundBody::new(
            Full::new(Bytes::from(vec![0u8; 100])),
            50,
            0,
            Duration::ZERO,
            flags.clone(),
        );
        assert!(b.collect().await.is_err());
        assert!(flags.too_large());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upload_is_cut_off_after_the_grace_period() {
        let flags = Arc::new(BodyFlags::default());
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        let stream = StreamBody::new(tokio_stream_from(rx));
        let b = InboundBody::new(stream, 1 << 20, 100, Duration::from_secs(5), flags.clone());
        let started = Instant::now();
        let r = b.collect().await;
        assert!(r.is_err());
        assert!(flags.too_slow());
        assert!(started.elapsed() >= Duration::from_secs(5));
        drop(tx);
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
