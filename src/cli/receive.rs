//! Placeholder until this subcommand lands.

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {}

/// Runs the subcommand and returns the exit code.
pub async fn run(_args: ReceiveArgs) -> i32 {
    eprintln!("error: not built yet");
    mewshook::exit::RUNTIME_ERROR
}
