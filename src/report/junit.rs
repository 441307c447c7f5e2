//! The JUnit XML report, for the test result views of CI systems.
//!
//! Each check is one test case in one test suite. A failed check is a
//! `<failure>` whose message is its first finding and whose text lists all
//! findings and the fix. A skipped check is `<skipped>` with the reason.
//! JUnit has no warning status, so a check that passed with a warning is a
//! success whose `<system-out>` contains the warnings. Steps skipped within
//! a check that ran are listed in `<system-out>` too.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::terminal;
use crate::conformance::{CheckReport, CheckStatus, SuiteReport};

/// The name of the report and of its one test suite.
pub const SUITE_NAME: &str = "mewshook conformance";

/// Renders `report` as JUnit XML.
pub fn render(report: &SuiteReport) -> Result<String, quick_junit::SerializeError> {
    let mut junit = Report::new(SUITE_NAME);
    junit.set_timestamp(report.started_at);
    junit.set_time(report.elapsed);

    let mut suite = TestSuite::new(SUITE_NAME);
    suite.set_timestamp(report.started_at);
    suite.set_time(report.elapsed);
    suite.add_property(("general_url", report.target.general_url.as_str()));
    suite.add_property(("integration_url", report.target.integration_url.as_str()));
    suite.add_property(("seed", report.seed.to_string().as_str()));
    suite.add_test_cases(report.checks.iter().map(test_case));
    if report.interrupted {
        suite.add_property(("interrupted", "true"));
        // A CI job that reads only the JUnit file must not show an
        // interrupted run as green, so the interruption is an error case.
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message("the run was interrupted before every check finished");
        suite.add_test_case(TestCase::new("run interrupted", status));
    }

    junit.add_test_suite(suite);
    junit.to_string()
}

fn test_case(check: &CheckReport) -> TestCase {
    let findings: Vec<String> = check
        .findings
        .iter()
        .map(|finding| format!("{}: {}", finding.step, finding.message))
        .collect();

    let status = match check.status {
        CheckStatus::Pass | CheckStatus::Warn => TestCaseStatus::success(),
        CheckStatus::Fail => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(findings.first().cloned().unwrap_or_default());
            status.set_type("conformance");
            status.set_description(format!("{}\n\nfix: {}", findings.join("\n"), check.fix));
            status
        }
        CheckStatus::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(check.skip_reason.clone().unwrap_or_default());
            status
        }
    };

    let mut case = TestCase::new(check.name.as_str(), status);
    case.set_classname(check.file.as_str());
    case.set_time(check.elapsed);
    let mut notes: Vec<String> = Vec::new();
    if check.status == CheckStatus::Warn {
        notes.extend(findings.iter().map(|line| format!("warning: {line}")));
    }
    if check.status != CheckStatus::Skip {
        notes.extend(
            terminal::skipped_steps(check)
                .map(|(step, reason)| format!("skipped step: {step}: {reason}")),
        );
    }
    if check.status == CheckStatus::Warn {
        notes.push(format!("fix: {}", check.fix));
    }
    if !notes.is_empty() {
        case.set_system_out(format!("{}\n", notes.join("\n")));
    }
    case
}
