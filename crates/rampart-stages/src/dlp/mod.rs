//! `dlp`: data loss prevention on the bodies an API sends out (and, when configured, on those
//! sent into it). The scanner is `rampart-dlp`; this module adapts it to the pipeline.
//!
//! ```yaml
//! dlp:
//!   profiles: [pci, pii, secrets]
//!   action: log
//!   actions: { pci: mask, private_key: block }
//!   custom:
//!     - name: employee_id
//!       regex: '\bEMP-(\d{6})\b'
//!       keywords: [employee]
//!   requests: { profiles: [secrets], action: block }
//! ```
//!
//! - **Whole or streamed.** When some detector blocks, the response is held up to
//!   `max_buffer_bytes` and scanned whole before any of it is sent: a match answers 502 with
//!   the request id. Otherwise the body streams through the scanner, which keeps a bounded
//!   overlap so a match split across chunks is still found and masked.
//! - **Compressed bodies** (`gzip`, `deflate`, `br`) are decoded to be scanned; when something
//!   may be masked they are forwarded decoded, without `Content-Encoding`. The stage narrows
//!   `Accept-Encoding` to those codings so an upstream does not answer in one it cannot read.
//! - **Oversize.** A response too large to hold when a detector blocks follows `oversize`:
//!   `mask` (default: the blocking detectors mask instead), `cut`, `reject` or `log`.

mod codec;
mod config;
mod stage;

pub use codec::{
    coding, decode_all, fuzz_decode, restrict_accept_encoding, Coding, DecodeError, Decoder,
    READABLE,
};
pub use config::{Action, CustomDetectorConfig, Dlp, DlpConfig, DlpRequestConfig, OversizeAction};
pub use stage::{DlpStage, STAGE};

#[cfg(test)]
mod tests;
