//! `--fail-if` thresholds: parsing and evaluation.
//!
//! A threshold is `METRIC OP VALUE`, and the run fails (exit code
//! [`crate::exit::THRESHOLD_CROSSED`]) when the comparison holds:
//!
//! | Metric | Value | Meaning |
//! | --- | --- | --- |
//! | `p50`, `p99.9`, any `pN` with 0 < N ≤ 100 | duration: `250us`, `200ms`, `1.5s`, `2m` | that percentile of the headline latency |
//! | `max`, `mean` | duration | the largest or mean headline latency |
//! | `errors` | `N%` of counted requests, or a count `N` | requests without a 2xx response |
//! | `breaches` | `N%` or `N` | responses later than the Mews deadline, plus timeouts |
//! | `late` | `N%` or `N` | open loop only: late sends plus sends that never went out |
//! | `rate` | requests per second, `N` or `N/s` | the achieved rate |
//!
//! `OP` is one of `>`, `>=`, `<`, `<=`. The headline latency is the
//! corrected one in open loop and the service latency in closed loop. A
//! latency threshold with no latency recorded, or a percentage of zero
//! requests, counts as crossed: a run that measured nothing must not pass.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The figure a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A percentile of the headline latency, from 0 (excluded) to 100.
    Percentile(f64),
    /// The largest headline latency.
    Max,
    /// The mean headline latency.
    Mean,
    /// Requests without a 2xx response.
    Errors,
    /// Deadline breaches: late responses plus timeouts.
    Breaches,
    /// Late and unsent sends (open loop only).
    Late,
    /// The achieved rate in requests per second.
    Rate,
}

/// The comparison that makes a threshold crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Above,
    /// `>=`
    AtLeast,
    /// `<`
    Below,
    /// `<=`
    AtMost,
}

impl Comparison {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Comparison::Above => observed > limit,
            Comparison::AtLeast => observed >= limit,
            Comparison::Below => observed < limit,
            Comparison::AtMost => observed <= limit,
        }
    }
}

/// The value a metric is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A latency.
    Latency(Duration),
    /// A percentage of the counted requests.
    Percent(f64),
    /// A number of requests.
    Count(u64),
    /// Requests per second.
    Rate(f64),
}

/// One parsed `--fail-if` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    comparison: Comparison,
    bound: Bound,
}

/// The valid forms, shown with every parse error.
const VALID_FORMS: &str = "write METRIC OP VALUE, for example p99>200ms, p99.9>1s, max>=5s, \
     mean>50ms, errors>1%, errors>0, breaches>0, late>0.5% (with --rate) or rate<500; \
     OP is >, >=, < or <=";

impl Threshold {
    /// Returns the expression as given, trimmed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns the metric compared.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Returns whether the threshold needs an open-loop run.
    pub fn needs_open_loop(&self) -> bool {
        self.metric == Metric::Late
    }

    /// Evaluates the threshold against a run's figures.
    pub fn evaluate(&self, figures: &Figures<'_>) -> ThresholdOutcome {
        let (crossed, observed) = match self.observe(figures) {
            Some((value, shown)) => (self.comparison.holds(value, self.limit()), shown),
            None => (true, self.missing_reason(figures).to_string()),
        };
        ThresholdOutcome {
            expression: self.text.clone(),
            crossed,
            observed,
        }
    }

    /// Returns the bound as a number in the unit [`observe`](Self::observe) uses:
    /// microseconds, percent, count or requests per second.
    fn limit(&self) -> f64 {
        match self.bound {
            Bound::Latency(duration) => duration.as_secs_f64() * 1e6,
            Bound::Percent(percent) => percent,
            Bound::Count(count) => count as f64,
            Bound::Rate(rate) => rate,
        }
    }

    /// Returns the observed value and how to show it, or `None` when the run has
    /// nothing to compare.
    fn observe(&self, figures: &Figures<'_>) -> Option<(f64, String)> {
        let latency = |value: u64| Some((value as f64, format_micros(value as f64)));
        match self.metric {
            Metric::Percentile(percent) => {
                let histogram = figures.latency.filter(|h| !h.is_empty())?;
                latency(histogram.value_at_quantile(percent / 100.0))
            }
            Metric::Max => latency(figures.latency.filter(|h| !h.is_empty())?.max()),
            Metric::Mean => {
                let histogram = figures.latency.filter(|h| !h.is_empty())?;
                Some((histogram.mean(), format_micros(histogram.mean())))
            }
            Metric::Errors => self.share(figures.errors, figures.requests),
            Metric::Breaches => self.share(figures.breaches, figures.requests),
            Metric::Late => self.share(figures.late, figures.scheduled),
            Metric::Rate => Some((figures.rate, format!("{:.1}/s", figures.rate))),
        }
    }

    /// Returns a count as a count or as a percentage of `total`, as the
    /// bound asks.
    fn share(&self, count: u64, total: u64) -> Option<(f64, String)> {
        match self.bound {
            Bound::Percent(_) if total == 0 => None,
            Bound::Percent(_) => {
                let percent = count as f64 * 100.0 / total as f64;
                Some((percent, format!("{percent:.3}% ({count} of {total})")))
            }
            _ => Some((count as f64, count.to_string())),
        }
    }

    fn missing_reason(&self, figures: &Figures<'_>) -> &'static str {
        match self.metric {
            Metric::Late if !figures.open_loop => "no schedule: late sends need --rate",
            Metric::Late => "nothing was scheduled",
            Metric::Errors | Metric::Breaches => "no requests were counted",
            _ => "no latency was recorded",
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text)
    }
}

/// Parses one `--fail-if` expression; the error names the expression and
/// shows the valid forms.
pub fn parse(text: &str) -> Result<Threshold, String> {
    let trimmed = text.trim();
    let invalid = |why: &str| format!("invalid threshold \"{text}\": {why}; {VALID_FORMS}");

    let (position, operator) = ["<=", ">=", "<", ">"]
        .iter()
        .filter_map(|op| trimmed.find(op).map(|at| (at, *op)))
        .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())))
        .ok_or_else(|| invalid("no comparison operator"))?;
    let name = trimmed[..position].trim();
    let value = trimmed[position + operator.len()..].trim();
    let comparison = match operator {
        ">" => Comparison::Above,
        ">=" => Comparison::AtLeast,
        "<" => Comparison::Below,
        _ => Comparison::AtMost,
    };
    if value.is_empty() {
        return Err(invalid("the value is missing"));
    }
    if value.starts_with(['<', '>', '=']) {
        return Err(invalid("more than one comparison operator"));
    }

    let metric = parse_metric(name).map_err(|why| invalid(&why))?;
    let bound = match metric {
        Metric::Percentile(_) | Metric::Max | Metric::Mean => {
            Bound::Latency(parse_latency(value).map_err(|why| invalid(&why))?)
        }
        Metric::Errors | Metric::Breaches | Metric::Late => {
            parse_share(value).map_err(|why| invalid(&why))?
        }
        Metric::Rate => Bound::Rate(parse_rate(value).map_err(|why| invalid(&why))?),
    };
    Ok(Threshold {
        text: trimmed.to_string(),
        metric,
        comparison,
        bound,
    })
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    match name.to_ascii_lowercase().as_str() {
        "" => Err("the metric is missing".to_string()),
        "max" => Ok(Metric::Max),
        "mean" => Ok(Metric::Mean),
        "errors" => Ok(Metric::Errors),
        "breaches" => Ok(Metric::Breaches),
        "late" => Ok(Metric::Late),
        "rate" => Ok(Metric::Rate),
        lower => {
            let number = lower
                .strip_prefix('p')
                .ok_or_else(|| format!("unknown metric \"{name}\""))?;
            let percent: f64 = number
                .parse()
                .map_err(|_| format!("unknown metric \"{name}\""))?;
            if percent.is_finite() && percent > 0.0 && percent <= 100.0 {
                Ok(Metric::Percentile(percent))
            } else {
                Err(format!(
                    "percentile \"{name}\" is out of range; use pN with N above 0 and at most 100, such as p50 or p99.9"
                ))
            }
        }
    }
}

/// Parses a latency such as `250us`, `200ms`, `1.5s` or `2m`.
fn parse_latency(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("\"{value}\" has no unit; write it like 250us, 200ms, 1.5s or 2m")
        })?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("\"{value}\" is not a duration; write it like 200ms"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        other => {
            return Err(format!(
                "unknown unit \"{other}\" in \"{value}\"; use us, ms, s or m"
            ));
        }
    };
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("\"{value}\" is not a valid duration"))
}

/// Parses `N%` or a whole count `N`.
fn parse_share(value: &str) -> Result<Bound, String> {
    if let Some(number) = value.strip_suffix('%') {
        let percent: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("\"{value}\" is not a percentage; write it like 1% or 0.5%"))?;
        if !(percent.is_finite() && (0.0..=100.0).contains(&percent)) {
            return Err(format!("\"{value}\" is outside 0% to 100%"));
        }
        return Ok(Bound::Percent(percent));
    }
    value.parse::<u64>().map(Bound::Count).map_err(|_| {
        format!("\"{value}\" is neither a percentage nor a whole count; write 1% or 0")
    })
}

/// Parses a rate: `N` or `N/s`.
fn parse_rate(value: &str) -> Result<f64, String> {
    let number = value.strip_suffix("/s").unwrap_or(value).trim();
    match number.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "\"{value}\" is not a rate; write requests per second such as 500 or 500/s"
        )),
    }
}

/// Formats microseconds for a threshold report.
fn format_micros(micros: f64) -> String {
    if micros >= 1e6 {
        format!("{:.3} s", micros / 1e6)
    } else {
        format!("{:.3} ms", micros / 1e3)
    }
}

/// The figures of a run that thresholds look at.
#[derive(Debug, Clone, Copy)]
pub struct Figures<'a> {
    /// The headline latency histogram, in microseconds.
    pub latency: Option<&'a Histogram<u64>>,
    /// Counted requests.
    pub requests: u64,
    /// Requests without a 2xx response.
    pub errors: u64,
    /// Late responses plus timeouts.
    pub breaches: u64,
    /// Late sends plus unsent ones (open loop).
    pub late: u64,
    /// Sends the schedule called for in the window (open loop).
    pub scheduled: u64,
    /// The achieved rate, per second.
    pub rate: f64,
    /// Whether the run was open loop.
    pub open_loop: bool,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdOutcome {
    /// The expression as given.
    pub expression: String,
    /// Whether the comparison held, which fails the run.
    pub crossed: bool,
    /// The observed value, or why there was none.
    pub observed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(histogram: Option<&Histogram<u64>>) -> Figures<'_> {
        Figures {
            latency: histogram,
            requests: 200,
            errors: 3,
            breaches: 0,
            late: 0,
            scheduled: 0,
            rate: 480.0,
            open_loop: false,
        }
    }

    #[test]
    fn parses_documented_forms() {
        let cases = [
            ("p99>200ms", Metric::Percentile(99.0), Comparison::Above),
            (
                " p99.9 >= 1s ",
                Metric::Percentile(99.9),
                Comparison::AtLeast,
            ),
            ("max>5s", Metric::Max, Comparison::Above),
            ("mean<=50ms", Metric::Mean, Comparison::AtMost),
            ("errors>1%", Metric::Errors, Comparison::Above),
            ("breaches>0", Metric::Breaches, Comparison::Above),
            ("late>0.5%", Metric::Late, Comparison::Above),
            ("rate<500/s", Metric::Rate, Comparison::Below),
            ("P50>250us", Metric::Percentile(50.0), Comparison::Above),
        ];
        for (text, metric, comparison) in cases {
            let threshold = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(threshold.metric, metric, "{text}");
            assert_eq!(threshold.comparison, comparison, "{text}");
            assert_eq!(threshold.text(), text.trim());
        }
        assert_eq!(
            parse("p99>1.5s").unwrap().bound,
            Bound::Latency(Duration::from_millis(1500))
        );
        assert_eq!(parse("errors>=10").unwrap().bound, Bound::Count(10));
    }

    #[test]
    fn rejects_bad_forms_naming_them() {
        let cases = [
            "p99",
            "p99>",
            ">200ms",
            "p99>>200ms",
            "p99>200",
            "p99>200 parsecs",
            "p101>1s",
            "p0>1s",
            "median>1s",
            "errors>1.5",
            "errors>101%",
            "rate<fast",
            "p99=200ms",
        ];
        for text in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(&format!("\"{text}\"")), "{text}: {error}");
            assert!(error.contains("p99>200ms"), "{text}: {error}");
        }
    }

    #[test]
    fn evaluates_latency_and_shares() {
        let mut histogram = super::super::stats::new_histogram();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000).unwrap();
        }
        let figures = figures(Some(&histogram));

        let p99 = parse("p99>900ms").unwrap().evaluate(&figures);
        assert!(p99.crossed, "{p99:?}");
        let p50 = parse("p50>900ms").unwrap().evaluate(&figures);
        assert!(!p50.crossed, "{p50:?}");
        let errors = parse("errors>1%").unwrap().evaluate(&figures);
        assert!(errors.crossed, "{errors:?}");
        assert!(errors.observed.contains("1.500%"), "{errors:?}");
        let few = parse("errors>3").unwrap().evaluate(&figures);
        assert!(!few.crossed, "{few:?}");
        let rate = parse("rate<500").unwrap().evaluate(&figures);
        assert!(rate.crossed, "{rate:?}");
    }

    #[test]
    fn nothing_measured_crosses() {
        let empty = super::super::stats::new_histogram();
        let outcome = parse("p99>1s").unwrap().evaluate(&figures(Some(&empty)));
        assert!(outcome.crossed);
        assert_eq!(outcome.observed, "no latency was recorded");
        let late = parse("late>0").unwrap().evaluate(&Figures {
            late: 0,
            ..figures(None)
        });
        assert!(!late.crossed, "a count needs no schedule: {late:?}");
        let share = parse("late>1%").unwrap().evaluate(&figures(None));
        assert!(share.crossed);
    }
}
