//! The metrics engine's answers as charts: a query (Langfuse's metrics query JSON) is run by
//! `storage::clickhouse::metrics`, and its rows (objects keyed as the Metrics API names its
//! columns: the dimensions by field, `time_dimension`, `sum_totalCost`…) become the typed series
//! of `charts`. Every figure of the dashboards comes through here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::dashboard::{metric_column, ChartType};
use crate::domain::metrics::{self, ApiVersion};
use crate::domain::project::ProjectId;
use crate::domain::time::parse_time;
use crate::storage::clickhouse::metrics as clickhouse_metrics;
use crate::storage::Stores;

use super::charts::{self, Bars, Histogram, Series, Table, TimeSeries, Unit};

pub type Row = Map<String, Value>;

/// Why a query gave no rows: the query itself is wrong (the engine's message, for the person
/// who wrote it), or the store failed.
#[derive(Debug)]
pub enum QueryFailure {
    Invalid(String),
    Failed(anyhow::Error),
}

/// Runs one query of the metrics engine for `project` (with the v1 endpoint's rules: every
/// view, no default row limit).
pub async fn run(
    stores: &Stores,
    project: &ProjectId,
    query: &Value,
) -> Result<Vec<Row>, QueryFailure> {
    let parsed = metrics::parse(&query.to_string(), ApiVersion::V1)
        .map_err(|e| QueryFailure::Invalid(e.message))?;
    clickhouse_metrics::run(&stores.clickhouse, project, &parsed)
        .await
        .map_err(|e| match e.downcast_ref::<metrics::QueryError>() {
            Some(refusal) => QueryFailure::Invalid(refusal.message.clone()),
            None => QueryFailure::Failed(e),
        })
}

/// Runs queries side by side (a ClickHouse server runs them in parallel); their answers in order.
pub async fn run_all(
    stores: &Stores,
    project: &ProjectId,
    queries: &[Value],
) -> Vec<Result<Vec<Row>, QueryFailure>> {
    futures::future::join_all(queries.iter().map(|q| run(stores, project, q))).await
}

/// A cell as a number: JSON numbers, and numbers written as text (ClickHouse's 64-bit integers
/// and decimals may come as text).
pub fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A cell as text (a dimension's value); empty and null are written as such for people.
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".to_string(),
        Some(Value::String(s)) if s.is_empty() => "(empty)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| text(Some(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A time bucket's start, as the engine writes it (ISO text, ClickHouse's `YYYY-MM-DD hh:mm:ss`,
/// a date alone, or milliseconds).
pub fn bucket(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::String(s) => parse_time(s).or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        }),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// The rows of a query with a time dimension as lines: one per column of `columns` (named by
/// its label), or, with a `split` dimension, one per value of it (the first column's figure).
/// Series are ordered by their total, largest first.
pub fn time_series(
    rows: &[Row],
    columns: &[(&str, &str)],
    split: Option<&str>,
    unit: Unit,
) -> TimeSeries {
    let mut buckets: Vec<DateTime<Utc>> = rows
        .iter()
        .filter_map(|r| bucket(r.get("time_dimension")))
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    let index = |t: DateTime<Utc>| buckets.binary_search(&t).ok();
    let mut lines: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for row in rows {
        let Some(i) = bucket(row.get("time_dimension")).and_then(index) else {
            continue;
        };
        let cells: Vec<(String, Option<f64>)> = match split {
            Some(d) => vec![(text(row.get(d)), number(row.get(columns[0].0)))],
            None => columns
                .iter()
                .map(|(c, label)| (label.to_string(), number(row.get(*c))))
                .collect(),
        };
        for (name, v) in cells {
            let line = lines.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                vec![None; buckets.len()]
            });
            if let Some(v) = v {
                line[i] = Some(line[i].unwrap_or(0.0) + v);
            }
        }
    }
    if split.is_none() {
        for (_, label) in columns {
            if !lines.contains_key(*label) && !buckets.is_empty() {
                order.push(label.to_string());
                lines.insert(label.to_string(), vec![None; buckets.len()]);
            }
        }
    }
    let total = |v: &Vec<Option<f64>>| v.iter().flatten().sum::<f64>();
    if split.is_some() {
        order.sort_by(|a, b| total(&lines[b]).total_cmp(&total(&lines[a])));
    }
    // A bucket the engine filled with nothing reads as zero: it is a time with no data.
    let series = order
        .into_iter()
        .map(|name| {
            let values = lines.remove(&name).unwrap_or_default();
            Series {
                values: values.into_iter().map(|v| Some(v.unwrap_or(0.0))).collect(),
                name,
            }
        })
        .collect();
    TimeSeries {
        buckets,
        series,
        unit,
    }
}

/// The rows as bars: `dimension`'s value and `column`'s figure, largest first, at most `limit`.
pub fn bars(rows: &[Row], dimension: &str, column: &str, unit: Unit, limit: usize) -> Bars {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for row in rows {
        if let Some(v) = number(row.get(column)) {
            *by.entry(text(row.get(dimension))).or_insert(0.0) += v;
        }
    }
    let mut bars: Vec<(String, f64)> = by.into_iter().collect();
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    bars.truncate(limit);
    Bars { bars, unit }
}

/// A histogram column's bins: the engine answers ClickHouse's `histogram` as a list of
/// `[lower, upper, height]` (or objects with those names).
pub fn histogram(rows: &[Row], column: &str, unit: Unit) -> Histogram {
    let mut bins = Vec::new();
    for row in rows {
        let cell = match row.get(column) {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        for bin in cell.as_array().into_iter().flatten() {
            let parts = match bin {
                Value::Array(a) => (number(a.first()), number(a.get(1)), number(a.get(2))),
                Value::Object(o) => (
                    number(o.get("lower").or(o.get("lowerBound")).or(o.get("start"))),
                    number(o.get("upper").or(o.get("upperBound")).or(o.get("end"))),
                    number(o.get("height").or(o.get("count"))),
                ),
                _ => (None, None, None),
            };
            if let (Some(lo), Some(hi), Some(h)) = parts {
                bins.push((lo, hi, h));
            }
        }
    }
    bins.sort_by(|a, b| a.0.total_cmp(&b.0));
    Histogram { bins, unit }
}

/// The rows as a table: a column per dimension, then one per (column, heading, unit).
pub fn table(
    rows: &[Row],
    dimensions: &[(&str, &str)],
    figures: &[(&str, &str, Unit)],
    limit: usize,
) -> Table {
    let mut headings: Vec<String> = dimensions.iter().map(|(_, h)| h.to_string()).collect();
    headings.extend(figures.iter().map(|(_, h, _)| h.to_string()));
    let mut numeric = vec![false; dimensions.len()];
    numeric.extend(figures.iter().map(|_| true));
    let rows = rows
        .iter()
        .take(limit)
        .map(|row| {
            let mut cells: Vec<String> =
                dimensions.iter().map(|(d, _)| text(row.get(*d))).collect();
            cells.extend(figures.iter().map(|(c, _, unit)| {
                number(row.get(*c))
                    .map(|v| charts::format_full(*unit, v))
                    .unwrap_or_else(|| "–".to_string())
            }));
            cells
        })
        .collect();
    Table {
        headings,
        numeric,
        rows,
    }
}

/// A stored widget's chart from the rows of its query, `width` wide (pixels of its SVG).
pub fn widget_chart(
    chart_type: ChartType,
    name: &str,
    query: &Value,
    rows: &[Row],
    width: u32,
) -> Result<String, askama::Error> {
    let metric = &query["metrics"][0];
    let measure = metric["measure"].as_str().unwrap_or_default();
    let aggregation = metric["aggregation"].as_str().unwrap_or_default();
    let column = metric_column(aggregation, measure);
    let unit = if aggregation == "histogram" {
        Unit::of_measure(measure, "sum")
    } else {
        Unit::of_measure(measure, aggregation)
    };
    let dimensions: Vec<&str> = query["dimensions"]
        .as_array()
        .map(|ds| ds.iter().filter_map(|d| d["field"].as_str()).collect())
        .unwrap_or_default();
    let label = format!("{aggregation} of {measure}");
    match chart_type {
        ChartType::Line => {
            // One line is the widget's own; split by a dimension, a line per value.
            let series = time_series(rows, &[(&column, name)], dimensions.first().copied(), unit);
            charts::line_chart(name, &series, width)
        }
        ChartType::Bar => match dimensions.first() {
            Some(d) => charts::bar_chart(name, &bars(rows, d, &column, unit, 20), width),
            None => charts::bar_chart(
                name,
                &Bars {
                    bars: rows
                        .iter()
                        .filter_map(|r| number(r.get(&column)))
                        .map(|v| (label.clone(), v))
                        .take(1)
                        .collect(),
                    unit,
                },
                width,
            ),
        },
        ChartType::Number => {
            let values: Vec<f64> = rows.iter().filter_map(|r| number(r.get(&column))).collect();
            // One figure: the engine's, over the whole range (`chart_query_over` asks for one
            // row). Rows of a bucketed query are added up only where that is right, for sums
            // and counts.
            let value = if values.is_empty() {
                None
            } else if matches!(aggregation, "sum" | "count") {
                Some(values.iter().sum())
            } else {
                values.first().copied()
            };
            charts::number_chart(name, value, unit)
        }
        ChartType::Histogram => {
            if aggregation == "histogram" {
                charts::histogram_chart(name, &histogram(rows, &column, unit), width)
            } else {
                // Without the histogram aggregation: the figures of the rows, binned here.
                let values: Vec<f64> = rows.iter().filter_map(|r| number(r.get(&column))).collect();
                charts::histogram_chart(name, &bin(&values, 10, unit), width)
            }
        }
        ChartType::Pivot => {
            let mut dims: Vec<(&str, &str)> = dimensions.iter().map(|d| (*d, *d)).collect();
            if rows.iter().any(|r| r.contains_key("time_dimension")) {
                dims.insert(0, ("time_dimension", "time"));
            }
            charts::table_chart(name, table(rows, &dims, &[(&column, &label, unit)], 200))
        }
    }
}

/// `values` in `count` equal bins between their least and greatest.
pub fn bin(values: &[f64], count: usize, unit: Unit) -> Histogram {
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if values.is_empty() {
        return Histogram { bins: vec![], unit };
    }
    let width = if hi > lo {
        (hi - lo) / count as f64
    } else {
        1.0
    };
    let mut bins: Vec<(f64, f64, f64)> = (0..count)
        .map(|i| (lo + width * i as f64, lo + width * (i + 1) as f64, 0.0))
        .collect();
    for v in values {
        let i = (((v - lo) / width) as usize).min(count - 1);
        bins[i].2 += 1.0;
    }
    if hi <= lo {
        bins.truncate(1);
    }
    Histogram { bins, unit }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows(value: Value) -> Vec<Row> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn rows_with_time_buckets_become_lines() {
        let data = rows(json!([
            {"time_dimension": "2025-06-01T00:00:00.000Z", "providedModelName": "a", "sum_totalCost": 1.5},
            {"time_dimension": "2025-06-01 01:00:00", "providedModelName": "a", "sum_totalCost": "2"},
            {"time_dimension": "2025-06-01T01:00:00Z", "providedModelName": "b", "sum_totalCost": 7},
            {"time_dimension": "2025-06-01T02:00:00Z", "providedModelName": null, "sum_totalCost": null},
        ]));
        let series = time_series(
            &data,
            &[("sum_totalCost", "cost")],
            Some("providedModelName"),
            Unit::Usd,
        );
        assert_eq!(series.buckets.len(), 3);
        let names: Vec<&str> = series.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "(none)"], "largest first");
        assert_eq!(
            series.series[1].values,
            vec![Some(1.5), Some(2.0), Some(0.0)]
        );

        let two = time_series(
            &data,
            &[("sum_totalCost", "cost"), ("count_count", "count")],
            None,
            Unit::Count,
        );
        assert_eq!(two.series.len(), 2);
        assert_eq!(two.series[0].values[1], Some(9.0));
    }

    #[test]
    fn bars_tables_and_histograms_read_the_columns() {
        let data = rows(json!([
            {"name": "chat", "p95_latency": 1200.0, "count_count": "3"},
            {"name": "<script>", "p95_latency": 80, "count_count": 5},
        ]));
        let b = bars(&data, "name", "count_count", Unit::Count, 10);
        assert_eq!(b.bars[0], ("<script>".to_string(), 5.0));
        let t = table(
            &data,
            &[("name", "trace")],
            &[("p95_latency", "p95", Unit::Millis)],
            10,
        );
        assert_eq!(t.rows[0], vec!["chat".to_string(), "1.2 s".to_string()]);
        let h = histogram(
            &rows(json!([{"histogram_value": [[0.0, 0.5, 2], [0.5, 1.0, 1]]}])),
            "histogram_value",
            Unit::Plain,
        );
        assert_eq!(h.bins, vec![(0.0, 0.5, 2.0), (0.5, 1.0, 1.0)]);
        let binned = bin(&[0.0, 0.1, 1.0], 2, Unit::Plain);
        assert_eq!(binned.bins, vec![(0.0, 0.5, 2.0), (0.5, 1.0, 1.0)]);
    }

    #[test]
    fn a_widget_draws_its_chart_type() {
        let query = json!({"view": "observations", "dimensions": [{"field": "providedModelName"}],
                           "metrics": [{"measure": "totalCost", "aggregation": "sum"}]});
        let data = rows(json!([
            {"providedModelName": "gpt-4o", "sum_totalCost": 0.5},
            {"providedModelName": "claude", "sum_totalCost": 0.25},
        ]));
        let bar = widget_chart(ChartType::Bar, "Cost", &query, &data, 500).unwrap();
        assert!(bar.contains("gpt-4o: $0.50"), "{bar}");
        let number = widget_chart(ChartType::Number, "Cost", &query, &data, 500).unwrap();
        assert!(number.contains("$0.75"), "{number}");
        let pivot = widget_chart(ChartType::Pivot, "Cost", &query, &data, 500).unwrap();
        assert!(pivot.contains("<td>claude</td>"), "{pivot}");
    }
}
