//! The process exit codes every subcommand shares, documented in `--help`
//! and the README.

/// Everything passed: all messages delivered, every check passed.
pub const SUCCESS: i32 = 0;
/// The receiver fell short: a message was discarded, or a check failed.
pub const FAILURE: i32 = 1;
/// Invalid input: a bad flag, a malformed scenario or body file.
pub const INVALID_INPUT: i32 = 2;
/// A runtime error unrelated to the receiver's behaviour, for example a
/// port that cannot be bound.
pub const RUNTIME_ERROR: i32 = 3;
/// A `bench --fail-if` threshold was crossed.
pub const THRESHOLD_CROSSED: i32 = 4;
