//! Placeholder until this subcommand lands.

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub struct SendArgs {}

/// Runs the subcommand and returns the exit code.
pub async fn run(_args: SendArgs) -> i32 {
    eprintln!("error: not built yet");
    mewshook::exit::RUNTIME_ERROR
}
