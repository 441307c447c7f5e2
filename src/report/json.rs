//! The JSON report: the whole [`SuiteReport`] with a schema name, as
//! documented in `docs/reports.md`.

use serde::Serialize;

use crate::conformance::SuiteReport;

/// The schema name written at the top of every JSON report. It changes
/// when a field is renamed or removed; new fields may appear without a
/// change.
pub const RUN_SCHEMA: &str = "mewshook.run.v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    #[serde(flatten)]
    report: &'a SuiteReport,
}

/// Renders `report` as pretty-printed JSON with a trailing newline.
pub fn render(report: &SuiteReport) -> Result<String, serde_json::Error> {
    let document = Document {
        schema: RUN_SCHEMA,
        report,
    };
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text)
}
