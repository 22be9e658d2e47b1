//! Helpers for the end-to-end tests in `tests/e2e/`, which run the real
//! `file-server` and `file-client` binaries the workspace builds
//! (`cargo test --workspace` builds them before any test runs).
//!
//! # Layout
//! - `process`: [`ServerProcess`], a `file-server` on `127.0.0.1:0`, stopped
//!   by pid when dropped; [`run_client`], `file-client` with arguments;
//!   [`adduser`]; [`output_within`], any child process with a time limit.
//! - `wire`: [`RawClient`], a plain TCP client that speaks the protocol byte
//!   by byte; [`Reply`] and [`parse_messages`]; [`tcp_from`], a connection
//!   from another loopback address.
//! - `pty`: [`pty_client`], [`ready`], [`type_keys`]: `file-client` at a
//!   prompt in a pseudo-terminal.
//! - `fake_server`: [`FakeServer`], a hand-driven server for replies the real one never sends.
//! - `small_disk`: [`SmallDisk`], a small tmpfs, for a disk that fills up.
//! - `relay`: [`SlowRelay`], a TCP relay at a fixed rate, so a transfer lasts
//!   long enough to be cancelled half-way.
//! - `services`: [`Haproxy`] and [`Redis`], the real services from Debian
//!   packages, started on free ports and stopped by pid; [`free_port`].
//! - `data`: [`pseudo_random`], [`blake3_hex`], [`Share`], [`files_under`]: test data, a share, a tree's files.
//! - this file: [`eventually`] and [`TEST_TIMEOUT`], bounded waiting.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

mod data;
mod fake_server;
mod process;
mod pty;
mod relay;
mod services;
mod small_disk;
mod wire;

pub use data::*;
pub use fake_server::*;
pub use process::*;
pub use pty::*;
pub use relay::*;
pub use services::*;
pub use small_disk::*;
pub use wire::*;

/// How long any single wait in a test may take before the test fails.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Retries `check` (with a short pause between tries) until it returns
/// `Some`, failing the test after [`TEST_TIMEOUT`]. For states the server
/// reaches on its own with nothing to wait on, such as noticing a vanished peer.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
