//! The datasets pages over HTTP: the list and its create form (read back through
//! `/api/public/v2/datasets`, refusals shown in the form), items created, edited, archived and
//! restored (read back through `/api/public/dataset-items`, the dataset's schema refusing what
//! the API refuses, with its words), roles (MEMBER writes, VIEWER reads), CSRF, escaping of what
//! datasets and items carry; "add to dataset" on a trace's page; and the comparison of two runs
//! made through `dataset-run-items` over traces sent through the ingestion API: each item's
//! output, latency, cost and scores per run, and each run's totals and means.

use serde_json::{json, Value};

use crate::helpers::{element_text, envelope, location, ApiKey, TestApp, UiClient, UiTeam};

const PAYLOAD: &str = "<script>window.__pwned=1</script>";

fn encoded(text: &str) -> String {
    // A path segment: a space is `%20` there, not `+`.
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn api_dataset(app: &TestApp, key: &ApiKey, name: &str) -> (u16, Value) {
    app.get_json(&format!("/api/public/v2/datasets/{}", encoded(name)), key)
        .await
}

async fn post_json(app: &TestApp, key: &ApiKey, path: &str, body: Value) -> (u16, Value) {
    let response = app.post_as(path, key, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn api_item(app: &TestApp, key: &ApiKey, id: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/public/dataset-items/{}", encoded(id)), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The id a redirect to `…/datasets/{id}[/items/{itemId}]?done=…` names after `segment`.
fn id_after(location: &str, segment: &str) -> String {
    let rest = location
        .split(segment)
        .nth(1)
        .unwrap_or_else(|| panic!("{segment} in {location}"));
    rest.split(['/', '?']).next().unwrap().to_string()
}

#[tokio::test]
async fn members_create_datasets_and_items_viewers_read_them_and_forgeries_fail() {
    let team = UiTeam::new().await;
    let (app, key) = (&team.app, &team.key);
    let list = format!("/project/{}/datasets", team.project_id);

    let (status, html) = team.owner.page(&list).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-datasets\"") && html.contains("id=\"dataset-form\""));
    assert!(
        html.contains(&format!("href=\"{list}\" aria-current=\"page\">Datasets")),
        "the sidebar leads here"
    );

    // A MEMBER creates a dataset in a folder, with a schema for the items' input.
    let response = team
        .member
        .submit(
            &list,
            &list,
            &[
                ("name", " evals/capitals & co "),
                ("description", PAYLOAD),
                ("metadata", r#"{"owner": "support"}"#),
                (
                    "input_schema",
                    r#"{"type": "object", "required": ["country"]}"#,
                ),
                ("expected_output_schema", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let dataset_path = location(&response);
    assert!(dataset_path.ends_with("?done=created"), "{dataset_path}");
    let dataset_id = id_after(&dataset_path, "/datasets/");
    let (status, dataset) = api_dataset(app, key, "evals/capitals & co").await;
    assert_eq!(status, 200, "{dataset}");
    assert_eq!(dataset["id"], json!(dataset_id));
    assert_eq!(dataset["description"], PAYLOAD);
    assert_eq!(dataset["metadata"], json!({"owner": "support"}));
    assert_eq!(dataset["inputSchema"]["required"], json!(["country"]));
    assert_eq!(dataset["expectedOutputSchema"], Value::Null);

    // The list and the dataset's page show it, escaped.
    let (_, html) = team.viewer.page(&list).await;
    assert!(html.contains("evals/") && html.contains("capitals &#38; co"));
    assert!(!html.contains(PAYLOAD) && html.contains("&#60;script&#62;"));
    assert!(
        !html.contains("id=\"dataset-form\""),
        "a VIEWER gets no form"
    );
    let dataset_page = format!("{list}/{dataset_id}");
    let (status, html) = team.viewer.page(&dataset_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-runs\"") && !html.contains(PAYLOAD));

    // Refusals, shown in the form with what was written.
    for (fields, status, reason) in [
        (
            vec![("name", "broken"), ("metadata", "{owner: support}")],
            400,
            "Metadata is not valid JSON",
        ),
        (
            vec![("name", "/lead")],
            400,
            "Name cannot start with a slash",
        ),
        (
            vec![("name", "<b>x</b>")],
            400,
            "Text cannot contain HTML tags",
        ),
        (vec![("name", "evals/capitals & co")], 409, "exists already"),
        (
            vec![("name", "bad-schema"), ("input_schema", r#"{"type": 5}"#)],
            400,
            "",
        ),
    ] {
        let response = team.member.submit(&list, &list, &fields).await;
        assert_eq!(response.status(), status, "{fields:?}");
        let html = response.text().await.unwrap();
        let error = element_text(&html, "form-error").expect("the form's error");
        assert!(error.contains(reason), "{error}");
        if fields[0].1 == "broken" {
            assert!(
                html.contains("value=\"broken\"") && html.contains(">{owner: support}</textarea>")
            );
        }
    }
    let (_, datasets) = app.get_json("/api/public/v2/datasets", key).await;
    assert_eq!(datasets["data"].as_array().unwrap().len(), 1, "{datasets}");
    // NUL, which PostgreSQL cannot store, is dropped, as the API drops it.
    let response = team
        .member
        .submit(
            &list,
            &list,
            &[
                ("name", "nul\u{0}ed"),
                ("description", "a\u{0}b"),
                ("metadata", r#"{"k": "v\u0000w"}"#),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (status, nul) = api_dataset(app, key, "nuled").await;
    assert_eq!(status, 200, "{nul}");
    assert_eq!(
        (&nul["description"], &nul["metadata"]),
        (&json!("ab"), &json!({"k": "vw"}))
    );

    // A VIEWER's write is refused, and so is a form without the page's token.
    let response = team
        .viewer
        .submit(&list, &list, &[("name", "viewer-made")])
        .await;
    assert_eq!(response.status(), 403);
    let response = team.member.post_raw(&list, &[("name", "forged")]).await;
    assert_eq!(response.status(), 403);
    assert_eq!(api_dataset(app, key, "viewer-made").await.0, 404);
    assert_eq!(api_dataset(app, key, "forged").await.0, 404);

    // Items: one the schema refuses (with the API's own words), then one it takes.
    let items_page = format!("{dataset_page}/items");
    let create = format!("/project/{}/dataset-items", team.project_id);
    let refused_by_api = app
        .post_as(
            "/api/public/dataset-items",
            key,
            &json!({"datasetName": "evals/capitals & co", "input": {"city": "Rome"}}),
        )
        .await;
    assert_eq!(refused_by_api.status(), 400);
    let api_message = refused_by_api.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    let response = team
        .member
        .submit(
            &items_page,
            &create,
            &[
                ("dataset_id", &dataset_id),
                ("input", r#"{"city": "Rome"}"#),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert_eq!(element_text(&html, "form-error").unwrap(), api_message);
    let response = team
        .member
        .submit(
            &items_page,
            &create,
            &[("dataset_id", &dataset_id), ("input", "not json")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(element_text(&html, "form-error")
        .unwrap()
        .starts_with("Input is not valid JSON"));
    assert!(
        html.contains(">not json</textarea>"),
        "what was written stays"
    );

    let response = team
        .member
        .submit(
            &items_page,
            &create,
            &[
                ("dataset_id", &dataset_id),
                ("input", &json!({"country": PAYLOAD}).to_string()),
                ("expected_output", "\"Paris\""),
                ("metadata", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let item_path = location(&response);
    let item_id = id_after(&item_path, "/items/");
    let item = api_item(app, key, &item_id).await;
    assert_eq!(item["datasetId"], json!(dataset_id));
    assert_eq!(item["input"], json!({"country": PAYLOAD}));
    assert_eq!(item["expectedOutput"], "Paris");
    assert_eq!(item["metadata"], Value::Null);
    assert_eq!(item["status"], "ACTIVE");

    let (status, html) = team.viewer.page(&item_path).await;
    assert_eq!(status, 200);
    assert!(!html.contains(PAYLOAD), "the item's values are escaped");
    assert!(html.contains("Paris") && !html.contains("id=\"item-form\""));
    let (_, html) = team.viewer.page(&items_page).await;
    assert!(html.contains(&item_id[..8]) && !html.contains(PAYLOAD));

    // A VIEWER adds and edits nothing.
    let (_, before) = app
        .get_json(
            "/api/public/dataset-items?datasetName=evals%2Fcapitals%20%26%20co",
            key,
        )
        .await;
    for action in [create.clone(), format!("{items_page}/{item_id}")] {
        let response = team
            .viewer
            .submit(
                &items_page,
                &action,
                &[
                    ("dataset_id", &dataset_id),
                    ("input", r#"{"country": "Chile"}"#),
                ],
            )
            .await;
        assert_eq!(response.status(), 403, "{action}");
    }
    let (_, after) = app
        .get_json(
            "/api/public/dataset-items?datasetName=evals%2Fcapitals%20%26%20co",
            key,
        )
        .await;
    assert_eq!(before["data"], after["data"]);
    assert_eq!(after["data"].as_array().unwrap().len(), 1, "{after}");

    // Edit: an emptied field is cleared, the schema still holds.
    let item_href = format!("{items_page}/{item_id}");
    let response = team
        .member
        .submit(
            &item_href,
            &item_href,
            &[
                ("input", r#"{"country": "France"}"#),
                ("expected_output", ""),
                ("metadata", r#"{"checked": true}"#),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{item_href}?done=saved"));
    let item = api_item(app, key, &item_id).await;
    assert_eq!(item["input"], json!({"country": "France"}));
    assert_eq!(item["expectedOutput"], Value::Null);
    assert_eq!(item["metadata"], json!({"checked": true}));
    let response = team
        .member
        .submit(&item_href, &item_href, &[("input", "[1]")])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        api_item(app, key, &item_id).await["input"],
        json!({"country": "France"}),
        "a refused edit changes nothing"
    );

    // Archive and restore; a VIEWER may do neither.
    let response = team
        .viewer
        .submit(&item_href, &format!("{item_href}/archive"), &[])
        .await;
    assert_eq!(response.status(), 403);
    let response = team
        .member
        .submit(
            &items_page,
            &format!("{item_href}/archive"),
            &[("back", "items")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{items_page}?done=archived"));
    assert_eq!(api_item(app, key, &item_id).await["status"], "ARCHIVED");
    let (_, html) = team.owner.page(&items_page).await;
    assert!(html.contains("class=\"archived\"") && html.contains(">Restore</button>"));
    let response = team
        .owner
        .submit(&item_href, &format!("{item_href}/restore"), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(api_item(app, key, &item_id).await["status"], "ACTIVE");

    // What is not there, or another dataset's, is the UI's 404.
    let (status, _) = team.owner.page(&format!("{list}/no-such-dataset")).await;
    assert_eq!(status, 404);
    let other = app
        .post_as("/api/public/v2/datasets", key, &json!({"name": "other"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let (status, _) = team
        .owner
        .page(&format!(
            "{list}/{}/items/{item_id}",
            other["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _) = team.owner.page(&format!("{items_page}/nope")).await;
    assert_eq!(status, 404);

    // An item id with `/`, `+`, `%` and a space opens, edits and archives at its encoded path.
    let odd_id = "faq/1+1 = 100%";
    let response = app
        .post_as(
            "/api/public/dataset-items",
            key,
            &json!({"datasetName": "evals/capitals & co", "id": odd_id, "input": {"country": "Peru"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, html) = team.owner.page(&items_page).await;
    let odd_href = format!("{items_page}/{}", encoded(odd_id));
    assert!(html.contains(&format!("href=\"{odd_href}\"")), "{html}");
    let (status, html) = team.owner.page(&odd_href).await;
    assert_eq!(status, 200);
    assert!(html.contains(odd_id));
    let response = team
        .owner
        .submit(&odd_href, &format!("{odd_href}/archive"), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(api_item(app, key, odd_id).await["status"], "ARCHIVED");
}

fn at(minutes_ago: i64, plus_ms: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)
        + chrono::Duration::milliseconds(plus_ms))
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A trace with one generation from `+0` to `+latency_ms`, with `output`, costing `cost`, and a
/// score `accuracy` of `score`.
fn run_trace(id: &str, output: Value, latency_ms: i64, cost: f64, score: f64) -> Vec<Value> {
    let t0 = at(30, 0);
    vec![
        envelope(
            &format!("e-{id}"),
            "trace-create",
            &t0,
            json!({"id": id, "timestamp": t0, "name": "experiment-item", "output": output}),
        ),
        envelope(
            &format!("e-{id}-g"),
            "generation-create",
            &t0,
            json!({"id": format!("{id}-gen"), "traceId": id, "name": "llm", "startTime": t0,
                   "endTime": at(30, latency_ms), "model": "gpt-4o-mini",
                   "output": {"answer": format!("observation of {id}")},
                   "costDetails": {"total": cost}}),
        ),
        envelope(
            &format!("e-{id}-s"),
            "score-create",
            &t0,
            json!({"id": format!("{id}-score"), "traceId": id, "name": "accuracy", "value": score}),
        ),
    ]
}

#[tokio::test]
async fn members_rename_change_and_delete_a_dataset_viewers_cannot() {
    let team = UiTeam::new().await;
    let (app, key) = (&team.app, &team.key);
    let list = format!("/project/{}/datasets", team.project_id);
    for name in ["edit/me", "other"] {
        let (status, _) =
            post_json(app, key, "/api/public/v2/datasets", json!({"name": name})).await;
        assert_eq!(status, 200);
    }
    let (status, item) = post_json(
        app,
        key,
        "/api/public/dataset-items",
        json!({"datasetName": "edit/me", "input": {"country": "France"}}),
    )
    .await;
    assert_eq!(status, 200, "{item}");
    let item_id = item["id"].as_str().unwrap().to_string();
    let (status, _) = post_json(
        app,
        key,
        "/api/public/dataset-run-items",
        json!({"runName": "first", "datasetItemId": item_id, "traceId": "t-1"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, dataset) = api_dataset(app, key, "edit/me").await;
    let dataset_id = dataset["id"].as_str().unwrap().to_string();
    let dataset_page = format!("{list}/{dataset_id}");
    let settings = format!("{dataset_page}/settings");

    // A VIEWER sees no settings tab and is refused the page and its forms.
    let (_, html) = team.viewer.page(&dataset_page).await;
    assert!(!html.contains("id=\"tab-settings\""));
    assert_eq!(team.viewer.page(&settings).await.0, 403);
    let token = team.viewer.csrf_token(&dataset_page).await;
    let forged = team
        .viewer
        .post_raw(
            &format!("{dataset_page}/delete"),
            &[("csrf_token", token.as_str()), ("confirm_name", "edit/me")],
        )
        .await;
    assert_eq!(forged.status(), 403);

    // A MEMBER's form holds the dataset as it is.
    let (_, html) = team.member.page(&dataset_page).await;
    assert!(html.contains("id=\"tab-settings\""));
    let (status, html) = team.member.page(&settings).await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"edit/me\""), "{html}");

    // Refusals: a schema the current item fails, another dataset's name.
    for (fields, status, reason) in [
        (
            vec![
                ("name", "edit/me"),
                (
                    "input_schema",
                    r#"{"type": "object", "required": ["city"]}"#,
                ),
            ],
            400,
            "do not satisfy the new schema",
        ),
        (vec![("name", "other")], 409, "exists already"),
    ] {
        let response = team.member.submit(&settings, &settings, &fields).await;
        assert_eq!(response.status(), status, "{fields:?}");
        let html = response.text().await.unwrap();
        let error = element_text(&html, "form-error").expect("the form's error");
        assert!(error.contains(reason), "{error}");
    }

    // Renamed, described, with metadata: the API reads it under the new name only.
    let response = team
        .member
        .submit(
            &settings,
            &settings,
            &[
                ("name", "edit/renamed"),
                ("description", PAYLOAD),
                ("metadata", r#"{"owner": "evals"}"#),
                (
                    "input_schema",
                    r#"{"type": "object", "required": ["country"]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{settings}?done=saved"));
    let (status, renamed) = api_dataset(app, key, "edit/renamed").await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["id"], json!(dataset_id));
    assert_eq!(renamed["description"], PAYLOAD);
    assert_eq!(renamed["metadata"], json!({"owner": "evals"}));
    assert_eq!(renamed["inputSchema"]["required"], json!(["country"]));
    assert_eq!(api_dataset(app, key, "edit/me").await.0, 404);
    let (_, html) = team.member.page(&format!("{settings}?done=saved")).await;
    assert!(html.contains("The dataset was saved.") && !html.contains(PAYLOAD));
    // Emptied fields are cleared.
    let response = team
        .member
        .submit(&settings, &settings, &[("name", "edit/renamed")])
        .await;
    assert_eq!(response.status(), 303);
    let (_, cleared) = api_dataset(app, key, "edit/renamed").await;
    assert_eq!(
        (
            &cleared["description"],
            &cleared["metadata"],
            &cleared["inputSchema"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );

    // Deleting takes the name typed again; then the dataset, its items and runs are gone.
    let delete = format!("{dataset_page}/delete");
    let response = team
        .member
        .submit(&settings, &delete, &[("confirm_name", "edit/me")])
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(element_text(&html, "delete-error").is_some());
    assert_eq!(api_dataset(app, key, "edit/renamed").await.0, 200);
    let response = team
        .member
        .submit(&settings, &delete, &[("confirm_name", "edit/renamed")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{list}?done=deleted"));
    assert_eq!(api_dataset(app, key, "edit/renamed").await.0, 404);
    let (status, _) = app
        .get_json(&format!("/api/public/dataset-items/{item_id}"), key)
        .await;
    assert_eq!(status, 404);
    let client = app.stores.postgres.get().await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM dataset_runs WHERE dataset_id = $1)
                  + (SELECT count(*) FROM dataset_items WHERE dataset_id = $1)",
            &[&dataset_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let (_, html) = team.member.page(&format!("{list}?done=deleted")).await;
    assert!(html.contains("The dataset was deleted."));
    assert_eq!(team.member.page(&settings).await.0, 404);
}

#[tokio::test]
async fn runs_compare_item_by_item_with_their_outputs_figures_and_totals() {
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let owner = UiClient::new(&app);
    assert_eq!(
        owner
            .sign_in("owner@example.com", "initial password")
            .await
            .status(),
        303
    );
    let mut batch = Vec::new();
    batch.extend(run_trace("t-a1", json!("Rome"), 1000, 0.001, 1.0));
    batch.extend(run_trace("t-a2", json!(PAYLOAD), 3000, 0.003, 0.0));
    batch.extend(run_trace("t-b1", json!("Roma"), 2000, 0.002, 0.5));
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_until_written().await);

    let dataset = app
        .post_as(
            "/api/public/v2/datasets",
            &key,
            &json!({"name": "capitals"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let dataset_id = dataset["id"].as_str().unwrap().to_string();
    for (id, country) in [("item-italy", "Italy"), ("item-peru", "Peru")] {
        let response = app
            .post_as(
                "/api/public/dataset-items",
                &key,
                &json!({"datasetName": "capitals", "id": id, "input": {"country": country},
                        "expectedOutput": format!("capital of {country}")}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    // Run A used both items; run B only the first, and names the observation.
    for (run, item, trace, observation) in [
        ("run-a", "item-italy", "t-a1", None),
        ("run-a", "item-peru", "t-a2", None),
        ("run-b", "item-italy", "t-b1", Some("t-b1-gen")),
    ] {
        let mut body = json!({"runName": run, "datasetItemId": item, "traceId": trace,
                              "runDescription": format!("{run} description")});
        if let Some(observation) = observation {
            body["observationId"] = json!(observation);
        }
        let response = app
            .post_as("/api/public/dataset-run-items", &key, &body)
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    let (_, runs) = app
        .get_json("/api/public/datasets/capitals/runs", &key)
        .await;
    let run_id = |name: &str| {
        runs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (run_a, run_b) = (run_id("run-a"), run_id("run-b"));

    let dataset_page = format!("/project/boot-project/datasets/{dataset_id}");
    let (status, html) = owner.page(&dataset_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("run-a") && html.contains("run-b"));
    assert!(html.contains(&format!("value=\"{run_a}\"")));
    // Each run's figures over all its items, in the runs table too.
    let row_a = html
        .split(&format!("data-run-id=\"{run_a}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    for figure in ["2.00s", "$0.004", "accuracy", ">0.5<"] {
        assert!(row_a.contains(figure), "run A's {figure}: {row_a}");
    }

    let (status, html) = owner
        .page(&format!("{dataset_page}/compare?runs={run_a}&runs={run_b}"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains(PAYLOAD), "outputs are escaped");
    let table = html
        .split("id=\"compare-table\"")
        .nth(1)
        .expect("the comparison table");
    let totals = table.split("id=\"run-totals\"").nth(1).unwrap();
    let totals = totals.split("</tr>").next().unwrap();
    let columns: Vec<&str> = totals.split("class=\"run-totals\"").skip(1).collect();
    assert_eq!(columns.len(), 2);
    // Run A: two items, latencies 1 s and 3 s, costs $0.001 and $0.003, accuracy 1 and 0.
    for figure in ["2.00s", "$0.004", "$0.002", ">2<", "accuracy", ">0.5<"] {
        assert!(
            columns[0].contains(figure),
            "run A's {figure}: {}",
            columns[0]
        );
    }
    // Run B: one item, measured by its observation.
    for figure in ["2.00s", "$0.002", ">1<", ">0.5<"] {
        assert!(
            columns[1].contains(figure),
            "run B's {figure}: {}",
            columns[1]
        );
    }
    let rows: Vec<&str> = table.split("<tr data-item-id=").skip(1).collect();
    assert_eq!(rows.len(), 2);
    let italy = rows.iter().find(|r| r.contains("item-italy")).unwrap();
    let peru = rows.iter().find(|r| r.contains("item-peru")).unwrap();
    assert!(italy.contains("capital of Italy") && italy.contains("Rome"));
    assert!(
        italy.contains("observation of t-b1"),
        "run B shows its observation's output"
    );
    assert!(italy.contains("/traces/t-b1?observation=t-b1-gen"));
    assert!(peru.contains("Not in this run") && peru.contains("3.00s"));
    assert!(peru.contains("&#60;script&#62;") || peru.contains("&lt;script&gt;"));

    // A run's own page is the comparison of that run alone; another dataset's run is a 404.
    let (status, html) = owner.page(&format!("{dataset_page}/runs/{run_b}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Run: run-b") && html.contains("observation of t-b1"));
    assert!(!html.contains("observation of t-a1"));
    let (status, _) = owner
        .page(&format!(
            "/project/boot-project/datasets/elsewhere/runs/{run_b}"
        ))
        .await;
    assert_eq!(status, 404);

    // An item's page lists the runs that used it.
    let (_, html) = owner
        .page(&format!("{dataset_page}/items/item-italy"))
        .await;
    let runs_section = html.split("id=\"item-runs\"").nth(1).expect("its runs");
    assert!(runs_section.contains("run-a") && runs_section.contains("run-b"));
    assert!(runs_section.contains("Rome"));

    // "Add to dataset" on a trace's page, for an observation: the item names its source.
    let trace_page = "/project/boot-project/traces/t-a1?observation=t-a1-gen";
    let (_, html) = owner.page(trace_page).await;
    assert!(html.contains("id=\"dataset-item-form\""), "{html}");
    assert!(
        html.contains("observation of t-a1"),
        "the form starts from the output"
    );
    let response = owner
        .submit(
            trace_page,
            "/project/boot-project/dataset-items",
            &[
                ("dataset_id", &dataset_id),
                ("source_trace_id", "t-a1"),
                ("source_observation_id", "t-a1-gen"),
                ("input", r#"{"country": "Italy", "variant": 2}"#),
                ("expected_output", r#""Rome""#),
                ("metadata", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let item_path = location(&response);
    let item = api_item(&app, &key, &id_after(&item_path, "/items/")).await;
    assert_eq!(item["sourceTraceId"], "t-a1");
    assert_eq!(item["sourceObservationId"], "t-a1-gen");
    assert_eq!(item["expectedOutput"], "Rome");
    let (_, html) = owner.page(&item_path).await;
    assert!(html.contains("href=\"/project/boot-project/traces/t-a1?observation=t-a1-gen\""));
    // A form from the trace page that fails is shown again on its own page, source kept.
    let response = owner
        .submit(
            trace_page,
            "/project/boot-project/dataset-items",
            &[
                ("dataset_id", &dataset_id),
                ("source_trace_id", "t-a1"),
                ("input", "{oops"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"item-form\"")
            && html.contains("name=\"source_trace_id\" value=\"t-a1\"")
    );
}

/// Seeds a dataset of `items` items and two runs over all of them (a trace with a generation and
/// a score per item and run, through the ingestion API; run items through `dataset-run-items`),
/// then opens the comparison's first page (each run's totals over all its items, outputs of 50
/// items) and a deep page seven times each, checking what they show and printing the median
/// times in milliseconds, as the browser waits for them.
async fn time_a_comparison(items: usize) {
    use std::time::Instant;

    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let owner = UiClient::new(&app);
    assert_eq!(
        owner
            .sign_in("owner@example.com", "initial password")
            .await
            .status(),
        303
    );
    let dataset = app
        .post_as("/api/public/v2/datasets", &key, &json!({"name": "timed"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let dataset_id = dataset["id"].as_str().unwrap().to_string();
    let seeding = Instant::now();
    let mut envelopes = Vec::new();
    for i in 0..items {
        for run in ["a", "b"] {
            let id = format!("t-{run}-{i}");
            let answer = format!("Answer {i} of run {run}: {}", "words ".repeat(40));
            envelopes.extend(run_trace(
                &id,
                json!(answer),
                500 + i as i64 % 900,
                0.0001,
                (i % 3) as f64 / 2.0,
            ));
        }
    }
    for chunk in envelopes.chunks(600) {
        app.ingest_accepted(&key, &json!({ "batch": chunk })).await;
    }
    let posts: Vec<(String, Value)> = (0..items)
        .map(|i| {
            (
                "/api/public/dataset-items".to_string(),
                json!({"datasetName": "timed", "id": format!("item-{i}"),
                       "input": {"question": format!("Question {i}: {}", "text ".repeat(30))},
                       "expectedOutput": format!("Expected {i}")}),
            )
        })
        .collect();
    for chunk in posts.chunks(16) {
        let sent = chunk
            .iter()
            .map(|(path, body)| app.post_as(path, &key, body));
        for response in futures::future::join_all(sent).await {
            assert_eq!(response.status(), 200);
        }
    }
    let links: Vec<Value> = (0..items)
        .flat_map(|i| {
            ["a", "b"].map(|run| {
                json!({"runName": format!("run-{run}"), "datasetItemId": format!("item-{i}"),
                       "traceId": format!("t-{run}-{i}")})
            })
        })
        .collect();
    for chunk in links.chunks(16) {
        let sent = chunk
            .iter()
            .map(|body| app.post_as("/api/public/dataset-run-items", &key, body));
        for response in futures::future::join_all(sent).await {
            assert_eq!(response.status(), 200);
        }
    }
    assert!(app.wait_until_written().await);
    println!(
        "seeded {items} items, {} traces and {} run items in {:.0} s",
        2 * items,
        2 * items,
        seeding.elapsed().as_secs_f64()
    );
    let (_, runs) = app.get_json("/api/public/datasets/timed/runs", &key).await;
    let ids: Vec<String> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let compare = format!(
        "/project/boot-project/datasets/{dataset_id}/compare?runs={}&runs={}",
        ids[0], ids[1]
    );
    for page in [1, items.div_ceil(50)] {
        let path = format!("{compare}&page={page}");
        let mut times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            let (status, html) = owner.page(&path).await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200);
            assert!(html.contains("Answer "), "outputs shown");
            assert!(
                html.contains(&format!(">{items}<")),
                "totals over every item"
            );
        }
        times.sort_by(f64::total_cmp);
        println!(
            "compare page {page} of two runs of {items} items: median {:.0} ms (min {:.0}, max {:.0})",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}

/// The comparison over many items: its first and last pages show outputs and each run's totals
/// over every item (the times it prints are a measurement, not a check).
#[tokio::test]
async fn a_comparison_of_two_runs_of_200_items_opens() {
    time_a_comparison(200).await;
}

/// A measurement, run by hand: `cargo test --release --test api a_comparison_of_two_runs_of_1000
/// -- --ignored --nocapture` prints the medians of the first and the last page.
#[tokio::test]
#[ignore = "a measurement: cargo test --release --test api a_comparison_of_two_runs_of_1000 -- --ignored --nocapture"]
async fn a_comparison_of_two_runs_of_1000_items_opens() {
    time_a_comparison(1_000).await;
}
