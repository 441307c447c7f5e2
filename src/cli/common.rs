//! Argument pieces shared by several subcommands.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parses a duration such as `250ms`, `5s` or `2m` for clap.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration \"{text}\": {error}; write it like 250ms, 5s or 2m")
    })
}

/// Parses a positive, finite factor for clap.
pub fn parse_time_scale(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!(
            "invalid time scale \"{text}\": use a positive number such as 0.001 (1 minute becomes 60 ms)"
        )),
    }
}

/// Parses an http(s) URL for clap. The URL may carry the token in its own
/// query, so the message never repeats it.
pub fn parse_http_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|error| {
        format!("invalid URL: {error}; give an absolute URL such as http://127.0.0.1:8080/webhooks")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported URL scheme \"{}\"; use http:// or https://",
            url.scheme()
        ));
    }
    Ok(url)
}

/// Reads the token from `--token` or the first line of `--token-file`.
pub fn resolve_token(
    token: Option<String>,
    token_file: Option<&Path>,
) -> Result<Option<String>, String> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("failed to read --token-file {}: {error}", path.display()))?;
        let token = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_string();
        if token.is_empty() {
            return Err(format!(
                "--token-file {} is empty; write the token on its first line",
                path.display()
            ));
        }
        return Ok(Some(token));
    }
    Ok(token.filter(|token| !token.is_empty()))
}

/// Token flags shared by `send`, `run` and `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Secret token appended to the URL as a query parameter. Never printed.
    #[arg(
        long,
        env = "MEWSHOOK_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// Read the token from the first line of this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Query parameter that carries the token.
    #[arg(long, value_name = "NAME", default_value = "Token")]
    pub token_param: String,
}
