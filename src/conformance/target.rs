//! The receiver under test and the token values the checks send it.

use url::Url;

use crate::scenario::TokenMode;

/// The token sent by steps with `token = "wrong"`. It is not a secret: it is
/// never the receiver's token (see [`Target::wrong_token`]).
pub const WRONG_TOKEN: &str = "mewshook-wrong-token";

/// The receiver that checks send their messages to, and its token.
#[derive(Debug, Clone)]
pub struct Target {
    /// The General Webhook URL, without the token.
    pub general_url: Url,
    /// The Integration Webhook URL, without the token.
    pub integration_url: Url,
    /// The receiver's token, when known. Checks that need it are skipped
    /// without it.
    pub token: Option<String>,
    /// The query parameter that carries the token.
    pub token_param: String,
    /// Whether the target is the reference receiver started by mewshook.
    pub embedded_receiver: bool,
}

/// A target whose URLs and token flags do not agree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A URL has the token parameter with an empty value.
    #[error(
        "the {param} parameter in the URL is empty; remove it, or write the token after {param}="
    )]
    EmptyToken {
        /// The token parameter name.
        param: String,
    },
    /// A URL has the token parameter more than once, with different values.
    #[error("the URL has several {param} parameters with different values; keep one")]
    SeveralTokens {
        /// The token parameter name.
        param: String,
    },
    /// A URL has a parameter whose name differs from the token parameter
    /// only in letter case, so it is unclear whether it is the token.
    #[error(
        "the URL has a query parameter \"{found}\", which differs from --token-param \"{param}\" \
         only in letter case; rename it to {param}, or pass --token-param {found} if the \
         receiver reads that name"
    )]
    ParamCase {
        /// The name in the URL.
        found: String,
        /// The token parameter name.
        param: String,
    },
    /// The General and Integration URLs carry different tokens.
    #[error(
        "--general-url and --integration-url carry different {param} values; a Mews \
         integration uses one token for both URLs"
    )]
    UrlTokensDiffer {
        /// The token parameter name.
        param: String,
    },
    /// The token in the URL differs from the one given by flag, file or
    /// environment variable.
    #[error(
        "the {param} value in the URL differs from the token given with --token, --token-file \
         or MEWSHOOK_TOKEN; give the token in one place only"
    )]
    ConflictingToken {
        /// The token parameter name.
        param: String,
    },
}

impl Target {
    /// Builds the target for receiver URLs given by the user.
    ///
    /// Mews documents the registered URL with the token in it
    /// (`https://host/path?Token=...`), so a `token_param` value in a URL is
    /// taken out of the URL and becomes the token. The token checks then
    /// decide per step whether it is sent. Values are decoded as a form
    /// field, as most web frameworks decode them, so `+` stands for a space
    /// and a literal `+` is written `%2B`. The rest of the query is kept
    /// byte for byte.
    pub fn from_urls(
        general_url: &Url,
        integration_url: &Url,
        token: Option<String>,
        token_param: &str,
    ) -> Result<Target, TargetError> {
        let (general_url, general_token) = take_token(general_url, token_param)?;
        let (integration_url, integration_token) = take_token(integration_url, token_param)?;
        let url_token = match (general_token, integration_token) {
            (Some(general), Some(integration)) if general != integration => {
                return Err(TargetError::UrlTokensDiffer {
                    param: token_param.to_string(),
                });
            }
            (general, integration) => general.or(integration),
        };
        let token = match (token, url_token) {
            (Some(given), Some(in_url)) if given != in_url => {
                return Err(TargetError::ConflictingToken {
                    param: token_param.to_string(),
                });
            }
            (given, in_url) => given.or(in_url),
        };
        Ok(Target {
            general_url,
            integration_url,
            token,
            token_param: token_param.to_string(),
            embedded_receiver: false,
        })
    }

    /// Returns a token that differs from the receiver's.
    pub fn wrong_token(&self) -> String {
        let mut wrong = WRONG_TOKEN.to_string();
        while self.token.as_deref() == Some(wrong.as_str()) {
            wrong.push('x');
        }
        wrong
    }

    /// Returns the token value a step in `mode` sends, `None` for no token
    /// parameter, or the reason the step cannot run against this target.
    pub fn token_value(&self, mode: TokenMode) -> Result<Option<String>, String> {
        let token = match (mode, &self.token) {
            (TokenMode::Right, token) => return Ok(token.clone()),
            (TokenMode::Missing, _) => return Ok(None),
            (TokenMode::Wrong, _) => return Ok(Some(self.wrong_token())),
            (TokenMode::Empty, _) => return Ok(Some(String::new())),
            (_, None) => return Err(UNKNOWN_TOKEN.to_string()),
            (_, Some(token)) => token,
        };
        match mode {
            TokenMode::Prefix => prefix_of(token).map(Some).ok_or_else(|| {
                "the token has one character, so its only proper prefix is the empty value \
                 that token = \"empty\" sends"
                    .to_string()
            }),
            TokenMode::Extended => Ok(Some(extended(token))),
            TokenMode::Altered => Ok(Some(altered(token))),
            _ => swapped_case(token).map(Some).ok_or_else(|| {
                "the token has no letters whose case can be swapped, so it cannot show \
                 whether the receiver compares without case"
                    .to_string()
            }),
        }
    }

    /// Returns the values derived from the token that steps may send, so
    /// that the redactor hides them as well: each gives most of the token
    /// away.
    pub fn derived_secrets(&self) -> Vec<String> {
        let Some(token) = &self.token else {
            return Vec::new();
        };
        [
            prefix_of(token),
            Some(extended(token)),
            Some(altered(token)),
            swapped_case(token),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The skip reason of a check or step that needs the receiver's token when
/// none was given.
pub const UNKNOWN_TOKEN: &str = "the receiver's token is not known; give it with --token, \
     MEWSHOOK_TOKEN or --token-file to run this check";

/// Returns `token` without its last character, unless that leaves nothing.
fn prefix_of(token: &str) -> Option<String> {
    let (last, _) = token.char_indices().next_back()?;
    (last > 0).then(|| token[..last].to_string())
}

/// Returns `token` with one more character, one that needs no encoding.
fn extended(token: &str) -> String {
    format!("{token}0")
}

/// Returns `token` with its last character replaced by another one that
/// needs no encoding, so the length stays the same.
fn altered(token: &str) -> String {
    let mut altered: String = prefix_of(token).unwrap_or_default();
    let last = token.chars().next_back();
    altered.push(if last == Some('0') { '1' } else { '0' });
    altered
}

/// Returns `token` with the case of every letter swapped, unless that
/// changes nothing.
fn swapped_case(token: &str) -> Option<String> {
    let swapped: String = token
        .chars()
        .flat_map(|character| {
            if character.is_lowercase() {
                character.to_uppercase().collect::<Vec<char>>()
            } else {
                character.to_lowercase().collect::<Vec<char>>()
            }
        })
        .collect();
    (swapped != token).then_some(swapped)
}

/// Removes every `param` pair from the query of `url` and returns the URL
/// with the other pairs unchanged, and the decoded token value if there
/// was one.
fn take_token(url: &Url, param: &str) -> Result<(Url, Option<String>), TargetError> {
    let Some(query) = url.query() else {
        return Ok((url.clone(), None));
    };
    let mut kept_pairs = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_form(name);
        if name == param {
            values.push(decode_form(value));
        } else if name.eq_ignore_ascii_case(param) {
            return Err(TargetError::ParamCase {
                found: name,
                param: param.to_string(),
            });
        } else {
            kept_pairs.push(pair);
        }
    }

    let mut stripped = url.clone();
    if kept_pairs.iter().all(|pair| pair.is_empty()) {
        stripped.set_query(None);
    } else {
        stripped.set_query(Some(&kept_pairs.join("&")));
    }
    let Some(first) = values.first() else {
        return Ok((stripped, None));
    };
    if first.is_empty() {
        return Err(TargetError::EmptyToken {
            param: param.to_string(),
        });
    }
    if values.iter().any(|value| value != first) {
        return Err(TargetError::SeveralTokens {
            param: param.to_string(),
        });
    }
    Ok((stripped, Some(first.clone())))
}

/// Decodes one name or value of an `application/x-www-form-urlencoded`
/// query.
fn decode_form(text: &str) -> String {
    let plus_as_space = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn from_url(text: &str, token: Option<&str>) -> Result<Target, TargetError> {
        Target::from_urls(&url(text), &url(text), token.map(str::to_string), "Token")
    }

    #[test]
    fn token_in_url_becomes_the_token() {
        let target = from_url("http://127.0.0.1:1/hook?a=1&Token=S3cr%2Bt&b=x+y", None).unwrap();
        assert_eq!(target.token.as_deref(), Some("S3cr+t"));
        assert_eq!(
            target.general_url.as_str(),
            "http://127.0.0.1:1/hook?a=1&b=x+y"
        );
        assert_eq!(target.integration_url, target.general_url);
    }

    #[test]
    fn only_parameter_leaves_no_query() {
        let target = from_url("http://127.0.0.1:1/?Token=S3cr3tTok", None).unwrap();
        assert_eq!(target.token.as_deref(), Some("S3cr3tTok"));
        assert_eq!(target.general_url.as_str(), "http://127.0.0.1:1/");
    }

    #[test]
    fn same_token_in_url_and_flag_is_accepted() {
        let target = from_url("http://127.0.0.1:1/?Token=S3cr3tTok", Some("S3cr3tTok")).unwrap();
        assert_eq!(target.token.as_deref(), Some("S3cr3tTok"));
        assert_eq!(target.general_url.query(), None);
    }

    #[test]
    fn url_without_token_keeps_flag_token() {
        let target = from_url("http://127.0.0.1:1/hook?a=1", Some("flag")).unwrap();
        assert_eq!(target.token.as_deref(), Some("flag"));
        assert_eq!(target.general_url.as_str(), "http://127.0.0.1:1/hook?a=1");
    }

    #[test]
    fn conflicting_tokens_are_rejected() {
        let error = from_url("http://127.0.0.1:1/?Token=S3cr3tTok", Some("other")).unwrap_err();
        assert_eq!(
            error,
            TargetError::ConflictingToken {
                param: "Token".to_string()
            }
        );
        assert!(!error.to_string().contains("S3cr3tTok"), "{error}");
    }

    #[test]
    fn malformed_token_parameters_are_rejected() {
        let empty = from_url("http://127.0.0.1:1/?Token=", None).unwrap_err();
        assert!(matches!(empty, TargetError::EmptyToken { .. }), "{empty}");
        let several = from_url("http://127.0.0.1:1/?Token=a1&Token=b2", None).unwrap_err();
        assert!(
            matches!(several, TargetError::SeveralTokens { .. }),
            "{several}"
        );
        let case = from_url("http://127.0.0.1:1/?token=a1", None).unwrap_err();
        assert_eq!(
            case,
            TargetError::ParamCase {
                found: "token".to_string(),
                param: "Token".to_string()
            }
        );
    }

    #[test]
    fn urls_with_different_tokens_are_rejected() {
        let error = Target::from_urls(
            &url("http://127.0.0.1:1/general?Token=one"),
            &url("http://127.0.0.1:1/integration?Token=two"),
            None,
            "Token",
        )
        .unwrap_err();
        assert!(matches!(error, TargetError::UrlTokensDiffer { .. }));
        let target = Target::from_urls(
            &url("http://127.0.0.1:1/general?Token=one"),
            &url("http://127.0.0.1:1/integration"),
            None,
            "Token",
        )
        .unwrap();
        assert_eq!(target.token.as_deref(), Some("one"));
        assert_eq!(target.general_url.as_str(), "http://127.0.0.1:1/general");
    }

    #[test]
    fn derived_tokens_differ_from_the_token() {
        let target = from_url("http://127.0.0.1:1/", Some("aB3+\u{fc}")).unwrap();
        let value = |mode| target.token_value(mode).unwrap();
        assert_eq!(value(TokenMode::Right).as_deref(), Some("aB3+\u{fc}"));
        assert_eq!(value(TokenMode::Missing), None);
        assert_eq!(value(TokenMode::Empty).as_deref(), Some(""));
        assert_eq!(value(TokenMode::Prefix).as_deref(), Some("aB3+"));
        assert_eq!(value(TokenMode::Extended).as_deref(), Some("aB3+\u{fc}0"));
        assert_eq!(value(TokenMode::Altered).as_deref(), Some("aB3+0"));
        assert_eq!(value(TokenMode::SwappedCase).as_deref(), Some("Ab3+\u{dc}"));
        assert_eq!(target.derived_secrets().len(), 4);
    }

    #[test]
    fn derived_tokens_that_cannot_differ_skip() {
        let digits = from_url("http://127.0.0.1:1/", Some("12345")).unwrap();
        let reason = digits.token_value(TokenMode::SwappedCase).unwrap_err();
        assert!(reason.contains("no letters"), "{reason}");
        let single = from_url("http://127.0.0.1:1/", Some("a")).unwrap();
        let reason = single.token_value(TokenMode::Prefix).unwrap_err();
        assert!(reason.contains("one character"), "{reason}");
        let unknown = from_url("http://127.0.0.1:1/", None).unwrap();
        assert_eq!(
            unknown.token_value(TokenMode::Prefix),
            Err(UNKNOWN_TOKEN.to_string())
        );
        assert!(unknown.derived_secrets().is_empty());
    }

    #[test]
    fn wrong_token_never_equals_right_one() {
        let mut target = from_url("http://127.0.0.1:1/", None).unwrap();
        assert_eq!(target.wrong_token(), WRONG_TOKEN);
        target.token = Some(WRONG_TOKEN.to_string());
        assert_ne!(target.wrong_token(), WRONG_TOKEN);
    }
}
