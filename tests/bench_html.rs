//! The HTML report opened in headless Chromium: the page's script runs
//! without errors and draws both charts. Chromium is required; install it
//! with `apt-get install -y chromium` (Debian) if the test reports it
//! missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Finds a Chromium binary on PATH.
fn chromium() -> PathBuf {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML report, but none of {names:?} is on PATH; \
         install it with `apt-get install -y chromium`"
    );
}

/// Writes an HTML report with `args` added to a short run.
fn write_report(dir: &Path, args: &[&str]) -> PathBuf {
    let path = dir.join("bench.html");
    let output = Command::new(env!("CARGO_BIN_EXE_mewshook"))
        .args(["bench", "--requests", "200", "--warmup", "0s", "--html"])
        .arg(&path)
        .args(args)
        .env("CI", "true")
        .output()
        .expect("the mewshook binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// Loads `page` in headless Chromium and returns the DOM after its
/// scripts ran.
fn rendered_dom(page: &Path, profile: &Path) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn check_page(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), args);
    let source = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched from anywhere.
    for external in ["src=\"http", "href=\"http", "@import", "url(", "<link"] {
        assert!(!source.contains(external), "the page loads {external}");
    }

    let dom = rendered_dom(&page, &dir.path().join("profile"));
    // The script's own text names these attributes, so only the <body>
    // tag itself counts.
    let body_start = dom.find("<body").expect("the DOM has a body");
    let body_tag = &dom[body_start..body_start + dom[body_start..].find('>').unwrap()];
    assert!(
        body_tag.contains("data-charts=\"2\""),
        "charts not drawn: {body_tag}"
    );
    assert!(!body_tag.contains("data-errors"), "script errors: {dom}");
    assert!(
        dom.contains("<pre id=\"script-errors\"></pre>"),
        "script errors listed: {dom}"
    );
    for chart in ["id=\"percentile-svg\"", "id=\"timeline-svg\""] {
        assert!(dom.contains(chart), "{chart} missing");
    }
    assert!(dom.matches("<polyline").count() >= 3, "too few lines drawn");
}

#[test]
fn closed_loop_page_draws_both_charts() {
    check_page(&[]);
}

#[test]
fn open_loop_page_draws_both_charts() {
    check_page(&["--rate", "400"]);
}
