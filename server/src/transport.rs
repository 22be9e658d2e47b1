//! The byte stream a session runs over ([`Transport`], shared with the
//! client: plain TCP or TLS) and the [`Closer`] shutdown holds to end a
//! session from outside it.

use std::net::Shutdown;

pub use common::transport::{is_timeout, Transport};

/// A way to end a session from outside it, as shutdown does; it holds the
/// connection only to close it. A session with nothing to close (a test, a
/// front end without a connection of its own) has an empty one.
#[derive(Debug, Default)]
pub struct Closer {
    transport: Option<Transport>,
}

impl Closer {
    /// Closes `transport` (another handle on the session's connection).
    pub fn new(transport: Transport) -> Closer {
        Closer { transport: Some(transport) }
    }

    /// Wakes the session's reader with end of input; replies still go out.
    pub fn stop_reading(&self) {
        if let Some(t) = &self.transport {
            t.shutdown(Shutdown::Read);
        }
    }

    /// Ends the connection both ways.
    pub fn close(&self) {
        if let Some(t) = &self.transport {
            t.shutdown(Shutdown::Both);
        }
    }
}
