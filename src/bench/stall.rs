//! A receiver that stalls on a fixed period, for showing what open and
//! closed loop see of a pause.
//!
//! The reference receiver's router is wrapped in a middleware. The last
//! `length` of every `every` period is a stall. A request arriving during
//! a stall is held until the stall ends, as a process paused for garbage
//! collection or a blocked event loop would hold it. A closed-loop run
//! sends only `concurrency` requests into each stall, so the stall hides
//! in the far tail; an open-loop run keeps sending, and every request due
//! during the stall waits.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::receiver::{self, ReceiverConfig};

/// When the receiver stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StallPlan {
    /// The period.
    #[serde(rename = "every_ms", with = "crate::delivery::duration_ms")]
    pub every: Duration,
    /// How long each stall lasts, at the end of each period.
    #[serde(rename = "length_ms", with = "crate::delivery::duration_ms")]
    pub length: Duration,
}

impl StallPlan {
    /// Checks the plan: both durations positive, the stall shorter than
    /// the period.
    pub fn new(every: Duration, length: Duration) -> Result<StallPlan, String> {
        if every.is_zero() || length.is_zero() {
            return Err("--stall-every and --stall-for must both be longer than zero".to_string());
        }
        if length >= every {
            return Err(format!(
                "--stall-for {} must be shorter than --stall-every {}, or the receiver never responds",
                humantime::format_duration(length),
                humantime::format_duration(every)
            ));
        }
        Ok(StallPlan { every, length })
    }

    /// Returns how long a request arriving `elapsed` after the start is
    /// held, or `None` outside a stall.
    pub fn remaining(&self, elapsed: Duration) -> Option<Duration> {
        let every = self.every.as_nanos();
        let phase = elapsed.as_nanos() % every;
        let stall_starts = every - self.length.as_nanos();
        if phase < stall_starts {
            return None;
        }
        let left = every - phase;
        Some(Duration::from_nanos(
            u64::try_from(left).unwrap_or(u64::MAX),
        ))
    }
}

impl fmt::Display for StallPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stalling {} every {}",
            humantime::format_duration(self.length),
            humantime::format_duration(self.every)
        )
    }
}

/// Wraps `router` so that it stalls by `plan`, counting periods from
/// `start`.
pub fn stall_router(router: Router, plan: StallPlan, start: Instant) -> Router {
    router.layer(middleware::from_fn_with_state(
        (plan, start),
        hold_during_stall,
    ))
}

async fn hold_during_stall(
    State((plan, start)): State<(StallPlan, Instant)>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(wait) = plan.remaining(start.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    next.run(request).await
}

/// The reference receiver with a stall, serving on a loopback port.
pub struct StallingReceiver {
    addr: SocketAddr,
    stop_tx: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl StallingReceiver {
    /// Starts the reference receiver configured by `config`, stalled by
    /// `plan`, on `127.0.0.1` and a free port.
    pub async fn start(
        config: ReceiverConfig,
        plan: StallPlan,
    ) -> std::io::Result<StallingReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (router, _state) = receiver::router(config);
        let router = stall_router(router, plan, Instant::now());
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(receiver::serve(listener, router, async {
            let _ = stop_rx.await;
        }));
        Ok(StallingReceiver {
            addr,
            stop_tx,
            task,
        })
    }

    /// Returns the URL to send to.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr))
            .expect("a socket address always forms a valid URL")
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the stalling receiver failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_sits_at_end_of_period() {
        let plan = StallPlan::new(Duration::from_secs(5), Duration::from_millis(200)).unwrap();
        assert_eq!(plan.remaining(Duration::ZERO), None);
        assert_eq!(plan.remaining(Duration::from_millis(4799)), None);
        assert_eq!(
            plan.remaining(Duration::from_millis(4800)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            plan.remaining(Duration::from_millis(4950)),
            Some(Duration::from_millis(50))
        );
        assert_eq!(plan.remaining(Duration::from_millis(5000)), None);
        assert_eq!(
            plan.remaining(Duration::from_millis(9900)),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn stall_must_fit_in_period() {
        assert!(StallPlan::new(Duration::from_secs(1), Duration::from_secs(1)).is_err());
        assert!(StallPlan::new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(StallPlan::new(Duration::from_secs(1), Duration::ZERO).is_err());
    }
}
