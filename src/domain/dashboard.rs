//! Dashboards, pure: the time range every chart of a page shares, what a widget is (a metrics
//! query drawn as a chart type), the query a widget editor's form describes (Langfuse's metrics
//! query JSON, the one language of the metrics engine), and the rules of arranging widgets in a
//! dashboard's grid.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::time::{iso, parse_time};

/// How a widget draws its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartType {
    /// A line per measure (or per value of the dimension) over time buckets.
    Line,
    /// A bar per value of the dimension.
    Bar,
    /// One figure.
    Number,
    /// Counts per bin of the measure's values.
    Histogram,
    /// A table: a row per value of the dimensions, a column per measure.
    Pivot,
}

impl ChartType {
    pub const ALL: [ChartType; 5] = [
        ChartType::Line,
        ChartType::Bar,
        ChartType::Number,
        ChartType::Histogram,
        ChartType::Pivot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChartType::Line => "line",
            ChartType::Bar => "bar",
            ChartType::Number => "number",
            ChartType::Histogram => "histogram",
            ChartType::Pivot => "pivot",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ChartType::Line => "Line over time",
            ChartType::Bar => "Bars by dimension",
            ChartType::Number => "One number",
            ChartType::Histogram => "Histogram",
            ChartType::Pivot => "Pivot table",
        }
    }

    pub fn parse(text: &str) -> Option<ChartType> {
        ChartType::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// The last hour, day, week or month, or a range of the person's choosing: what every chart of a
/// page shows, kept in the page's URL (`?range=24h`, `?range=custom&from=…&to=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    /// `1h`, `24h`, `7d`, `30d` or `custom`.
    pub preset: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The presets offered, with their labels.
pub const PRESETS: [(&str, &str); 4] = [
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

/// The longest custom range a page draws (a year), so one click cannot ask for a decade.
const LONGEST_CUSTOM_DAYS: i64 = 366;

impl TimeRange {
    /// Reads `range`, `from` and `to` as a page's query string has them; `now` ends the presets.
    /// Missing or unknown: the last 24 hours. A custom range needs both ends, `from` before `to`.
    pub fn parse(
        range: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TimeRange, String> {
        let preset = |preset: &'static str, length: Duration| TimeRange {
            preset,
            from: now - length,
            to: now,
        };
        match range.unwrap_or("24h") {
            "1h" => Ok(preset("1h", Duration::hours(1))),
            "7d" => Ok(preset("7d", Duration::days(7))),
            "30d" => Ok(preset("30d", Duration::days(30))),
            "custom" => {
                let read = |name: &str, text: Option<&str>| {
                    let text = text.unwrap_or("").trim();
                    parse_time(text)
                        .or_else(|| parse_time(&format!("{text}:00")))
                        .ok_or_else(|| {
                            format!("The range's {name} {text:?} is not a date and time such as 2025-06-01T12:00.")
                        })
                };
                let (from, to) = (read("start", from)?, read("end", to)?);
                if from >= to {
                    return Err("The range's start must come before its end.".to_string());
                }
                if to - from > Duration::days(LONGEST_CUSTOM_DAYS) {
                    return Err(format!(
                        "A range may span {LONGEST_CUSTOM_DAYS} days at most."
                    ));
                }
                Ok(TimeRange {
                    preset: "custom",
                    from,
                    to,
                })
            }
            _ => Ok(preset("24h", Duration::hours(24))),
        }
    }

    /// The time buckets of charts over this range: about 24 to 170 points.
    pub fn granularity(&self) -> &'static str {
        let span = self.to - self.from;
        if span <= Duration::hours(3) {
            "minute"
        } else if span <= Duration::days(7) {
            "hour"
        } else if span <= Duration::days(120) {
            "day"
        } else {
            "week"
        }
    }

    /// The query string that keeps this range (to append to a page's links).
    pub fn query_string(&self) -> String {
        if self.preset == "custom" {
            serde_urlencoded::to_string([
                ("range", "custom"),
                ("from", &self.from.format("%Y-%m-%dT%H:%M").to_string()),
                ("to", &self.to.format("%Y-%m-%dT%H:%M").to_string()),
            ])
            .unwrap_or_default()
        } else {
            format!("range={}", self.preset)
        }
    }
}

/// What the metrics engine answers for its views (Langfuse's v1 views), as the widget editor
/// offers them: the view's name, its label, its dimensions and its measures.
pub struct ViewChoice {
    pub name: &'static str,
    pub label: &'static str,
    pub dimensions: &'static [&'static str],
    pub measures: &'static [&'static str],
}

pub const VIEWS: [ViewChoice; 4] = [
    ViewChoice {
        name: "traces",
        label: "Traces",
        dimensions: &[
            "name",
            "userId",
            "sessionId",
            "release",
            "version",
            "environment",
            "tags",
        ],
        measures: &[
            "count",
            "observationsCount",
            "scoresCount",
            "latency",
            "totalTokens",
            "totalCost",
        ],
    },
    ViewChoice {
        name: "observations",
        label: "Observations",
        dimensions: &[
            "traceName",
            "name",
            "type",
            "level",
            "providedModelName",
            "promptName",
            "promptVersion",
            "userId",
            "sessionId",
            "environment",
            "version",
        ],
        measures: &[
            "count",
            "latency",
            "timeToFirstToken",
            "inputTokens",
            "outputTokens",
            "totalTokens",
            "inputCost",
            "outputCost",
            "totalCost",
            "countScores",
        ],
    },
    ViewChoice {
        name: "scores-numeric",
        label: "Numeric scores",
        dimensions: &["name", "source", "dataType", "environment"],
        measures: &["count", "value"],
    },
    ViewChoice {
        name: "scores-categorical",
        label: "Categorical scores",
        dimensions: &["name", "source", "stringValue", "environment"],
        measures: &["count"],
    },
];

/// The aggregations of the metrics engine.
pub const AGGREGATIONS: [&str; 11] = [
    "sum",
    "avg",
    "count",
    "max",
    "min",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
    "histogram",
];

/// The time buckets a widget may ask for; `auto` follows the page's range, `none` has none.
pub const GRANULARITIES: [&str; 7] = ["auto", "none", "minute", "hour", "day", "week", "month"];

/// The filter operators of the widget editor (Langfuse's, for text columns).
pub const OPERATORS: [&str; 6] = [
    "=",
    "!=",
    "contains",
    "does not contain",
    "starts with",
    "any of",
];

/// One condition of a widget's query on a dimension of its view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub column: String,
    pub operator: String,
    pub value: String,
}

/// A widget's query as the editor's form describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidgetSpec {
    pub view: String,
    pub measure: String,
    pub aggregation: String,
    /// Up to two: the second one only a pivot table shows.
    pub dimensions: Vec<String>,
    pub filters: Vec<FilterSpec>,
    /// One of [`GRANULARITIES`].
    pub granularity: String,
}

impl WidgetSpec {
    /// The stored form: Langfuse's metrics query without its time range, with `timeDimension`
    /// holding the granularity the widget asked for (`auto` included). Checks what the form
    /// alone can: a known view, measure and dimensions of it, an aggregation, filter rows with a
    /// column. The metrics engine checks the rest when the query runs.
    pub fn to_query(&self) -> Result<Value, String> {
        let view = VIEWS
            .iter()
            .find(|v| v.name == self.view)
            .ok_or_else(|| format!("Choose a view: {:?} is not one.", self.view))?;
        if !view.measures.contains(&self.measure.as_str()) {
            return Err(format!(
                "The {} view has no measure {:?}; it has {}.",
                view.label,
                self.measure,
                view.measures.join(", ")
            ));
        }
        if !AGGREGATIONS.contains(&self.aggregation.as_str()) {
            return Err(format!("{:?} is not an aggregation.", self.aggregation));
        }
        let mut dimensions = Vec::new();
        for d in self.dimensions.iter().filter(|d| !d.is_empty()) {
            if !view.dimensions.contains(&d.as_str()) {
                return Err(format!(
                    "The {} view has no dimension {d:?}; it has {}.",
                    view.label,
                    view.dimensions.join(", ")
                ));
            }
            if !dimensions.contains(&json!({ "field": d })) {
                dimensions.push(json!({ "field": d }));
            }
        }
        let mut filters = Vec::new();
        for f in &self.filters {
            if f.column.is_empty() && f.value.trim().is_empty() {
                continue;
            }
            if !view.dimensions.contains(&f.column.as_str()) {
                return Err(format!(
                    "A filter's column must be a dimension of the {} view, not {:?}.",
                    view.label, f.column
                ));
            }
            if !OPERATORS.contains(&f.operator.as_str()) {
                return Err(format!("{:?} is not a filter operator.", f.operator));
            }
            let array_column = f.column == "tags";
            filters.push(if f.operator == "any of" || array_column {
                let values: Vec<&str> = f
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .collect();
                let operator = if array_column && f.operator != "any of" {
                    "all of"
                } else {
                    "any of"
                };
                json!({"column": f.column, "operator": operator, "value": values,
                       "type": if array_column { "arrayOptions" } else { "stringOptions" }})
            } else {
                json!({"column": f.column, "operator": f.operator, "value": f.value.trim(),
                       "type": "string"})
            });
        }
        let granularity = if GRANULARITIES.contains(&self.granularity.as_str()) {
            self.granularity.as_str()
        } else {
            "auto"
        };
        let mut query = json!({
            "view": view.name,
            "dimensions": dimensions,
            "metrics": [{"measure": self.measure, "aggregation": self.aggregation}],
            "filters": filters,
            "timeDimension": null,
            "orderBy": null,
        });
        if granularity != "none" {
            query["timeDimension"] = json!({ "granularity": granularity });
        }
        Ok(query)
    }

    /// The form of a stored query (for the editor); what it cannot read stays empty.
    pub fn from_query(query: &Value) -> WidgetSpec {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let metric = &query["metrics"][0];
        WidgetSpec {
            view: text(&query["view"]),
            measure: text(&metric["measure"]),
            aggregation: text(&metric["aggregation"]),
            dimensions: query["dimensions"]
                .as_array()
                .map(|ds| ds.iter().map(|d| text(&d["field"])).collect())
                .unwrap_or_default(),
            filters: query["filters"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| FilterSpec {
                            column: text(&f["column"]),
                            operator: match text(&f["operator"]).as_str() {
                                "all of" => "=".to_string(),
                                op => op.to_string(),
                            },
                            value: match &f["value"] {
                                Value::Array(values) => values
                                    .iter()
                                    .map(|v| v.as_str().unwrap_or_default())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                v => text(v),
                            },
                        })
                        .collect()
                })
                .unwrap_or_default(),
            granularity: match query["timeDimension"]["granularity"].as_str() {
                Some(g) => g.to_string(),
                None => "none".to_string(),
            },
        }
    }
}

/// A stored query over `range`: its time range set, an `auto` granularity resolved to the
/// range's, and a row limit for charts that draw a bar or a line per dimension value.
pub fn query_over(query: &Value, range: &TimeRange) -> Value {
    let mut query = query.clone();
    if let Some(object) = query.as_object_mut() {
        object.insert("fromTimestamp".into(), Value::String(iso(range.from)));
        object.insert("toTimestamp".into(), Value::String(iso(range.to)));
        if object
            .get("timeDimension")
            .and_then(|t| t.get("granularity"))
            .and_then(Value::as_str)
            == Some("auto")
        {
            object.insert(
                "timeDimension".into(),
                json!({ "granularity": range.granularity() }),
            );
        }
        object.entry("filters").or_insert_with(|| json!([]));
        object.entry("orderBy").or_insert(Value::Null);
    }
    query
}

/// The query `chart` draws over `range`: [`query_over`], and for a single number the whole
/// range as one figure (no time buckets, no dimensions), because only the engine can aggregate
/// an average or a percentile over every row; adding up buckets is right for sums and counts
/// alone.
pub fn chart_query_over(chart: ChartType, query: &Value, range: &TimeRange) -> Value {
    let mut query = query_over(query, range);
    if chart == ChartType::Number {
        if let Some(object) = query.as_object_mut() {
            object.insert("timeDimension".into(), Value::Null);
            object.insert("dimensions".into(), json!([]));
        }
    }
    query
}

/// The name the engine gives a metric's column: `sum_totalCost`.
pub fn metric_column(aggregation: &str, measure: &str) -> String {
    format!("{aggregation}_{measure}")
}

/// A query of `view` over `range` in the engine's language, for the fixed charts of the project
/// home: `metrics` as (measure, aggregation), `dimensions` by field, `filters` as JSON, and
/// time buckets of the range's granularity when `over_time`.
pub fn fixed_query(
    view: &str,
    metrics: &[(&str, &str)],
    dimensions: &[&str],
    filters: Value,
    over_time: bool,
    range: &TimeRange,
) -> Value {
    let mut query = Map::new();
    query.insert("view".into(), json!(view));
    query.insert(
        "dimensions".into(),
        Value::Array(dimensions.iter().map(|d| json!({ "field": d })).collect()),
    );
    query.insert(
        "metrics".into(),
        Value::Array(
            metrics
                .iter()
                .map(|(m, a)| json!({"measure": m, "aggregation": a}))
                .collect(),
        ),
    );
    query.insert("filters".into(), filters);
    query.insert(
        "timeDimension".into(),
        if over_time {
            json!({ "granularity": "auto" })
        } else {
            Value::Null
        },
    );
    query.insert("orderBy".into(), Value::Null);
    query_over(&Value::Object(query), range)
}

/// Grid columns of a dashboard.
pub const GRID_COLUMNS: i32 = 12;

/// The widths a widget may take, in grid columns: a quarter, a third, half, two thirds, all.
pub const WIDTHS: [i32; 5] = [3, 4, 6, 8, 12];

/// The heights a widget may take, in grid rows.
pub const HEIGHTS: [i32; 2] = [1, 2];

/// Where a widget sits: its order in the grid's flow and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    pub width: i32,
}

/// A move of the arranging controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Left,
    Right,
    Up,
    Down,
    Wider,
    Narrower,
}

impl Move {
    pub fn parse(text: &str) -> Option<Move> {
        Some(match text {
            "left" => Move::Left,
            "right" => Move::Right,
            "up" => Move::Up,
            "down" => Move::Down,
            "wider" => Move::Wider,
            "narrower" => Move::Narrower,
            _ => return None,
        })
    }
}

/// The rows the flow makes of widgets in order: each row takes widgets while their widths fit
/// in the grid's columns. Returns each row's range of indexes.
pub fn rows(widgets: &[Placement]) -> Vec<std::ops::Range<usize>> {
    let mut rows = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, w) in widgets.iter().enumerate() {
        let width = w.width.clamp(1, GRID_COLUMNS);
        if used + width > GRID_COLUMNS && i > start {
            rows.push(start..i);
            start = i;
            used = 0;
        }
        used += width;
    }
    if start < widgets.len() {
        rows.push(start..widgets.len());
    }
    rows
}

/// `widgets` (in their order) after `step` of the widget `id`: left and right swap it with its
/// neighbour in the flow, up puts it at the start of the row above, down at the end of the row
/// below (so it wraps to the row after that if it does not fit), wider and narrower step through [`WIDTHS`]. A move past an edge changes nothing;
/// `None` if there is no such widget.
pub fn arrange(widgets: &[Placement], id: &str, step: Move) -> Option<Vec<Placement>> {
    let mut out = widgets.to_vec();
    let i = out.iter().position(|w| w.id == id)?;
    let layout = rows(&out);
    let row = layout.iter().position(|r| r.contains(&i))?;
    match step {
        Move::Left if i > 0 => out.swap(i - 1, i),
        Move::Right if i + 1 < out.len() => out.swap(i, i + 1),
        Move::Up if row > 0 => {
            let target = layout[row - 1].start;
            let w = out.remove(i);
            out.insert(target, w);
        }
        Move::Down if row + 1 < layout.len() => {
            let end = layout[row + 1].end;
            let w = out.remove(i);
            out.insert(end - 1, w);
        }
        Move::Wider => {
            let current = out[i].width;
            out[i].width = WIDTHS.into_iter().find(|&w| w > current).unwrap_or(current);
        }
        Move::Narrower => {
            let current = out[i].width;
            out[i].width = WIDTHS
                .into_iter()
                .rev()
                .find(|&w| w < current)
                .unwrap_or(current);
        }
        _ => {}
    }
    Some(out)
}

/// A whole layout as the drag-and-drop script posts it (`id:width` pairs in order, separated by
/// commas), checked against the widgets that exist: the same ids, each once, allowed widths.
pub fn parse_layout(text: &str, existing: &[Placement]) -> Result<Vec<Placement>, String> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (id, width) = part
            .trim()
            .rsplit_once(':')
            .ok_or("A layout entry is id:width.")?;
        let width: i32 = width.parse().map_err(|_| "A width is a number.")?;
        if !WIDTHS.contains(&width) {
            return Err(format!("{width} is not a widget width."));
        }
        if out.iter().any(|p: &Placement| p.id == id) {
            return Err("A widget appears twice in the layout.".to_string());
        }
        out.push(Placement {
            id: id.to_string(),
            width,
        });
    }
    let mut given: Vec<&str> = out.iter().map(|p| p.id.as_str()).collect();
    let mut have: Vec<&str> = existing.iter().map(|p| p.id.as_str()).collect();
    given.sort_unstable();
    have.sort_unstable();
    if given != have {
        return Err(
            "The layout does not name this dashboard's widgets; reload the page.".to_string(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn p(id: &str, width: i32) -> Placement {
        Placement {
            id: id.into(),
            width,
        }
    }

    fn ids(ws: &[Placement]) -> Vec<&str> {
        ws.iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn ranges_read_presets_and_custom_ends() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let day = TimeRange::parse(None, None, None, now).unwrap();
        assert_eq!(
            (day.preset, day.to - day.from),
            ("24h", Duration::hours(24))
        );
        assert_eq!(day.granularity(), "hour");
        assert_eq!(
            TimeRange::parse(Some("1h"), None, None, now)
                .unwrap()
                .granularity(),
            "minute"
        );
        assert_eq!(
            TimeRange::parse(Some("30d"), None, None, now)
                .unwrap()
                .granularity(),
            "day"
        );
        let custom = TimeRange::parse(
            Some("custom"),
            Some("2025-05-01T00:00"),
            Some("2025-05-03T00:00"),
            now,
        )
        .unwrap();
        assert_eq!(custom.to - custom.from, Duration::days(2));
        assert_eq!(
            custom.query_string(),
            "range=custom&from=2025-05-01T00%3A00&to=2025-05-03T00%3A00"
        );
        assert!(TimeRange::parse(
            Some("custom"),
            Some("2025-05-03T00:00"),
            Some("2025-05-01T00:00"),
            now
        )
        .is_err());
        assert!(TimeRange::parse(
            Some("custom"),
            Some("yesterday"),
            Some("2025-05-01T00:00"),
            now
        )
        .unwrap_err()
        .contains("yesterday"));
        assert_eq!(
            TimeRange::parse(Some("<b>"), None, None, now)
                .unwrap()
                .preset,
            "24h"
        );
    }

    #[test]
    fn a_form_becomes_a_metrics_query_and_back() {
        let spec = WidgetSpec {
            view: "observations".into(),
            measure: "totalCost".into(),
            aggregation: "sum".into(),
            dimensions: vec!["providedModelName".into(), String::new()],
            filters: vec![
                FilterSpec {
                    column: "type".into(),
                    operator: "any of".into(),
                    value: "GENERATION, EVENT".into(),
                },
                FilterSpec::default(),
            ],
            granularity: "auto".into(),
        };
        let query = spec.to_query().unwrap();
        assert_eq!(
            query["metrics"],
            json!([{"measure": "totalCost", "aggregation": "sum"}])
        );
        assert_eq!(query["dimensions"], json!([{"field": "providedModelName"}]));
        assert_eq!(
            query["filters"],
            json!([{"column": "type", "operator": "any of", "value": ["GENERATION", "EVENT"], "type": "stringOptions"}])
        );
        let back = WidgetSpec::from_query(&query);
        assert_eq!(back.dimensions, vec!["providedModelName".to_string()]);
        assert_eq!(back.filters[0].value, "GENERATION, EVENT");
        assert_eq!(back.granularity, "auto");

        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let ranged = query_over(
            &query,
            &TimeRange::parse(Some("7d"), None, None, now).unwrap(),
        );
        assert_eq!(ranged["timeDimension"], json!({"granularity": "hour"}));
        assert_eq!(ranged["toTimestamp"], json!("2025-06-01T12:00:00.000Z"));

        let wrong = WidgetSpec {
            measure: "value".into(),
            ..spec.clone()
        };
        assert!(wrong.to_query().unwrap_err().contains("value"));
        let none = WidgetSpec {
            granularity: "none".into(),
            ..spec
        };
        assert_eq!(none.to_query().unwrap()["timeDimension"], Value::Null);
    }

    #[test]
    fn widgets_flow_in_rows_of_twelve_columns() {
        let ws = [p("a", 6), p("b", 6), p("c", 4), p("d", 12), p("e", 3)];
        assert_eq!(rows(&ws), vec![0..2, 2..3, 3..4, 4..5]);
    }

    #[test]
    fn moves_swap_neighbours_change_rows_and_widths() {
        let ws = [p("a", 6), p("b", 6), p("c", 6), p("d", 6)];
        assert_eq!(
            ids(&arrange(&ws, "b", Move::Left).unwrap()),
            ["b", "a", "c", "d"]
        );
        assert_eq!(
            ids(&arrange(&ws, "a", Move::Left).unwrap()),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            ids(&arrange(&ws, "d", Move::Up).unwrap()),
            ["d", "a", "b", "c"]
        );
        assert_eq!(
            ids(&arrange(&ws, "a", Move::Down).unwrap()),
            ["b", "c", "d", "a"]
        );
        assert_eq!(
            ids(&arrange(&ws, "d", Move::Down).unwrap()),
            ["a", "b", "c", "d"]
        );
        let wider = arrange(&ws, "a", Move::Wider).unwrap();
        assert_eq!(wider[0].width, 8);
        assert_eq!(arrange(&wider, "a", Move::Narrower).unwrap()[0].width, 6);
        assert_eq!(
            arrange(&[p("x", 3)], "x", Move::Narrower).unwrap()[0].width,
            3
        );
        assert_eq!(
            arrange(&[p("x", 12)], "x", Move::Wider).unwrap()[0].width,
            12
        );
        assert_eq!(
            arrange(&[p("x", 5)], "x", Move::Narrower).unwrap()[0].width,
            4
        );
        assert!(arrange(&ws, "zz", Move::Left).is_none());
    }

    #[test]
    fn a_posted_layout_names_exactly_the_widgets() {
        let ws = [p("a", 6), p("b", 6)];
        assert_eq!(ids(&parse_layout("b:12,a:6", &ws).unwrap()), ["b", "a"]);
        assert!(parse_layout("b:12", &ws).is_err());
        assert!(parse_layout("a:6,a:6,b:6", &ws).is_err());
        assert!(parse_layout("a:7,b:6", &ws).is_err());
        assert!(parse_layout("a:6,b:6,c:6", &ws).is_err());
    }
}
