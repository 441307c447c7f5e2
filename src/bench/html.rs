//! The self-contained HTML report of `bench --html`.
//!
//! One file with inline CSS, an inline data block and an inline script
//! that draws two SVG charts: latency by percentile, and latency and rate
//! over time. It loads nothing from anywhere, so it opens offline. The
//! summary table is plain HTML and reads without the script.
//!
//! The script marks its progress on `<body>` so a headless browser can
//! check it: `data-charts` is the number of charts drawn, and any
//! script error sets `data-errors` and is listed in `#script-errors`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::json;

use super::report::{BenchReport, REPORTED_QUANTILES, format_rate, micros_as_ms};

/// The highest percentile the chart reaches, as a fraction: six nines.
const CHART_MAX_QUANTILE: f64 = 0.999_999;

/// Renders the report as one HTML page.
pub fn render(report: &BenchReport) -> String {
    let data = chart_data(report);
    // Inside <script>, "</script>" or "<!--" would end or confuse the
    // block, so every angle bracket and ampersand is escaped as JSON
    // allows.
    let data = data
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");

    // The summary goes in last because it carries the target URL, the one
    // text from outside that might spell a placeholder.
    PAGE.replace("{{SCRIPT}}", SCRIPT)
        .replace("{{DATA}}", &data)
        .replace("{{TITLE}}", &escape(&title(report)))
        .replace("{{SUMMARY}}", &summary_table(report))
}

fn title(report: &BenchReport) -> String {
    let pacing = match report.settings.target_rate {
        Some(rate) => format!("open loop at {}/s", format_rate(rate)),
        None => "closed loop".to_string(),
    };
    format!(
        "mewshook bench: {pacing}, {} connections",
        report.settings.concurrency
    )
}

/// Renders the figures as HTML tables.
fn summary_table(report: &BenchReport) -> String {
    let settings = &report.settings;
    let measurements = &report.result.measurements;
    let counts = &measurements.counts;
    let mut rows: Vec<(String, String)> = vec![
        ("Target".to_string(), settings.target.clone()),
        (
            "Started".to_string(),
            report
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        ("Client".to_string(), settings.client.to_string()),
        (
            "Requests".to_string(),
            format!(
                "{} counted, {} with a 2xx response, {} errors",
                counts.requests,
                counts.succeeded,
                counts.errors()
            ),
        ),
        (
            "Rate".to_string(),
            match settings.target_rate {
                Some(rate) => format!(
                    "{}/s achieved of {}/s asked",
                    format_rate(report.achieved_rate()),
                    format_rate(rate)
                ),
                None => format!("{}/s achieved", format_rate(report.achieved_rate())),
            },
        ),
        (
            "Deadline breaches".to_string(),
            format!(
                "{} ({} responses later than {} ms, {} timeouts)",
                counts.breaches(),
                counts.late_responses,
                settings.deadline_ms,
                counts.timeouts()
            ),
        ),
    ];
    if settings.target_rate.is_some() {
        rows.push((
            "Late sends".to_string(),
            format!(
                "{} of {} ({} waited for a connection), {} never sent",
                counts.late_sends,
                report.scheduled(),
                counts.late_sends_busy,
                report.result.unsent
            ),
        ));
    }
    if report.result.interrupted {
        rows.push(("Interrupted".to_string(), "yes".to_string()));
    }

    let mut html = String::from("<table class=\"summary\">\n");
    for (name, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&name),
            escape(&value)
        );
    }
    html.push_str("</table>\n");
    html.push_str(&latency_table(report));
    html
}

fn latency_table(report: &BenchReport) -> String {
    let measurements = &report.result.measurements;
    let open = report.open_loop();
    let mut html = String::from("<table class=\"latency\">\n<tr><th>ms</th>");
    if open {
        html.push_str("<th>corrected</th>");
    }
    html.push_str("<th>service</th></tr>\n");
    let mut rows: Vec<(&str, f64, f64)> = REPORTED_QUANTILES
        .iter()
        .map(|(quantile, label)| {
            (
                *label,
                measurements.corrected.value_at_quantile(*quantile) as f64,
                measurements.service.value_at_quantile(*quantile) as f64,
            )
        })
        .collect();
    rows.push((
        "max",
        measurements.corrected.max() as f64,
        measurements.service.max() as f64,
    ));
    rows.push((
        "mean",
        measurements.corrected.mean(),
        measurements.service.mean(),
    ));
    for (label, corrected, service) in rows {
        let _ = write!(html, "<tr><th>{label}</th>");
        if open {
            let _ = write!(html, "<td>{}</td>", micros_as_ms(corrected));
        }
        let _ = writeln!(html, "<td>{}</td></tr>", micros_as_ms(service));
    }
    html.push_str("</table>\n");
    html
}

/// Returns the points of a percentile curve: `[x, ms]` where `x` is the number
/// of nines, `-log10(1 - q)`, so that 90% is 1 and 99.9% is 3. The curve
/// stops at `1 - 1/count`: with 4000 values, nothing above 99.975% is
/// measured, so drawing further would only repeat the maximum.
fn percentile_curve(histogram: &Histogram<u64>) -> Vec<[f64; 2]> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let top = (1.0 - 1.0 / histogram.len() as f64).clamp(0.9, CHART_MAX_QUANTILE);
    let mut points: Vec<[f64; 2]> = histogram
        .iter_quantiles(5)
        .map(|step| {
            let quantile = step.quantile_iterated_to().min(top);
            let nines = -(1.0 - quantile).log10();
            [nines, step.value_iterated_to() as f64 / 1000.0]
        })
        .collect();
    points.dedup_by(|next, previous| next[0] <= previous[0] && next[1] == previous[1]);
    points
}

fn chart_data(report: &BenchReport) -> serde_json::Value {
    let measurements = &report.result.measurements;
    let open = report.open_loop();
    let timeline: Vec<serde_json::Value> = measurements
        .timeline
        .points()
        .iter()
        .map(|point| {
            let ms = |micros: Option<u64>| micros.map(|value| value as f64 / 1000.0);
            json!({
                "start": point.start.as_secs_f64(),
                "length": point.length.as_secs_f64(),
                "rate": point.rate(),
                "errors": point.errors,
                "p50": ms(point.p50_micros),
                "p99": ms(point.p99_micros),
                "max": ms(point.max_micros),
            })
        })
        .collect();
    json!({
        "open": open,
        "targetRate": report.settings.target_rate,
        "headline": if open { "corrected" } else { "service" },
        "percentiles": {
            "service": percentile_curve(&measurements.service),
            "corrected": if open { percentile_curve(&measurements.corrected) } else { Vec::new() },
        },
        "timeline": timeline,
    })
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; }
h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }
table.latency td { text-align: right; font-variant-numeric: tabular-nums; }
svg { width: 100%; height: auto; background: #fafafa; border: 1px solid #ddd; }
svg text { font-size: 12px; fill: #333; }
.axis { stroke: #888; stroke-width: 1; }
.grid { stroke: #e4e4e4; stroke-width: 1; }
#script-errors { color: #b00; white-space: pre-wrap; }
</style>
</head>
<body data-charts="0">
<h1>{{TITLE}}</h1>
{{SUMMARY}}
<h2>Latency by percentile</h2>
<div id="percentile-chart"></div>
<h2>Latency and rate over time</h2>
<div id="timeline-chart"></div>
<pre id="script-errors"></pre>
<script type="application/json" id="bench-data">{{DATA}}</script>
<script>
{{SCRIPT}}
</script>
</body>
</html>
"#;

const SCRIPT: &str = r##"
"use strict";
window.onerror = function (message, source, line) {
  var list = document.getElementById("script-errors");
  list.textContent += "script error: " + message + " (line " + line + ")\n";
  var count = Number(document.body.getAttribute("data-errors") || "0") + 1;
  document.body.setAttribute("data-errors", String(count));
};

var SVG = "http://www.w3.org/2000/svg";
var WIDTH = 900, HEIGHT = 360;
var MARGIN = { left: 70, right: 70, top: 20, bottom: 50 };
var COLORS = { corrected: "#c0392b", service: "#2471a3", p50: "#2471a3", p99: "#c0392b", rate: "#7d8c8c" };

function element(name, attributes, parent) {
  var node = document.createElementNS(SVG, name);
  for (var key in attributes) { node.setAttribute(key, attributes[key]); }
  if (parent) { parent.appendChild(node); }
  return node;
}

function label(parent, x, y, text, anchor) {
  var node = element("text", { x: x, y: y, "text-anchor": anchor || "middle" }, parent);
  node.textContent = text;
  return node;
}

// Rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(value) {
  if (!(value > 0)) { return 1; }
  var power = Math.pow(10, Math.floor(Math.log10(value)));
  var steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) {
    if (value <= steps[i] * power) { return steps[i] * power; }
  }
  return 10 * power;
}

function frame(container, title) {
  var svg = element("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, role: "img", "aria-label": title });
  container.appendChild(svg);
  return svg;
}

function yAxis(svg, max, unit, right) {
  var x = right ? WIDTH - MARGIN.right : MARGIN.left;
  var plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  element("line", { x1: x, y1: MARGIN.top, x2: x, y2: HEIGHT - MARGIN.bottom, "class": "axis" }, svg);
  for (var i = 0; i <= 4; i++) {
    var value = max * i / 4;
    var y = HEIGHT - MARGIN.bottom - plotHeight * i / 4;
    if (!right) {
      element("line", { x1: MARGIN.left, y1: y, x2: WIDTH - MARGIN.right, y2: y, "class": "grid" }, svg);
    }
    label(svg, right ? x + 6 : x - 6, y + 4, formatNumber(value), right ? "start" : "end");
  }
  var middle = MARGIN.top + plotHeight / 2;
  var unitX = right ? WIDTH - 12 : 14;
  var text = label(svg, unitX, middle, unit);
  text.setAttribute("transform", "rotate(-90 " + unitX + " " + middle + ")");
}

function formatNumber(value) {
  if (value === 0) { return "0"; }
  if (value >= 100) { return value.toFixed(0); }
  if (value >= 10) { return value.toFixed(1); }
  return value.toFixed(value >= 1 ? 2 : 3);
}

function polyline(svg, points, color, dashed) {
  if (points.length === 0) { return; }
  var text = points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ");
  var attributes = { points: text, fill: "none", stroke: color, "stroke-width": 2 };
  if (dashed) { attributes["stroke-dasharray"] = "5 3"; }
  element("polyline", attributes, svg);
}

function legend(svg, entries) {
  var x = MARGIN.left + 10;
  entries.forEach(function (entry) {
    element("rect", { x: x, y: MARGIN.top + 6, width: 14, height: 4, fill: entry[1] }, svg);
    label(svg, x + 20, MARGIN.top + 12, entry[0], "start");
    x += 30 + entry[0].length * 7;
  });
}

function noData(svg, text) {
  label(svg, WIDTH / 2, HEIGHT / 2, text);
}

function percentileChart(data) {
  var container = document.getElementById("percentile-chart");
  var svg = frame(container, "Latency by percentile");
  svg.setAttribute("id", "percentile-svg");
  var series = [];
  if (data.open) { series.push(["corrected", data.percentiles.corrected]); }
  series.push(["service", data.percentiles.service]);
  var all = [];
  series.forEach(function (s) { all = all.concat(s[1]); });
  if (all.length === 0) { noData(svg, "no latency recorded"); return true; }

  var maxNines = 1;
  var maxMs = 0;
  all.forEach(function (p) { maxNines = Math.max(maxNines, p[0]); maxMs = Math.max(maxMs, p[1]); });
  maxNines = Math.ceil(maxNines);
  maxMs = niceMax(maxMs);
  var plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  var plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  var x = function (nines) { return MARGIN.left + plotWidth * nines / maxNines; };
  var y = function (ms) { return HEIGHT - MARGIN.bottom - plotHeight * ms / maxMs; };

  yAxis(svg, maxMs, "latency (ms)", false);
  element("line", { x1: MARGIN.left, y1: HEIGHT - MARGIN.bottom, x2: WIDTH - MARGIN.right, y2: HEIGHT - MARGIN.bottom, "class": "axis" }, svg);
  for (var n = 0; n <= maxNines; n++) {
    var percent = n === 0 ? "0%" : (100 - 100 / Math.pow(10, n)).toFixed(Math.max(0, n - 2)) + "%";
    label(svg, x(n), HEIGHT - MARGIN.bottom + 18, percent);
    element("line", { x1: x(n), y1: MARGIN.top, x2: x(n), y2: HEIGHT - MARGIN.bottom, "class": "grid" }, svg);
  }
  label(svg, MARGIN.left + plotWidth / 2, HEIGHT - 8, "percentile");
  series.forEach(function (s) {
    polyline(svg, s[1].map(function (p) { return [x(p[0]), y(p[1])]; }), COLORS[s[0]], false);
  });
  legend(svg, series.map(function (s) { return [s[0], COLORS[s[0]]]; }));
  return true;
}

function timelineChart(data) {
  var container = document.getElementById("timeline-chart");
  var svg = frame(container, "Latency and rate over time");
  svg.setAttribute("id", "timeline-svg");
  var points = data.timeline;
  if (points.length === 0) { noData(svg, "no time series recorded"); return true; }

  var end = 0, maxMs = 0, maxRate = 0;
  points.forEach(function (p) {
    end = Math.max(end, p.start + p.length);
    maxMs = Math.max(maxMs, p.p99 || 0);
    maxRate = Math.max(maxRate, p.rate);
  });
  if (data.targetRate) { maxRate = Math.max(maxRate, data.targetRate); }
  maxMs = niceMax(maxMs);
  maxRate = niceMax(maxRate);
  end = end > 0 ? end : 1;
  var plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  var plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  var x = function (seconds) { return MARGIN.left + plotWidth * seconds / end; };
  var yMs = function (ms) { return HEIGHT - MARGIN.bottom - plotHeight * ms / maxMs; };
  var yRate = function (rate) { return HEIGHT - MARGIN.bottom - plotHeight * rate / maxRate; };

  yAxis(svg, maxMs, data.headline + " latency (ms)", false);
  yAxis(svg, maxRate, "rate (per second)", true);
  element("line", { x1: MARGIN.left, y1: HEIGHT - MARGIN.bottom, x2: WIDTH - MARGIN.right, y2: HEIGHT - MARGIN.bottom, "class": "axis" }, svg);
  var step = niceMax(end / 6);
  for (var seconds = 0; seconds <= end + step / 1000; seconds += step) {
    label(svg, x(seconds), HEIGHT - MARGIN.bottom + 18, String(Number(seconds.toPrecision(6))));
  }
  label(svg, MARGIN.left + plotWidth / 2, HEIGHT - 8, "seconds since the start of measurement");

  points.forEach(function (p) {
    var height = HEIGHT - MARGIN.bottom - yRate(p.rate);
    element("rect", {
      x: x(p.start), y: yRate(p.rate), width: Math.max(1, x(p.start + p.length) - x(p.start) - 1),
      height: Math.max(0, height), fill: COLORS.rate, opacity: 0.35
    }, svg);
  });
  var middle = function (p) { return x(p.start + p.length / 2); };
  var withLatency = points.filter(function (p) { return p.p50 !== null; });
  polyline(svg, withLatency.map(function (p) { return [middle(p), yMs(p.p50)]; }), COLORS.p50, false);
  polyline(svg, withLatency.map(function (p) { return [middle(p), yMs(p.p99)]; }), COLORS.p99, false);
  if (data.targetRate) {
    polyline(svg, [[MARGIN.left, yRate(data.targetRate)], [WIDTH - MARGIN.right, yRate(data.targetRate)]], COLORS.rate, true);
  }
  legend(svg, [["p50", COLORS.p50], ["p99", COLORS.p99], ["rate", COLORS.rate]]);
  return true;
}

(function () {
  var data = JSON.parse(document.getElementById("bench-data").textContent);
  var drawn = 0;
  if (percentileChart(data)) { drawn += 1; }
  if (timelineChart(data)) { drawn += 1; }
  document.body.setAttribute("data-charts", String(drawn));
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn percentile_curve_counts_nines() {
        let mut histogram = super::super::stats::new_histogram();
        for value in 1..=10_000u64 {
            histogram.record(value).unwrap();
        }
        let curve = percentile_curve(&histogram);
        assert!(curve.len() > 10, "{}", curve.len());
        let last = curve.last().unwrap();
        assert!(last[0] > 3.9, "{last:?}");
        assert!(last[0] <= 6.0, "{last:?}");
        assert!(curve.windows(2).all(|pair| pair[1][1] >= pair[0][1]));
    }
}
