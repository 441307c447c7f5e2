//! The terminal output of `mewshook run`: a header, one block per check as
//! it finishes, and a summary line.
//!
//! A passing check takes one line. A failing, warning or skipped check
//! adds its findings or skip reason below, and a failing or warning one
//! its fix, indented so that the status column stays easy to scan.

use std::fmt::Write as _;
use std::time::Duration;

use crate::conformance::{CheckReport, CheckStatus, SuiteReport, TargetSummary, format_duration};
use crate::scenario::Scenario;

/// Indent of the lines below a check's status line.
const DETAIL_INDENT: &str = "      ";

/// The width fix texts are wrapped to, indent included.
const WRAP_WIDTH: usize = 80;

/// Renders the line printed before the first check.
pub fn header(target: &TargetSummary, checks: usize, deadline: Duration) -> String {
    let noun = if checks == 1 { "check" } else { "checks" };
    let destination = if target.embedded_receiver {
        format!("{} (embedded reference receiver)", target.general_url)
    } else if target.general_url == target.integration_url {
        target.general_url.clone()
    } else {
        format!(
            "general {} and integration {}",
            target.general_url, target.integration_url
        )
    };
    format!(
        "running {checks} {noun} against {destination}, deadline {}\n",
        format_duration(deadline)
    )
}

/// Renders the block printed when a check finishes. `name_width` aligns
/// the time column across checks.
pub fn check_block(check: &CheckReport, name_width: usize) -> String {
    let mut text = String::new();
    let label = check.status.label();
    if check.status == CheckStatus::Skip {
        let _ = writeln!(text, "{label}  {}", check.name);
    } else {
        let _ = writeln!(
            text,
            "{label}  {:<name_width$}  {:>8}",
            check.name,
            format_duration(check.elapsed)
        );
    }

    if let Some(reason) = &check.skip_reason {
        let _ = writeln!(text, "{DETAIL_INDENT}{reason}");
    }
    for finding in &check.findings {
        let _ = writeln!(text, "{DETAIL_INDENT}{}: {}", finding.step, finding.message);
    }
    if check.status != CheckStatus::Skip {
        for (step, reason) in skipped_steps(check) {
            let _ = writeln!(text, "{DETAIL_INDENT}{step}: skipped: {reason}");
        }
    }
    if matches!(check.status, CheckStatus::Fail | CheckStatus::Warn) {
        text.push_str(&wrap_paragraph("fix: ", &check.fix));
    }
    text
}

/// Lists the steps of a check that were skipped, with their reasons.
pub fn skipped_steps(check: &CheckReport) -> impl Iterator<Item = (&str, &str)> {
    check.steps.iter().filter_map(|step| {
        let reason = step.skip_reason.as_deref()?;
        Some((step.name.as_str(), reason))
    })
}

/// Renders the closing line with the counts and the wall time.
pub fn summary_line(report: &SuiteReport) -> String {
    let counts = report.summary;
    let noun = if counts.checks == 1 {
        "check"
    } else {
        "checks"
    };
    let mut text = String::new();
    if report.interrupted {
        text.push_str(
            "interrupted: the check in progress and the ones after it did not run; the counts \
             and reports cover the finished checks only\n",
        );
    }
    text.push_str(&format!(
        "{} {noun} in {}: {} passed, {} failed, {} warned, {} skipped\n",
        counts.checks,
        format_duration(report.elapsed),
        counts.passed,
        counts.failed,
        counts.warned,
        counts.skipped
    ));
    if report.token_rejected {
        text.push_str(token_note(report.target.token_known));
        text.push('\n');
    }
    text
}

/// Explains a run in which the receiver rejected every request that
/// should have been accepted with 401 or 403.
fn token_note(token_known: bool) -> &'static str {
    if token_known {
        "note: the receiver answered 401 or 403 to every request with the token, so the token is \
         probably wrong; check the value given with --token, --token-file or MEWSHOOK_TOKEN, and \
         the parameter name given with --token-param"
    } else {
        "note: the receiver answered 401 or 403 to every request, so it probably needs its token; \
         give it with --token, --token-file or MEWSHOOK_TOKEN"
    }
}

/// Renders the whole output of a run, as printed piece by piece while it
/// runs.
pub fn render(report: &SuiteReport) -> String {
    let width = name_width(report.checks.iter().map(|check| check.name.as_str()));
    let mut text = header(&report.target, report.checks.len(), report.deadline);
    for check in &report.checks {
        text.push_str(&check_block(check, width));
    }
    text.push_str(&summary_line(report));
    text
}

/// Returns the width of the longest name.
pub fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|name| name.chars().count()).max().unwrap_or(0)
}

/// Renders the `--list` output: name, severity and summary of each check.
/// The severity is labelled, because a bare `fail` reads like a result.
pub fn list(scenarios: &[Scenario]) -> String {
    let width = name_width(scenarios.iter().map(|scenario| scenario.name.as_str()));
    let mut text = String::new();
    for scenario in scenarios {
        let _ = writeln!(
            text,
            "{:<width$}  severity: {:<4}  {}",
            scenario.name,
            scenario.worst_severity().to_string(),
            scenario.summary
        );
    }
    text
}

/// Wraps `text` as one paragraph per blank-line-separated block, the first
/// line led by `lead`, the rest indented to line up after it.
fn wrap_paragraph(lead: &str, text: &str) -> String {
    let indent = format!("{DETAIL_INDENT}{}", " ".repeat(lead.len()));
    let mut output = String::new();
    let mut line = format!("{DETAIL_INDENT}{lead}");
    let mut line_has_words = false;

    for (index, paragraph) in text.split("\n\n").enumerate() {
        if index > 0 {
            output.push_str(line.trim_end());
            output.push_str("\n\n");
            line = indent.clone();
            line_has_words = false;
        }
        for word in paragraph.split_whitespace() {
            if line_has_words && line.chars().count() + 1 + word.chars().count() > WRAP_WIDTH {
                output.push_str(&line);
                output.push('\n');
                line = indent.clone();
                line_has_words = false;
            }
            if line_has_words {
                line.push(' ');
            }
            line.push_str(word);
            line_has_words = true;
        }
    }
    output.push_str(&line);
    output.push('\n');
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_width_and_indent() {
        let text = "Answer 2xx to every well-formed General Webhook, whatever its \
                    discriminators: skip the events you do not need instead of rejecting.";
        let wrapped = wrap_paragraph("fix: ", text);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines.len() > 1, "{wrapped}");
        assert!(lines[0].starts_with("      fix: Answer"), "{wrapped}");
        for line in &lines[1..] {
            assert!(line.starts_with("           "), "{line:?}");
        }
        assert!(lines.iter().all(|line| line.chars().count() <= WRAP_WIDTH));
    }

    #[test]
    fn wrap_keeps_paragraphs() {
        let wrapped = wrap_paragraph("fix: ", "one\n\ntwo");
        assert_eq!(wrapped, "      fix: one\n\n           two\n");
    }

    #[test]
    fn long_word_stays_whole() {
        let word = "x".repeat(100);
        let wrapped = wrap_paragraph("fix: ", &word);
        assert_eq!(wrapped, format!("      fix: {word}\n"));
    }
}
