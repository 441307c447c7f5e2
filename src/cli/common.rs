//! Argument pieces shared by several subcommands.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parses a duration such as `250ms`, `5s` or `2m` for clap.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("invalid duration \"{text}\": {error}; write it like 250ms, 5s or 2m")
    })
}

/// Parses a duration that must be above zero, such as a deadline.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration \"{text}\": it must be above zero, for example 5s"
        ));
    }
    Ok(duration)
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
    let text = text.trim();
    // "localhost:8080/hooks" parses with "localhost" as the scheme, so a
    // missing scheme is caught before the scheme check.
    if !text.contains("://") {
        return Err(format!(
            "invalid URL: it has no http:// or https:// in front; write it as http://{text}"
        ));
    }
    let url = url::Url::parse(text).map_err(|error| {
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

/// The environment variable read for the token when neither `--token` nor
/// `--token-file` is given.
pub const TOKEN_VARIABLE: &str = "MEWSHOOK_TOKEN";

/// Reads the token from `--token`, the first line of `--token-file`, or
/// `MEWSHOOK_TOKEN`, in that order. A UTF-8 byte order mark at the start of
/// the file is dropped. An empty token from any of them is an error rather
/// than no token, so that a blank argument or variable does not silently
/// turn the token off.
pub fn resolve_token(
    token: Option<String>,
    token_file: Option<&Path>,
) -> Result<Option<String>, String> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("failed to read --token-file {}: {error}", path.display()))?;
        // Windows editors often start UTF-8 files with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
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
    if let Some(token) = token {
        if token.is_empty() {
            return Err(
                "--token is empty; give the token, or omit --token to run without one".to_string(),
            );
        }
        return Ok(Some(token));
    }
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) if token.is_empty() => Err(format!(
            "{TOKEN_VARIABLE} is empty; set it to the token, or unset it to run without one"
        )),
        Ok(token) => Ok(Some(token)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "{TOKEN_VARIABLE} is not valid UTF-8; set it to the token as text or use --token-file"
        )),
    }
}

/// Token flags shared by `send`, `serve`, `run` and `bench`.
#[derive(Clone, clap::Args)]
pub struct TokenArgs {
    /// Secret token appended to the URL as a query parameter; never
    /// printed [env: MEWSHOOK_TOKEN].
    // The variable is read in `resolve_token`, not by clap, because clap
    // counts a value from the environment as given, and --token-file would
    // then conflict with the variable.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,

    /// Read the token from the first line of this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Query parameter that carries the token.
    #[arg(long, value_name = "NAME", default_value = "Token")]
    pub token_param: String,
}

/// Shows whether a token was given, never its value.
impl std::fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenArgs")
            .field(
                "token",
                &self.token.as_ref().map(|_| mewshook::secret::PLACEHOLDER),
            )
            .field("token_file", &self.token_file)
            .field("token_param", &self.token_param)
            .finish()
    }
}
