//! mewshook plays the Mews side of Mews Connector API webhooks, so that a
//! webhook receiver can be tested before Mews ever calls it.
//!
//! An event flows through these modules in order:
//!
//! - [`payload`]: the General and Integration Webhook bodies;
//! - [`generator`]: seedable, realistic traffic;
//! - [`batcher`]: General events grouped per enterprise integration up to
//!   the batch cap;
//! - [`delivery`]: one attempt, under the Mews transport rules (deadline,
//!   307/308 only, 2xx is success);
//! - [`retry`]: the delays between attempts and when to give up;
//! - [`ledger`]: the account of every event and message, delivered or
//!   discarded;
//! - [`sender`]: the long-lived engine that ties these together behind a
//!   handle.
//!
//! The receiver conformance suite builds on them:
//!
//! - [`scenario`]: scenario files, one check each, parsed with
//!   `file:line:column` errors;
//! - [`conformance`]: the runner that sends each check's messages as single
//!   attempts and judges every response;
//! - [`report`]: the terminal output and the JUnit and JSON reports of a
//!   run.
//!
//! [`bench`](mod@bench) measures a receiver's latency: it pre-generates
//! bodies with [`generator`], sends them with the token and the deadline
//! of [`delivery`] in closed or open loop, and reports HDR histograms,
//! deadline breaches and thresholds.
//!
//! [`receiver`] is the reference receiver that `send`, `run` and `bench`
//! target when no URL is given, and [`secret`] keeps the token out of
//! every output.

pub mod batcher;
pub mod bench;
pub mod conformance;
pub mod delivery;
pub mod exit;
pub mod generator;
pub mod ledger;
pub mod payload;
pub mod receiver;
pub mod report;
pub mod retry;
pub mod scenario;
pub mod secret;
pub mod send;
pub mod sender;
pub mod service;
