//! Charts for people: typed series in, server-rendered SVG (or an HTML table) out.
//!
//! Every chart is an askama template under `templates/charts/`, so every label (trace names,
//! model names, score names: text strangers wrote) is escaped there; pages put the rendered
//! markup in with `|safe`. Geometry is computed here, in plain numbers. Charts carry their own
//! meaning without colour: axes with units, a legend whose entries repeat each series' marker
//! shape and dash, values printed on bars, and a `<title>` tooltip on every point and bar. Colours
//! are CSS classes (`chart-s0`…) of the stylesheet, which has light and dark values and never the
//! error colour. A chart without data says so.

use askama::Template;
use chrono::{DateTime, Utc};

/// What a figure counts or measures, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Usd,
    Tokens,
    Millis,
    /// A plain number (score values).
    Plain,
}

impl Unit {
    /// The unit of an engine measure (its name as the metrics query has it).
    pub fn of_measure(measure: &str, aggregation: &str) -> Unit {
        if aggregation == "count" {
            return Unit::Count;
        }
        match measure {
            "totalCost" | "inputCost" | "outputCost" => Unit::Usd,
            "totalTokens" | "inputTokens" | "outputTokens" => Unit::Tokens,
            "latency" | "timeToFirstToken" | "streamingLatency" => Unit::Millis,
            "count" | "observationsCount" | "scoresCount" | "countScores" => Unit::Count,
            _ => Unit::Plain,
        }
    }

    /// The axis caption: what the numbers are in.
    pub fn caption(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Usd => "USD",
            Unit::Tokens => "tokens",
            Unit::Millis => "time",
            Unit::Plain => "value",
        }
    }
}

/// `value` as a person reads it, short: `$0.0042`, `$1.25`, `12.3k` (tokens), `850 ms`, `1.2 s`.
pub fn format_value(unit: Unit, value: f64) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    match unit {
        Unit::Usd => {
            let abs = value.abs();
            let sign = if value < 0.0 { "-" } else { "" };
            if abs == 0.0 {
                "$0".to_string()
            } else if abs >= 1000.0 {
                format!("{sign}${}", compact(abs))
            } else if abs >= 0.1 {
                format!("{sign}${abs:.2}")
            } else {
                format!("{sign}${}", significant(abs, 2))
            }
        }
        Unit::Tokens | Unit::Count => compact(value),
        Unit::Millis => {
            let abs = value.abs();
            if abs < 1.0 && abs > 0.0 {
                format!("{value:.2} ms")
            } else if abs < 1000.0 {
                format!("{value:.0} ms")
            } else if abs < 60_000.0 {
                format!("{} s", trim_zeros(&format!("{:.2}", value / 1000.0)))
            } else {
                format!("{} min", trim_zeros(&format!("{:.1}", value / 60_000.0)))
            }
        }
        Unit::Plain => {
            if value.abs() >= 10_000.0 {
                compact(value)
            } else {
                trim_zeros(&format!("{value:.3}"))
            }
        }
    }
}

/// `value` with its unit spelled out, for tooltips and single figures: `12,345 tokens`.
pub fn format_full(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Tokens => format!("{} tokens", grouped(value)),
        Unit::Count => grouped(value),
        Unit::Usd if value.abs() >= 1000.0 => format!("${}", grouped(value)),
        _ => format_value(unit, value),
    }
}

fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// A positive number to `digits` significant digits, without trailing zeros.
fn significant(value: f64, digits: i32) -> String {
    let magnitude = value.log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    trim_zeros(&format!("{value:.decimals$}"))
}

/// 1234 → `1.2k`, 3_400_000 → `3.4M`; under 1000 as is (up to two decimals).
fn compact(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e9 {
        (value / 1e9, "B")
    } else if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e3 {
        (value / 1e3, "k")
    } else {
        return trim_zeros(&format!("{value:.2}"));
    };
    format!("{}{suffix}", trim_zeros(&format!("{scaled:.1}")))
}

/// 12345.6 → `12,346`; under 10 keeps two decimals.
fn grouped(value: f64) -> String {
    if value.abs() < 10.0 && value.fract() != 0.0 {
        return trim_zeros(&format!("{value:.2}"));
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Tick values from 0 (or the minimum, if negative) to a round number at or above `max`: about
/// `count` steps of 1, 2 or 5 times a power of ten.
pub fn nice_ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    let low = min.min(0.0);
    let high = if max > low { max } else { low + 1.0 };
    let rough = (high - low) / count.max(1) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    let start = (low / step).floor() * step;
    let mut ticks = Vec::new();
    let mut t = start;
    while t < high + step * 0.999 && ticks.len() < 20 {
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        if t >= high {
            break;
        }
        t += step;
    }
    ticks
}

/// One line of a time-series chart: a value per bucket (`None`: no figure there).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Lines over time buckets.
#[derive(Debug, Clone)]
pub struct TimeSeries {
    pub buckets: Vec<DateTime<Utc>>,
    pub series: Vec<Series>,
    pub unit: Unit,
}

/// Bars by label (a dimension's values), longest first as given.
#[derive(Debug, Clone)]
pub struct Bars {
    pub bars: Vec<(String, f64)>,
    pub unit: Unit,
}

/// Counts per bin `[low, high)` of values in `unit`.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub bins: Vec<(f64, f64, f64)>,
    pub unit: Unit,
}

/// A table: column headings, then rows of cells already written for people.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headings: Vec<String>,
    /// Which columns are figures (aligned right).
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// The marker shapes and dash patterns that tell series apart without colour, in order.
const SHAPES: [&str; 6] = [
    "circle", "square", "triangle", "diamond", "circle", "square",
];
const DASHES: [&str; 6] = ["", "", "", "", "6 3", "2 3"];
/// Series after these share the last style; a chart shows the first ones and says so.
pub const MAX_SERIES: usize = 6;

const EMPTY: &str = "No data in this range";

pub struct Tick {
    pub at: String,
    pub label: String,
}

pub struct Point {
    pub x: String,
    pub y: String,
    pub title: String,
}

pub struct LineView {
    pub index: usize,
    pub name: String,
    pub path: String,
    pub dash: &'static str,
    pub shape: &'static str,
    pub points: Vec<Point>,
}

#[derive(Template)]
#[template(path = "charts/line.svg", escape = "html")]
pub struct LineChart {
    pub label: String,
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub caption: &'static str,
    pub lines: Vec<LineView>,
    pub hidden_series: usize,
    pub empty: bool,
    pub empty_text: &'static str,
}

pub struct BarView {
    pub label: String,
    pub title: String,
    pub value_text: String,
    pub y: String,
    pub text_y: String,
    pub width: String,
    pub value_x: String,
}

#[derive(Template)]
#[template(path = "charts/bars.svg", escape = "html")]
pub struct BarChart {
    pub label: String,
    pub width: u32,
    pub height: u32,
    pub label_width: u32,
    pub bar_height: u32,
    pub bars: Vec<BarView>,
    pub empty: bool,
    pub empty_text: &'static str,
}

pub struct ColumnView {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "charts/histogram.svg", escape = "html")]
pub struct HistogramChart {
    pub label: String,
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub caption: &'static str,
    pub columns: Vec<ColumnView>,
    pub empty: bool,
    pub empty_text: &'static str,
}

#[derive(Template)]
#[template(path = "charts/number.html", escape = "html")]
pub struct NumberChart {
    pub label: String,
    pub text: String,
    pub full: String,
    pub empty: bool,
    pub empty_text: &'static str,
}

#[derive(Template)]
#[template(path = "charts/table.html", escape = "html")]
pub struct TableChart {
    pub label: String,
    /// Each heading and cell with whether it is a figure (aligned right).
    pub headings: Vec<(String, bool)>,
    pub rows: Vec<Vec<(String, bool)>>,
    pub empty_text: &'static str,
}

/// Coordinates are written with one decimal: enough for a screen, short in the page.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A time bucket's label on the axis: the clock within a day, the date across days.
fn time_label(at: DateTime<Utc>, span_secs: i64) -> String {
    if span_secs <= 2 * 86_400 {
        at.format("%H:%M").to_string()
    } else {
        at.format("%b %-d").to_string()
    }
}

/// Renders `chart` as a line chart `width` wide, described by `label` for screen readers.
pub fn line_chart(label: &str, chart: &TimeSeries, width: u32) -> Result<String, askama::Error> {
    let (height, left, right, top, bottom) = (232u32, 64u32, 16u32, 24u32, 40u32);
    let shown: Vec<&Series> = chart.series.iter().take(MAX_SERIES).collect();
    let max = shown
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(f64::MIN, |a, &b| a.max(b));
    let min = shown
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(f64::MAX, |a, &b| a.min(b));
    // Buckets the engine filled with zeros are no data: a range of nothing says so.
    let empty = chart.buckets.is_empty()
        || !shown
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .any(|v| *v != 0.0);
    let ticks = if empty {
        Vec::new()
    } else {
        nice_ticks(min, max, 4)
    };
    let (low, high) = (
        ticks.first().copied().unwrap_or(0.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    let plot_w = f64::from(width - left - right);
    let plot_h = f64::from(height - top - bottom);
    let n = chart.buckets.len();
    let x_of = |i: usize| {
        f64::from(left)
            + if n <= 1 {
                plot_w / 2.0
            } else {
                plot_w * i as f64 / (n - 1) as f64
            }
    };
    let y_of =
        |v: f64| f64::from(top) + plot_h - (v - low) / (high - low).max(f64::MIN_POSITIVE) * plot_h;
    let span = match (chart.buckets.first(), chart.buckets.last()) {
        (Some(a), Some(b)) => (*b - *a).num_seconds(),
        _ => 0,
    };
    let y_ticks = ticks
        .iter()
        .map(|&t| Tick {
            at: px(y_of(t)),
            label: format_value(chart.unit, t),
        })
        .collect();
    let label_count = (width / 110).max(2) as usize;
    let every = n.div_ceil(label_count).max(1);
    let x_ticks = if empty {
        Vec::new()
    } else {
        (0..n)
            .step_by(every)
            .map(|i| Tick {
                at: px(x_of(i)),
                label: time_label(chart.buckets[i], span),
            })
            .collect()
    };
    let lines = if empty {
        Vec::new()
    } else {
        shown
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let mut path = String::new();
                let mut pen_down = false;
                let mut points = Vec::new();
                for (i, v) in s.values.iter().enumerate().take(n) {
                    match v {
                        Some(v) => {
                            let (x, y) = (px(x_of(i)), px(y_of(*v)));
                            path.push_str(if pen_down { " L" } else { " M" });
                            path.push_str(&format!("{x} {y}"));
                            pen_down = true;
                            points.push(Point {
                                x,
                                y,
                                title: format!(
                                    "{}: {} at {}",
                                    s.name,
                                    format_full(chart.unit, *v),
                                    chart.buckets[i].format("%Y-%m-%d %H:%M UTC")
                                ),
                            });
                        }
                        None => pen_down = false,
                    }
                }
                LineView {
                    index,
                    name: s.name.clone(),
                    path: path.trim().to_string(),
                    dash: DASHES[index],
                    shape: SHAPES[index],
                    points,
                }
            })
            .collect()
    };
    LineChart {
        label: label.to_string(),
        width,
        height,
        left,
        right,
        top,
        bottom,
        y_ticks,
        x_ticks,
        caption: chart.unit.caption(),
        lines,
        hidden_series: chart.series.len().saturating_sub(MAX_SERIES),
        empty,
        empty_text: EMPTY,
    }
    .render()
}

/// Renders horizontal bars, a row per label with its value written beside the bar.
pub fn bar_chart(label: &str, chart: &Bars, width: u32) -> Result<String, askama::Error> {
    let bar_height = 22u32;
    let label_width = (width / 3).min(220);
    let value_room = 80u32;
    let max = chart.bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let plot = f64::from(width.saturating_sub(label_width + value_room + 8));
    let bars = chart
        .bars
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let w = if max > 0.0 {
                (value.max(0.0) / max * plot).max(1.0)
            } else {
                1.0
            };
            let y = f64::from(4 + i as u32 * (bar_height + 6));
            BarView {
                label: name.clone(),
                title: format!("{name}: {}", format_full(chart.unit, *value)),
                value_text: format_value(chart.unit, *value),
                y: px(y),
                text_y: px(y + f64::from(bar_height) / 2.0 + 4.0),
                width: px(w),
                value_x: px(f64::from(label_width + 8) + w + 6.0),
            }
        })
        .collect::<Vec<_>>();
    let empty = bars.is_empty();
    let height = if empty {
        60
    } else {
        8 + bars.len() as u32 * (bar_height + 6)
    };
    BarChart {
        label: label.to_string(),
        width,
        height,
        label_width,
        bar_height,
        bars,
        empty,
        empty_text: EMPTY,
    }
    .render()
}

/// Renders a histogram: a column per bin, the bin's range on the axis below.
pub fn histogram_chart(
    label: &str,
    chart: &Histogram,
    width: u32,
) -> Result<String, askama::Error> {
    let (height, left, right, top, bottom) = (212u32, 52u32, 16u32, 24u32, 40u32);
    let max = chart.bins.iter().map(|b| b.2).fold(0.0f64, f64::max);
    let empty = chart.bins.is_empty() || max <= 0.0;
    let ticks = if empty {
        Vec::new()
    } else {
        nice_ticks(0.0, max, 4)
    };
    let high = ticks.last().copied().unwrap_or(1.0);
    let plot_w = f64::from(width - left - right);
    let plot_h = f64::from(height - top - bottom);
    let n = chart.bins.len().max(1);
    let slot = plot_w / n as f64;
    let y_of = |v: f64| f64::from(top) + plot_h - v / high * plot_h;
    let columns = if empty {
        Vec::new()
    } else {
        chart
            .bins
            .iter()
            .enumerate()
            .map(|(i, (lo, hi, count))| ColumnView {
                x: px(f64::from(left) + slot * i as f64 + 1.0),
                y: px(y_of(*count)),
                width: px((slot - 2.0).max(1.0)),
                height: px((f64::from(top) + plot_h - y_of(*count)).max(0.0)),
                title: format!(
                    "{} to {}: {}",
                    format_value(chart.unit, *lo),
                    format_value(chart.unit, *hi),
                    format_full(Unit::Count, *count)
                ),
            })
            .collect()
    };
    let every = n.div_ceil((width / 90).max(2) as usize).max(1);
    let x_ticks = if empty {
        Vec::new()
    } else {
        chart
            .bins
            .iter()
            .enumerate()
            .step_by(every)
            .map(|(i, (lo, _, _))| Tick {
                at: px(f64::from(left) + slot * i as f64),
                label: format_value(chart.unit, *lo),
            })
            .collect()
    };
    let y_ticks = ticks
        .iter()
        .map(|&t| Tick {
            at: px(y_of(t)),
            label: format_value(Unit::Count, t),
        })
        .collect();
    HistogramChart {
        label: label.to_string(),
        width,
        height,
        left,
        right,
        top,
        bottom,
        y_ticks,
        x_ticks,
        caption: chart.unit.caption(),
        columns,
        empty,
        empty_text: EMPTY,
    }
    .render()
}

/// Renders one figure, large, with its full value on hover.
pub fn number_chart(label: &str, value: Option<f64>, unit: Unit) -> Result<String, askama::Error> {
    NumberChart {
        label: label.to_string(),
        text: value.map(|v| format_value(unit, v)).unwrap_or_default(),
        full: value.map(|v| format_full(unit, v)).unwrap_or_default(),
        empty: value.is_none(),
        empty_text: EMPTY,
    }
    .render()
}

/// Renders a table of figures.
pub fn table_chart(label: &str, table: Table) -> Result<String, askama::Error> {
    let numeric = |i: usize| table.numeric.get(i).copied().unwrap_or(false);
    TableChart {
        label: label.to_string(),
        headings: table
            .headings
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), numeric(i)))
            .collect(),
        rows: table
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), numeric(i)))
                    .collect()
            })
            .collect(),
        empty_text: EMPTY,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// `text` is in `html` only escaped, as askama escapes (`&lt;` or `&#60;`).
    pub fn escaped(html: &str, text: &str) -> bool {
        let named = text.replace('<', "&lt;").replace('>', "&gt;");
        let numeric = text.replace('<', "&#60;").replace('>', "&#62;");
        !html.contains(text) && (html.contains(&named) || html.contains(&numeric))
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(format_value(Unit::Usd, 0.0), "$0");
        assert_eq!(format_value(Unit::Usd, 0.004213), "$0.0042");
        assert_eq!(format_value(Unit::Usd, 0.25), "$0.25");
        assert_eq!(format_value(Unit::Usd, 12.5), "$12.50");
        assert_eq!(format_value(Unit::Usd, 2500.0), "$2.5k");
        assert_eq!(format_value(Unit::Tokens, 1234.0), "1.2k");
        assert_eq!(format_value(Unit::Tokens, 3_400_000.0), "3.4M");
        assert_eq!(format_value(Unit::Millis, 850.0), "850 ms");
        assert_eq!(format_value(Unit::Millis, 1250.0), "1.25 s");
        assert_eq!(format_value(Unit::Millis, 90_000.0), "1.5 min");
        assert_eq!(format_value(Unit::Plain, 0.75), "0.75");
        assert_eq!(format_full(Unit::Tokens, 12345.0), "12,345 tokens");
        assert_eq!(format_full(Unit::Count, 1_000_000.0), "1,000,000");
    }

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(nice_ticks(0.0, 97.0, 4), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(nice_ticks(0.0, 0.0042, 4), vec![0.0, 0.002, 0.004, 0.006]);
        let t = nice_ticks(0.0, 1.0, 4);
        assert_eq!((t[0], *t.last().unwrap()), (0.0, 1.0));
        let negative = nice_ticks(-3.0, 7.0, 4);
        assert!(negative[0] <= -3.0 && *negative.last().unwrap() >= 7.0);
        assert!(!nice_ticks(5.0, 5.0, 4).is_empty());
    }

    fn hours(n: u32) -> Vec<DateTime<Utc>> {
        (0..n)
            .map(|h| Utc.with_ymd_and_hms(2025, 6, 1, h, 0, 0).unwrap())
            .collect()
    }

    #[test]
    fn a_line_chart_has_axes_legend_and_a_tooltip_per_point() {
        let chart = TimeSeries {
            buckets: hours(4),
            series: vec![
                Series {
                    name: "traces".into(),
                    values: vec![Some(1.0), Some(3.0), None, Some(2.0)],
                },
                Series {
                    name: "<script>alert(1)</script>".into(),
                    values: vec![Some(0.0), Some(1.0), Some(1.0), Some(0.0)],
                },
            ],
            unit: Unit::Count,
        };
        let svg = line_chart("Traces over time", &chart, 600).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert_eq!(
            svg.matches("<title>").count(),
            1 + 3 + 4,
            "a title per point and the chart's"
        );
        assert!(svg.contains("traces: 3 at 2025-06-01 01:00 UTC"));
        assert!(svg.contains(">01:00<"), "time ticks: {svg}");
        assert!(!svg.contains("<script>"), "names are escaped");
        assert!(escaped(&svg, "<script>"), "{svg}");
        assert!(svg.contains("chart-legend"));
        assert!(
            svg.contains("marker-square"),
            "the second series has its own shape"
        );
        assert!(!svg.contains(EMPTY));
    }

    #[test]
    fn charts_without_data_say_so() {
        let empty = TimeSeries {
            buckets: hours(3),
            series: vec![Series {
                name: "x".into(),
                values: vec![None, None, None],
            }],
            unit: Unit::Usd,
        };
        assert!(line_chart("x", &empty, 400).unwrap().contains(EMPTY));
        let zeros = TimeSeries {
            buckets: hours(3),
            series: vec![Series {
                name: "x".into(),
                values: vec![Some(0.0); 3],
            }],
            unit: Unit::Count,
        };
        assert!(
            line_chart("x", &zeros, 400).unwrap().contains(EMPTY),
            "buckets filled with zeros are no data"
        );
        let bars = Bars {
            bars: vec![],
            unit: Unit::Usd,
        };
        assert!(bar_chart("x", &bars, 400).unwrap().contains(EMPTY));
        let histogram = Histogram {
            bins: vec![],
            unit: Unit::Plain,
        };
        assert!(histogram_chart("x", &histogram, 400)
            .unwrap()
            .contains(EMPTY));
        assert!(number_chart("x", None, Unit::Usd).unwrap().contains(EMPTY));
        assert!(table_chart("x", Table::default()).unwrap().contains(EMPTY));
    }

    #[test]
    fn bars_print_their_values_and_escape_labels() {
        let chart = Bars {
            bars: vec![("gpt-4o".into(), 0.0125), ("<b>m</b>".into(), 0.005)],
            unit: Unit::Usd,
        };
        let svg = bar_chart("Cost by model", &chart, 500).unwrap();
        assert!(
            svg.contains(">$0.013<") || svg.contains(">$0.012<"),
            "{svg}"
        );
        assert!(svg.contains("gpt-4o: $0.013") || svg.contains("gpt-4o: $0.012"));
        assert!(escaped(&svg, "<b>m</b>"), "{svg}");
    }

    #[test]
    fn a_histogram_labels_its_bins() {
        let chart = Histogram {
            bins: vec![(0.0, 0.5, 3.0), (0.5, 1.0, 1.0)],
            unit: Unit::Plain,
        };
        let svg = histogram_chart("accuracy", &chart, 400).unwrap();
        assert!(svg.contains("0 to 0.5: 3"), "{svg}");
        assert!(svg.contains(">0.5<"));
    }

    #[test]
    fn numbers_and_tables_render() {
        let html = number_chart("Total cost", Some(1.5), Unit::Usd).unwrap();
        assert!(html.contains("$1.50"));
        let table = Table {
            headings: vec!["model".into(), "p95".into()],
            numeric: vec![false, true],
            rows: vec![vec!["<i>x</i>".into(), "1.2 s".into()]],
        };
        let html = table_chart("Latency", table).unwrap();
        assert!(
            escaped(&html, "<i>x</i>") && html.contains("1.2 s"),
            "{html}"
        );
    }
}
