//! Placeholder until this module lands: the API shape only.
#![allow(missing_docs)]

#[derive(Debug, Clone, Default)]
pub struct ReceiverConfig {
    pub token: Option<String>,
    pub token_param: String,
    pub keep_requests: bool,
}

pub struct RunningReceiver;

impl RunningReceiver {
    pub async fn start(_config: ReceiverConfig) -> std::io::Result<RunningReceiver> {
        Err(std::io::Error::other("the reference receiver is not built yet"))
    }
    pub fn url(&self) -> url::Url {
        url::Url::parse("http://127.0.0.1:1/").unwrap()
    }
    pub async fn stop(self) {}
}
