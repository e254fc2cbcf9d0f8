//! Standard output and error of one run: kept in memory up to a limit. The
//! first write past the limit traps the guest at once, so an output bomb
//! ends immediately instead of spinning on failed writes until the clock
//! runs out.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Bytes a guest may hand over in one write.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct CappedPipe {
    limit: usize,
    buffer: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
}

impl CappedPipe {
    pub fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            buffer: Arc::default(),
            overflowed: Arc::default(),
        }
    }

    /// Whether the guest tried to write past the limit.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// What was written, at most the limit.
    pub fn contents(&self) -> Vec<u8> {
        self.buffer.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Appends what fits; false when something did not.
    fn append(&self, bytes: &[u8]) -> bool {
        let Ok(mut buffer) = self.buffer.lock() else {
            return false;
        };
        let room = self.limit.saturating_sub(buffer.len());
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            self.overflowed.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn trap() -> StreamError {
        StreamError::trap("output limit exceeded")
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.append(&bytes) {
            Ok(())
        } else {
            Err(Self::trap())
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.overflowed() {
            Err(Self::trap())
        } else {
            Ok(WRITE_PERMIT)
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(if self.append(buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("output limit exceeded"))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_limit_keep_the_first_bytes_and_trap() {
        let mut pipe = CappedPipe::new(5);
        assert!(pipe.write(Bytes::from_static(b"abc")).is_ok());
        assert!(matches!(
            pipe.write(Bytes::from_static(b"defg")),
            Err(StreamError::Trap(_))
        ));
        assert!(pipe.overflowed());
        assert_eq!(pipe.contents(), b"abcde");
        assert!(pipe.check_write().is_err());
    }

    #[test]
    fn exactly_the_limit_is_not_an_overflow() {
        let mut pipe = CappedPipe::new(3);
        assert!(pipe.write(Bytes::from_static(b"abc")).is_ok());
        assert!(!pipe.overflowed());
    }
}
