//! The signals that stop a long-running command.

use std::io;

/// Ctrl-C, and on Unix also SIGTERM, which service managers and container
/// runtimes send. The handlers are registered when this is created, so a
/// signal that arrives before the first wait is not fatal.
pub struct StopSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Registers the handlers.
    pub fn new() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Waits for the next stop signal.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            // NOTE: here the handler is registered on the first call, not in
            // `new`, so a Ctrl-C before that call ends the process at once.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
