//! Placeholder until the reference receiver lands: the final API shape,
//! answering 202 to every POST and checking the token when one is set.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Default)]
pub struct ReceiverConfig {
    pub token: Option<String>,
    pub token_param: String,
    pub keep_requests: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ReceiverState {
    pub received: Arc<AtomicU64>,
}

pub fn router(config: ReceiverConfig) -> (Router, ReceiverState) {
    let state = ReceiverState::default();
    let shared = (Arc::new(config), state.clone());
    let router = Router::new().fallback(handle).with_state(shared);
    (router, state)
}

async fn handle(
    State((config, state)): State<(Arc<ReceiverConfig>, ReceiverState)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> StatusCode {
    state.received.fetch_add(1, Ordering::Relaxed);
    if let Some(token) = &config.token {
        match query.get(&config.token_param) {
            None => return StatusCode::UNAUTHORIZED,
            Some(given) if given != token => return StatusCode::FORBIDDEN,
            Some(_) => {}
        }
    }
    StatusCode::ACCEPTED
}

pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

pub struct RunningReceiver {
    addr: SocketAddr,
    state: ReceiverState,
    stop_tx: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningReceiver {
    pub async fn start(config: ReceiverConfig) -> std::io::Result<RunningReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (router, state) = router(config);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, router, async {
            let _ = stop_rx.await;
        }));
        Ok(RunningReceiver {
            addr,
            state,
            stop_tx,
            task,
        })
    }
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).expect("a socket address is a valid URL")
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn state(&self) -> &ReceiverState {
        &self.state
    }
    pub async fn stop(self) {
        let _ = self.stop_tx.send(());
        let _ = self.task.await;
    }
}
