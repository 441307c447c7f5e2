//! One module per subcommand: its arguments and the glue to the library.

pub mod bench;
pub mod common;
pub mod engine;
pub mod receive;
pub mod run;
pub mod send;
pub mod serve;
pub mod signal;
