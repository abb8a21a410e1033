//! The score configs settings page (`/project/{projectId}/settings/scores`) over HTTP: the list,
//! creating configs of each data type (read back through `/api/public/score-configs`), refusals
//! in the form, archive and restore, roles (MEMBER writes as in Langfuse, VIEWER reads) and
//! CSRF; and the trace page's score form with a config: offered while active, the score stored
//! with its `configId`, the config's name and the category's value, refused when it breaks the
//! config's rules.

use serde_json::{json, Value};

use crate::helpers::{location, ApiKey, TestApp, UiClient, UiTeam};

async fn api_configs(app: &TestApp, key: &ApiKey) -> Vec<Value> {
    let (status, body) = app.get_json("/api/public/score-configs", key).await;
    assert_eq!(status, 200);
    body["data"].as_array().unwrap().clone()
}

fn by_name<'a>(configs: &'a [Value], name: &str) -> &'a Value {
    configs
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no config {name}: {configs:?}"))
}

#[tokio::test]
async fn members_create_and_archive_configs_viewers_read_them_and_forgeries_fail() {
    let team = UiTeam::new().await;
    let page = format!("/project/{}/settings/scores", team.project_id);

    // The settings page links to it.
    let (_, settings) = team
        .owner
        .page(&format!("/project/{}/settings", team.project_id))
        .await;
    assert!(settings.contains(&format!("href=\"{page}\" id=\"score-configs-link\"")));
    let (status, html) = team.owner.page(&page).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-configs\"") && html.contains("id=\"config-form\""));

    // A MEMBER creates a categorical config with label -> value rows (an empty row is ignored).
    let response = team
        .member
        .submit(
            &page,
            &page,
            &[
                ("name", "quality"),
                ("data_type", "CATEGORICAL"),
                ("description", "How good the answer is"),
                ("min_value", "5"),
                ("category_label", "good"),
                ("category_value", "2"),
                ("category_label", "bad"),
                ("category_value", "0"),
                ("category_label", ""),
                ("category_value", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{page}?done=created"));
    // The OWNER a numeric one with a range, and a boolean one.
    for fields in [
        vec![
            ("name", "accuracy"),
            ("data_type", "NUMERIC"),
            ("min_value", "0"),
            ("max_value", "1"),
            ("category_label", "left over"),
            ("category_value", "1"),
        ],
        vec![("name", "correct"), ("data_type", "BOOLEAN")],
    ] {
        let response = team.owner.submit(&page, &page, &fields).await;
        assert_eq!(response.status(), 303);
    }
    let configs = api_configs(&team.app, &team.key).await;
    assert_eq!(configs.len(), 3);
    let quality = by_name(&configs, "quality");
    assert_eq!(quality["dataType"], "CATEGORICAL");
    assert_eq!(
        quality["categories"],
        json!([{"label": "good", "value": 2}, {"label": "bad", "value": 0}])
    );
    assert_eq!(quality["minValue"], Value::Null);
    assert_eq!(quality["description"], "How good the answer is");
    let accuracy = by_name(&configs, "accuracy");
    assert_eq!(
        (
            &accuracy["minValue"],
            &accuracy["maxValue"],
            &accuracy["categories"]
        ),
        (&json!(0), &json!(1), &Value::Null)
    );
    assert_eq!(
        by_name(&configs, "correct")["categories"],
        json!([{"label": "True", "value": 1}, {"label": "False", "value": 0}])
    );
    let (_, html) = team.viewer.page(&page).await;
    for shown in [
        "quality",
        "good = 2",
        "bad = 0",
        "0 – 1",
        "True = 1",
        "How good the answer is",
    ] {
        assert!(html.contains(shown), "{shown}");
    }

    // Refusals are the API's, shown in the form with what was written.
    for (fields, reason) in [
        (
            vec![("name", "empty"), ("data_type", "CATEGORICAL")],
            "At least one category is required",
        ),
        (
            vec![
                ("name", "range"),
                ("data_type", "NUMERIC"),
                ("min_value", "1"),
                ("max_value", "0"),
            ],
            "Maximum value must be greater than Minimum value",
        ),
        (
            vec![
                ("name", "twice"),
                ("data_type", "CATEGORICAL"),
                ("category_label", "a"),
                ("category_value", "1"),
                ("category_label", "a"),
                ("category_value", "2"),
            ],
            "Category labels must be unique",
        ),
        (
            vec![("name", "slash/name"), ("data_type", "TEXT")],
            "name may only contain",
        ),
    ] {
        let response = team.member.submit(&page, &page, &fields).await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("id=\"form-error\"") && html.contains(reason),
            "{reason}: {html}"
        );
        assert!(
            html.contains(&format!("value=\"{}\"", fields[0].1.replace('/', "&#x2f;")))
                || html.contains(&format!("value=\"{}\"", fields[0].1))
        );
    }
    assert_eq!(api_configs(&team.app, &team.key).await.len(), 3);

    // Archive and restore, by a MEMBER; read back through the API.
    let id = quality["id"].as_str().unwrap();
    let archive = format!("{page}/{id}/archive");
    let response = team.member.submit(&page, &archive, &[]).await;
    assert_eq!(response.status(), 303);
    let configs = api_configs(&team.app, &team.key).await;
    assert_eq!(by_name(&configs, "quality")["isArchived"], true);
    let (_, html) = team.owner.page(&page).await;
    assert!(html.contains(&format!("{page}/{id}/restore")));
    let response = team
        .member
        .submit(&page, &format!("{page}/{id}/restore"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let configs = api_configs(&team.app, &team.key).await;
    assert_eq!(by_name(&configs, "quality")["isArchived"], false);
    let response = team
        .member
        .submit(&page, &format!("{page}/no-such-config/archive"), &[])
        .await;
    assert_eq!(response.status(), 404);

    // A VIEWER reads, without forms; their own token does not let them write.
    let (status, html) = team.viewer.page(&page).await;
    assert_eq!(status, 200);
    assert!(!html.contains("id=\"config-form\"") && !html.contains("/archive\""));
    assert!(html.contains("Your role: VIEWER"));
    let response = team
        .viewer
        .submit(&page, &page, &[("name", "sneaky"), ("data_type", "TEXT")])
        .await;
    assert_eq!(response.status(), 403);
    let response = team.viewer.submit(&page, &archive, &[]).await;
    assert_eq!(response.status(), 403);

    // No token or a wrong one: refused before anything is written.
    for fields in [
        vec![("name", "forged"), ("data_type", "TEXT")],
        vec![
            ("csrf_token", "0123"),
            ("name", "forged"),
            ("data_type", "TEXT"),
        ],
    ] {
        let response = team.owner.post_raw(&page, &fields).await;
        assert_eq!(response.status(), 403);
        let response = team.owner.post_raw(&archive, &fields).await;
        assert_eq!(response.status(), 403);
    }
    let configs = api_configs(&team.app, &team.key).await;
    assert_eq!(configs.len(), 3);
    assert_eq!(by_name(&configs, "quality")["isArchived"], false);

    // Someone of no member organization gets the UI's 404.
    let stranger = UiClient::signed_up(&team.app, "Sam", "sam@example.com").await;
    assert_eq!(stranger.page(&page).await.0, 404);
}

#[tokio::test]
async fn the_trace_page_scores_with_a_config_and_refuses_what_breaks_it() {
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let owner = UiClient::new(&app);
    assert_eq!(
        owner
            .sign_in("owner@example.com", "initial password")
            .await
            .status(),
        303
    );
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    app.ingest_accepted(
        &key,
        &json!({"batch": [
            crate::helpers::envelope("e-t", "trace-create", &at,
                json!({"id": "t-rated", "name": "answer", "timestamp": at})),
            crate::helpers::envelope("e-o", "span-create", &at,
                json!({"id": "o-step", "traceId": "t-rated", "name": "step", "startTime": at})),
        ]}),
    )
    .await;
    let create = |body: Value| {
        let app = &app;
        let key = &key;
        async move {
            let response = app.post_as("/api/public/score-configs", key, &body).await;
            assert_eq!(response.status(), 200);
            let config: Value = response.json().await.unwrap();
            config["id"].as_str().unwrap().to_string()
        }
    };
    let quality = create(json!({"name": "quality", "dataType": "CATEGORICAL",
        "categories": [{"label": "good", "value": 2}, {"label": "bad", "value": 0}]}))
    .await;
    let accuracy =
        create(json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}))
            .await;
    let old = create(json!({"name": "old", "dataType": "BOOLEAN"})).await;
    let response = app
        .http
        .patch(app.url(&format!("/api/public/score-configs/{old}")))
        .header("Authorization", key.basic_auth())
        .json(&json!({"isArchived": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let trace = "/project/boot-project/traces/t-rated";
    assert!(
        crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
            owner.page(trace).await.0 == 200
        })
        .await
    );
    let (_, html) = owner.page(trace).await;
    assert!(html.contains("data-score-config"), "{html}");
    assert!(html.contains(&format!(
        "<option value=\"{quality}\">quality (CATEGORICAL)"
    )));
    assert!(html.contains(&format!(
        "<option value=\"{accuracy}\">accuracy (NUMERIC, 0 – 1)"
    )));
    assert!(
        !html.contains(&format!("value=\"{old}\"")),
        "archived configs are not offered"
    );
    assert!(html.contains("<option value=\"good\">good</option>"));
    assert!(html.contains("min=\"0\" max=\"1\""));

    let token = owner.csrf_token(trace).await;
    let action = format!("{trace}/scores");
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("config_id", &quality),
                ("value", "good"),
                ("comment", "clear"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, scores) = app
        .get_json("/api/public/v2/scores?name=quality", &key)
        .await;
    let score = &scores["data"][0];
    assert_eq!(
        (
            &score["configId"],
            &score["value"],
            &score["stringValue"],
            &score["dataType"]
        ),
        (
            &json!(quality),
            &json!(2.0),
            &json!("good"),
            &json!("CATEGORICAL")
        ),
        "{scores}"
    );
    assert_eq!(score["source"], "ANNOTATION");
    assert_eq!(score["comment"], "clear");

    // Out of the config's range, an unknown label, an archived or unknown config: 400s.
    for (config, value, reason) in [
        (&accuracy, "1.5", "Value exceeds maximum value of 1"),
        (
            &quality,
            "meh",
            "Value meh does not map to a valid category",
        ),
        (&old, "True", "Config is archived"),
        (&"nope".to_string(), "1", "does not match a valid config"),
    ] {
        let response = owner
            .post_raw(
                &action,
                &[
                    ("csrf_token", &token),
                    ("config_id", config),
                    ("value", value),
                ],
            )
            .await;
        assert_eq!(response.status(), 400, "{value}");
        let html = response.text().await.unwrap();
        assert!(html.contains(reason), "{reason}: {html}");
    }
    let (_, all) = app.get_json("/api/public/v2/scores", &key).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");

    // An observation's panel, answered alone for the page's script, offers the configs too.
    let (status, fragment) = owner.page(&format!("{trace}/observations/o-step")).await;
    assert_eq!(status, 200);
    assert!(fragment.contains(&format!("<option value=\"{quality}\">")));
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("observation_id", "o-step"),
                ("config_id", &accuracy),
                ("value", "0.5"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, on_step) = app
        .get_json("/api/public/v2/scores?name=accuracy", &key)
        .await;
    assert_eq!(
        (
            &on_step["data"][0]["observationId"],
            &on_step["data"][0]["value"]
        ),
        (&json!("o-step"), &json!(0.5)),
        "{on_step}"
    );

    // Free-form scores remain.
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("config_id", ""),
                ("name", "free"),
                ("data_type", "NUMERIC"),
                ("value", "7"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, free) = app.get_json("/api/public/v2/scores?name=free", &key).await;
    assert_eq!(free["data"][0]["configId"], Value::Null);
}
