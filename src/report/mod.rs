//! Rendering a [`SuiteReport`](crate::conformance::SuiteReport): the
//! terminal lines, the JUnit XML file and the JSON file.
//!
//! Renderers are pure functions of the report, so that tests can feed them
//! a report with fixed timings and compare the output with golden files.
//! They print the report's strings as they are: the runner redacts the
//! token where a string is recorded (URLs, response excerpts, transport
//! errors), and the rendered text is not redacted again, because replacing
//! a short token such as `test` in rendered JSON or XML would break its
//! keys and markup.

pub mod json;
pub mod junit;
pub mod terminal;

use std::path::PathBuf;
use std::str::FromStr;

/// A report file requested with `--report KIND=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// The format.
    pub kind: ReportKind,
    /// The file to write.
    pub path: PathBuf,
}

/// The report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// JUnit XML, for CI test result views.
    Junit,
    /// The JSON document described in `docs/reports.md`.
    Json,
}

impl FromStr for ReportRequest {
    type Err = String;

    /// Parses `junit=PATH` or `json=PATH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((kind, path)) = text.split_once('=') else {
            return Err(format!(
                "invalid report \"{text}\"; write KIND=PATH, for example junit=report.xml or json=report.json"
            ));
        };
        let kind = match kind.trim() {
            "junit" => ReportKind::Junit,
            "json" => ReportKind::Json,
            other => {
                return Err(format!(
                    "unknown report kind \"{other}\"; use junit or json, for example junit=report.xml"
                ));
            }
        };
        if path.is_empty() {
            return Err(format!(
                "the report path in \"{text}\" is empty; give a file, for example junit=report.xml"
            ));
        }
        Ok(ReportRequest {
            kind,
            path: PathBuf::from(path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!(
            "junit=out/report.xml".parse(),
            Ok(ReportRequest {
                kind: ReportKind::Junit,
                path: PathBuf::from("out/report.xml")
            })
        );
        assert_eq!(
            "json=a=b.json".parse::<ReportRequest>().map(|r| r.path),
            Ok(PathBuf::from("a=b.json"))
        );
    }

    #[test]
    fn rejects_unknown_kind_and_missing_path() {
        let error = "html=x.html".parse::<ReportRequest>().unwrap_err();
        assert!(error.contains("unknown report kind \"html\""), "{error}");
        assert!("junit".parse::<ReportRequest>().is_err());
        assert!("junit=".parse::<ReportRequest>().is_err());
    }
}
