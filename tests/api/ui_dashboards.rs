//! The project home's dashboard and the custom dashboards over HTTP: dashboards created, renamed
//! and deleted, widgets added, previewed, edited, arranged and deleted by a MEMBER; a VIEWER reads
//! them and is refused every change (403), forged with their own token or not; the home page's
//! figures from data sent through the ingestion API, over the time range of the URL, with names
//! strangers wrote escaped.

use serde_json::json;

use crate::helpers::{envelope, location, ApiKey, TestApp, TestConfig, UiClient, UiTeam};

/// The widgets of a dashboard page in their order, with their widths.
fn widgets(html: &str) -> Vec<(String, String)> {
    html.split("data-widget=\"")
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap().to_string();
            let width = rest
                .split("data-width=\"")
                .nth(1)
                .and_then(|w| w.split('"').next())
                .unwrap()
                .to_string();
            (id, width)
        })
        .collect()
}

fn widget_form<'a>(name: &'a str, chart: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("chart_type", chart),
        ("view", "observations"),
        ("measure", "totalCost"),
        ("aggregation", "sum"),
        ("dimension", "providedModelName"),
        ("granularity", "none"),
        ("width", "6"),
        ("height", "1"),
        ("intent", "save"),
        ("back", "range=7d"),
    ]
}

#[tokio::test]
async fn members_build_and_arrange_dashboards_and_viewers_only_read_them() {
    let team = UiTeam::new().await;
    let list = format!("/project/{}/dashboards", team.project_id);

    let (status, html) = team.member.page(&list).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No dashboards yet"));
    assert!(html.contains("Create dashboard"));

    // Create: a name is required.
    let refused = team.member.submit(&list, &list, &[("name", "  ")]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Give the dashboard a name"));
    let created = team
        .member
        .submit(
            &list,
            &list,
            &[
                ("name", "Costs <b>weekly</b>"),
                ("description", "What we spend"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let dashboard = location(&created);
    assert!(dashboard.starts_with(&format!("{list}/")), "{dashboard}");
    let (status, html) = team.owner.page(&dashboard).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Costs &#60;b&#62;weekly&#60;/b&#62;")
            || html.contains("Costs &lt;b&gt;weekly")
    );
    assert!(!html.contains("<b>weekly"));
    assert!(html.contains("has no widgets yet"));

    // The editor: a preview draws without saving; a bad query is refused with the reason.
    let new_widget = format!("{dashboard}/widgets/new?range=7d");
    let (status, editor) = team.member.page(&new_widget).await;
    assert_eq!(status, 200, "{editor}");
    assert!(
        editor.contains("name=\"back\" value=\"range=7d\""),
        "the range travels"
    );
    let action = format!("{dashboard}/widgets");
    let mut preview = widget_form("Cost by model", "bar");
    preview.retain(|(k, _)| *k != "intent");
    preview.push(("intent", "preview"));
    let response = team.member.submit(&new_widget, &action, &preview).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("widget-preview"), "{html}");
    assert!(
        widgets(&team.member.page(&dashboard).await.1).is_empty(),
        "not saved"
    );
    let mut wrong = widget_form("Scores", "bar");
    wrong.retain(|(k, _)| *k != "measure");
    wrong.push(("measure", "value"));
    let response = team.member.submit(&new_widget, &action, &wrong).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("has no measure"));

    // Three widgets, saved in order; the answer goes back to the range.
    for (name, chart) in [
        ("Cost by model", "bar"),
        ("Total cost", "number"),
        ("Cost table", "pivot"),
    ] {
        let response = team
            .member
            .submit(&new_widget, &action, &widget_form(name, chart))
            .await;
        assert_eq!(response.status(), 303, "{name}");
        assert_eq!(location(&response), format!("{dashboard}?range=7d"));
    }
    let (_, html) = team.viewer.page(&dashboard).await;
    let placed = widgets(&html);
    assert_eq!(placed.len(), 3);
    let [a, b, c] = [&placed[0].0, &placed[1].0, &placed[2].0];
    let html = team.owner.page(&list).await.1;
    assert!(html.contains("<td class=\"num\">3</td>"), "{html}");

    // Arranging: a move, a width, a dragged layout.
    let move_to = |id: &str| format!("{dashboard}/widgets/{id}/move");
    let response = team
        .member
        .submit(
            &dashboard,
            &move_to(c),
            &[("direction", "left"), ("back", "range=24h")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{dashboard}?range=24h"));
    let response = team
        .member
        .submit(&dashboard, &move_to(a), &[("direction", "wider")])
        .await;
    assert_eq!(response.status(), 303);
    let order = widgets(&team.member.page(&dashboard).await.1);
    assert_eq!(
        order,
        vec![
            (a.clone(), "8".to_string()),
            (c.clone(), "6".to_string()),
            (b.clone(), "6".to_string())
        ]
    );
    let layout = format!("{b}:12,{a}:3,{c}:4");
    let response = team
        .member
        .submit(
            &dashboard,
            &format!("{dashboard}/layout"),
            &[("layout", &layout)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let order = widgets(&team.owner.page(&dashboard).await.1);
    assert_eq!(
        order,
        vec![
            (b.clone(), "12".to_string()),
            (a.clone(), "3".to_string()),
            (c.clone(), "4".to_string())
        ]
    );
    let stale = format!("{b}:12,{a}:3");
    let response = team
        .member
        .submit(
            &dashboard,
            &format!("{dashboard}/layout"),
            &[("layout", &stale)],
        )
        .await;
    assert_eq!(response.status(), 400, "a layout must name every widget");

    // Edit: the form shows the stored query; a save changes it.
    let edit = format!("{dashboard}/widgets/{a}/edit");
    let (status, html) = team.member.page(&edit).await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"Cost by model\""));
    assert!(
        html.contains("<option value=\"providedModelName\" selected>"),
        "{html}"
    );
    let mut changed = widget_form("Cost per model", "bar");
    changed.retain(|(k, _)| *k != "width");
    changed.push(("width", "3"));
    let response = team
        .member
        .submit(&edit, &format!("{dashboard}/widgets/{a}"), &changed)
        .await;
    assert_eq!(response.status(), 303);
    assert!(team
        .owner
        .page(&dashboard)
        .await
        .1
        .contains("Cost per model"));

    // Rename from the list.
    let response = team
        .member
        .submit(
            &list,
            &format!("{dashboard}/rename"),
            &[("name", "Spend"), ("description", "")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let html = team.viewer.page(&list).await.1;
    assert!(html.contains(">Spend</a>"));
    assert!(html.contains("by Max"), "who changed it last: {html}");

    // A VIEWER reads, with no controls, and is refused every change.
    let (status, html) = team.viewer.page(&dashboard).await;
    assert_eq!(status, 200);
    assert!(!html.contains("Add a widget"));
    assert!(!html.contains("/move\""));
    assert!(!html.contains("layout-form"));
    let html = team.viewer.page(&list).await.1;
    assert!(!html.contains("Create dashboard"));
    assert!(!html.contains("/delete\""));
    assert_eq!(team.viewer.page(&new_widget).await.0, 403);
    assert_eq!(team.viewer.page(&edit).await.0, 403);
    let forged: Vec<(String, Vec<(&str, &str)>)> = vec![
        (list.clone(), vec![("name", "Mine")]),
        (format!("{dashboard}/rename"), vec![("name", "Mine")]),
        (format!("{dashboard}/delete"), vec![]),
        (action.clone(), widget_form("Mine", "bar")),
        (
            format!("{dashboard}/widgets/{a}"),
            widget_form("Mine", "bar"),
        ),
        (format!("{dashboard}/widgets/{a}/delete"), vec![]),
        (move_to(a), vec![("direction", "right")]),
        (format!("{dashboard}/layout"), vec![("layout", &layout)]),
    ];
    for (action, fields) in &forged {
        let response = team.viewer.submit(&list, action, fields).await;
        assert_eq!(response.status(), 403, "{action}");
    }
    // Without the form's token, even a MEMBER's post is refused as a forgery.
    let response = team
        .member
        .post_raw(&format!("{dashboard}/delete"), &[])
        .await;
    assert_eq!(response.status(), 403);
    let after = widgets(&team.owner.page(&dashboard).await.1);
    assert_eq!(after.len(), 3, "nothing changed");
    assert!(team.owner.page(&list).await.1.contains(">Spend</a>"));

    // Someone of another organization finds nothing.
    let stranger = UiClient::signed_up(&team.app, "Sam", "sam@example.com").await;
    assert_eq!(stranger.page(&dashboard).await.0, 404);

    // Deleting a widget, then the dashboard.
    let response = team
        .member
        .submit(&dashboard, &format!("{dashboard}/widgets/{b}/delete"), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(widgets(&team.member.page(&dashboard).await.1).len(), 2);
    let response = team
        .member
        .submit(&list, &format!("{dashboard}/delete"), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), list);
    assert_eq!(team.member.page(&dashboard).await.0, 404);
}

fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A project with two traces, three generations of two models (costs and usage given), an ERROR
/// span, and numeric and categorical scores; some names are markup.
async fn seeded() -> (TestApp, UiClient) {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-dash")
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-dash-secret")
        .set("LANGFUSE_INIT_USER_EMAIL", "owner@example.com")
        .set("LANGFUSE_INIT_USER_PASSWORD", "initial password");
    let app = TestApp::spawn_with_worker(config).await;
    let key = ApiKey::new("pk-lf-dash", "sk-lf-dash-secret");
    let (t1, t2) = (minutes_ago(30), minutes_ago(20));
    let generation = |id: &str, trace: &str, at: &str, model: &str, cost: f64, input: u64| {
        let end = (chrono::DateTime::parse_from_rfc3339(at).unwrap()
            + chrono::Duration::milliseconds(1500))
        .to_rfc3339();
        envelope(
            &format!("e-{id}"),
            "generation-create",
            at,
            json!({"id": id, "traceId": trace, "name": "answer", "startTime": at, "endTime": end,
                   "model": model, "usageDetails": {"input": input, "output": 50},
                   "costDetails": {"total": cost}}),
        )
    };
    let batch = vec![
        envelope(
            "e-t1",
            "trace-create",
            &t1,
            json!({"id": "trace-1", "timestamp": t1, "name": "<script>alert('trace')</script>"}),
        ),
        envelope(
            "e-t2",
            "trace-create",
            &t2,
            json!({"id": "trace-2", "timestamp": t2, "name": "chat"}),
        ),
        generation("g1", "trace-1", &t1, "gpt-4o", 0.25, 100),
        generation("g2", "trace-2", &t2, "gpt-4o", 0.5, 200),
        generation(
            "g3",
            "trace-2",
            &t2,
            "<img src=x onerror=alert(1)>",
            1.25,
            1000,
        ),
        envelope(
            "e-s1",
            "span-create",
            &t2,
            json!({"id": "s1", "traceId": "trace-2", "name": "tool", "startTime": t2, "level": "ERROR",
                   "statusMessage": "boom"}),
        ),
        envelope(
            "e-sc1",
            "score-create",
            &t1,
            json!({"id": "sc1", "traceId": "trace-1", "name": "accuracy", "value": 0.25}),
        ),
        envelope(
            "e-sc2",
            "score-create",
            &t2,
            json!({"id": "sc2", "traceId": "trace-2", "name": "accuracy", "value": 0.75}),
        ),
        envelope(
            "e-sc3",
            "score-create",
            &t2,
            json!({"id": "sc3", "traceId": "trace-2", "name": "<script>tone</script>", "value": "friendly",
                   "dataType": "CATEGORICAL"}),
        ),
    ];
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_for_rows("observations", "boot-project", 4).await);
    assert!(app.wait_for_rows("scores", "boot-project", 3).await);
    assert!(app.wait_for_rows("traces", "boot-project", 2).await);
    let owner = UiClient::new(&app);
    assert_eq!(
        owner
            .sign_in("owner@example.com", "initial password")
            .await
            .status(),
        303
    );
    (app, owner)
}

#[tokio::test]
async fn the_home_dashboard_shows_the_figures_of_its_range() {
    let (_app, owner) = seeded().await;
    let (status, html) = owner.page("/project/boot-project").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("aria-current=\"true\">Last 24 hours</a>"),
        "the default range"
    );
    // Totals: 2 traces, 4 observations, $2.00, 1,450 tokens, 1 error.
    for expected in ["Traces", "Observations", "Total cost", "Tokens", "Errors"] {
        assert!(html.contains(expected), "{expected}");
    }
    assert!(html.contains("title=\"$2.00\""), "the total cost: {html}");
    assert!(html.contains("title=\"1,450 tokens\""), "the tokens");
    // By model: the cost bar of each, and the token table.
    assert!(html.contains("gpt-4o: $0.75"), "{html}");
    assert!(html.contains("<td>gpt-4o</td><td class=\"num\">300 tokens</td><td class=\"num\">100 tokens</td><td class=\"num\">400 tokens</td><td class=\"num\">$0.75</td>"), "{html}");
    // Latency percentiles by model: the generations took 1.5 s.
    assert!(html.contains("1.5 s"), "{html}");
    // Scores: the histogram of accuracy, the categorical value counted.
    assert!(html.contains("Score: accuracy"));
    assert!(
        html.contains("Distribution of 2 values, average 0.5"),
        "{html}"
    );
    assert!(html.contains("friendly: 1"), "{html}");
    // Errors over time.
    assert!(html.contains("errors: 1 at"), "{html}");
    // What strangers wrote is text.
    assert!(!html.contains("<script>alert"), "trace names are escaped");
    assert!(!html.contains("<img src=x"), "model names are escaped");
    assert!(!html.contains("<script>tone"), "score names are escaped");
    assert!(html.contains("onerror=alert(1)&#62;") || html.contains("onerror=alert(1)&gt;"));
    // The onboarding moves below the charts when there is data.
    assert!(
        html.find("Traces and observations").unwrap()
            < html.find("Send data to this project").unwrap()
    );

    // Another range: a week ago has nothing.
    let from = (chrono::Utc::now() - chrono::Duration::days(8)).format("%Y-%m-%dT%H:%M");
    let to = (chrono::Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%dT%H:%M");
    let (status, html) = owner
        .page(&format!(
            "/project/boot-project?range=custom&from={from}&to={to}"
        ))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("No data in this range"));
    assert!(!html.contains("gpt-4o"));
    assert!(
        html.find("Send data to this project").unwrap()
            < html.find("Traces and observations").unwrap()
    );
    assert!(
        html.contains(&format!("value=\"{from}\"")),
        "the form keeps the range"
    );
    // A range that cannot be read says so, and shows the default.
    let (status, html) = owner
        .page("/project/boot-project?range=custom&from=soon&to=later")
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("is not a date and time"));
    assert!(html.contains("gpt-4o"));
}

#[tokio::test]
async fn a_custom_dashboard_draws_its_widgets_from_the_metrics_engine() {
    let (_app, owner) = seeded().await;
    let list = "/project/boot-project/dashboards";
    let created = owner.submit(list, list, &[("name", "Models")]).await;
    let dashboard = location(&created);
    let new_widget = format!("{dashboard}/widgets/new");
    for fields in [
        widget_form("Cost by model", "bar"),
        vec![
            ("name", "Traces over time"),
            ("chart_type", "line"),
            ("view", "traces"),
            ("measure", "count"),
            ("aggregation", "count"),
            ("granularity", "auto"),
            ("width", "12"),
            ("height", "1"),
        ],
        vec![
            ("name", "Accuracy"),
            ("chart_type", "histogram"),
            ("view", "scores-numeric"),
            ("measure", "value"),
            ("aggregation", "histogram"),
            ("filter_column_0", "name"),
            ("filter_operator_0", "="),
            ("filter_value_0", "accuracy"),
            ("granularity", "none"),
            ("width", "4"),
            ("height", "1"),
        ],
        // Minute buckets put the two accuracy scores (0.25 and 0.75, ten minutes apart) in
        // two rows; one number is their mean over the range, not a bucket's.
        vec![
            ("name", "Mean accuracy"),
            ("chart_type", "number"),
            ("view", "scores-numeric"),
            ("measure", "value"),
            ("aggregation", "avg"),
            ("filter_column_0", "name"),
            ("filter_operator_0", "="),
            ("filter_value_0", "accuracy"),
            ("granularity", "minute"),
            ("width", "4"),
            ("height", "1"),
        ],
    ] {
        let response = owner
            .submit(&new_widget, &format!("{dashboard}/widgets"), &fields)
            .await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    }
    let (status, html) = owner.page(&dashboard).await;
    assert_eq!(status, 200);
    assert!(!html.contains("alert-error"), "every widget drew: {html}");
    assert!(html.contains("gpt-4o: $0.75"), "{html}");
    assert!(html.contains("Traces over time"));
    assert!(
        html.contains("<title>Traces over time: "),
        "a tooltip per bucket: {html}"
    );
    assert!(html.contains("0.25 to"), "histogram bins: {html}");
    assert!(
        html.contains(r#"aria-label="Mean accuracy: 0.5""#),
        "the mean over the range: {html}"
    );
    assert!(!html.contains("<img src=x"));
    let (_, html) = owner
        .page(&format!(
            "{dashboard}?range=custom&from=2020-01-01T00:00&to=2020-01-02T00:00"
        ))
        .await;
    assert_eq!(html.matches("No data in this range").count(), 4, "{html}");
}
