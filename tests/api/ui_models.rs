//! The models settings page over HTTP: the shipped models listed, a project model created in the
//! form and read back through `GET /api/public/models`, the API's refusals shown in the form, the
//! matching box (project model first, newest start date), deleting, roles and CSRF.

use serde_json::Value;

use crate::helpers::{element_text, form_actions, location, ApiKey, TestApp, UiClient, UiTeam};

struct Team {
    app: TestApp,
    project_id: String,
    owner: UiClient,
    member: UiClient,
    viewer: UiClient,
    key: ApiKey,
}

impl Team {
    async fn new() -> Team {
        let UiTeam {
            app,
            project_id,
            owner,
            member,
            viewer,
            key,
        } = UiTeam::new().await;
        Team {
            app,
            project_id,
            owner,
            member,
            viewer,
            key,
        }
    }

    fn page(&self) -> String {
        format!("/project/{}/settings/models", self.project_id)
    }

    async fn create(&self, who: &UiClient, fields: &[(&str, &str)]) -> reqwest::Response {
        who.submit(&self.page(), &self.page(), fields).await
    }

    async fn project_models(&self) -> Vec<Value> {
        let (status, body) = self
            .app
            .get_json("/api/public/models?limit=100", &self.key)
            .await;
        assert_eq!(status, 200, "{body}");
        let mut all = Vec::new();
        let pages = body["meta"]["totalPages"].as_u64().unwrap();
        for page in 1..=pages {
            let (_, body) = self
                .app
                .get_json(
                    &format!("/api/public/models?limit=100&page={page}"),
                    &self.key,
                )
                .await;
            all.extend(body["data"].as_array().unwrap().iter().cloned());
        }
        all.retain(|m| m["isLangfuseManaged"] == false);
        all
    }
}

#[tokio::test]
async fn a_model_created_in_the_page_is_what_the_api_answers_and_matches_first() {
    let team = Team::new().await;
    let (status, settings) = team
        .owner
        .page(&format!("/project/{}/settings", team.project_id))
        .await;
    assert_eq!(status, 200);
    assert!(settings.contains(&format!("href=\"{}\"", team.page())));

    let (status, html) = team.owner.page(&team.page()).await;
    assert_eq!(status, 200);
    assert!(html.contains("gpt-4o"), "shipped models listed");
    assert!(html.contains("shipped"));
    assert!(html.contains("Fast mode"), "other tiers shown");
    assert!(html.contains("model_parameters.service_tier in fast, priority"));

    let response = team
        .create(
            &team.owner,
            &[
                ("model_name", "gpt-4o"),
                ("match_pattern", "(?i)^gpt-4o$"),
                ("start_date", ""),
                ("unit", "TOKENS"),
                ("tokenizer_id", "openai"),
                ("tokenizer_config", ""),
                ("input_price", "0.000001"),
                ("output_price", "0.000002"),
                ("total_price", ""),
                ("pricing_tiers", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("{}?done=created", team.page()));

    let own = team.project_models().await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["modelName"], "gpt-4o");
    assert_eq!(own[0]["matchPattern"], "(?i)^gpt-4o$");
    assert_eq!(own[0]["unit"], "TOKENS");
    assert_eq!(own[0]["tokenizerId"], "openai");
    assert_eq!(own[0]["inputPrice"], 0.000001);
    assert_eq!(own[0]["outputPrice"], 0.000002);

    // The matching box: the project's model comes before the shipped one of the same name.
    let (_, html) = team
        .owner
        .page(&format!("{}?model=gpt-4o&at=", team.page()))
        .await;
    assert_eq!(
        element_text(&html, "matched-model").as_deref(),
        Some("gpt-4o")
    );
    let result = &html[html.find("id=\"match-result\"").unwrap()..];
    let result = &result[..result.find("</section>").unwrap()];
    assert!(result.contains("project</span>"), "{result}");
    assert!(result.contains("0.000001"), "{result}");

    // A name only a shipped model matches.
    let (_, html) = team
        .owner
        .page(&format!(
            "{}?model=gpt-4o-mini&at=2025-06-01T00:00:00Z",
            team.page()
        ))
        .await;
    let result = &html[html.find("id=\"match-result\"").unwrap()..];
    assert!(result.contains("shipped</span>"), "{result}");
    let (_, html) = team
        .owner
        .page(&format!("{}?model=no-such-model-anywhere", team.page()))
        .await;
    assert!(html.contains("id=\"no-match\""));
    let (_, html) = team
        .owner
        .page(&format!("{}?model=gpt-4o&at=yesterday", team.page()))
        .await;
    assert!(html.contains("is not a date and time"));

    // Deleting it through the page: the API no longer has it.
    let delete = form_actions(&html)
        .into_iter()
        .find(|a| a.ends_with("/delete"))
        .expect("a delete form");
    assert_eq!(
        delete,
        format!("{}/{}/delete", team.page(), own[0]["id"].as_str().unwrap())
    );
    let response = team.owner.submit(&team.page(), &delete, &[]).await;
    assert_eq!(response.status(), 303);
    assert!(team.project_models().await.is_empty());
    let response = team.owner.submit(&team.page(), &delete, &[]).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn refusals_of_the_api_are_shown_in_the_form_and_nothing_is_written() {
    let team = Team::new().await;
    for (fields, words) in [
        (
            vec![
                ("model_name", "m"),
                ("match_pattern", "(unclosed"),
                ("input_price", "1"),
            ],
            "matchPattern is not a valid regular expression",
        ),
        (
            vec![("model_name", "m"), ("match_pattern", "^m$")],
            "Must provide either flat prices",
        ),
        (
            vec![
                ("model_name", "m"),
                ("match_pattern", "^m$"),
                ("input_price", "cheap"),
            ],
            "inputPrice must be a non-negative number",
        ),
        (
            vec![
                ("model_name", "m"),
                ("match_pattern", "^m$"),
                (
                    "pricing_tiers",
                    r#"[{"name": "Big", "isDefault": false, "priority": 1, "conditions": [], "prices": {"input": 1}}]"#,
                ),
            ],
            "exactly one pricing tier must have isDefault",
        ),
        (
            vec![
                ("model_name", "m"),
                ("match_pattern", "^m$"),
                ("input_price", "1"),
                ("start_date", "soon"),
                ("unit", "TOKENS"),
                ("tokenizer_id", "claude"),
            ],
            "startDate",
        ),
    ] {
        let response = team.create(&team.owner, &fields).await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.unwrap();
        let error = element_text(&html, "form-error").unwrap_or_default();
        assert!(error.contains(words), "{error} / {words}");
        // What was written comes back in the form.
        assert!(html.contains("value=\"m\""));
        if words == "startDate" {
            assert!(
                html.contains("<option value=\"TOKENS\" selected>"),
                "unit kept"
            );
            assert!(
                html.contains("<option value=\"claude\" selected>"),
                "tokenizer kept"
            );
        }
    }
    assert!(team.project_models().await.is_empty());

    // Tiers written as JSON, then the same name again.
    let tiers = r#"[{"name": "Standard", "isDefault": true, "priority": 0, "conditions": [], "prices": {"input": 0.000003, "output": 0.000015}},
                    {"name": "Long context", "isDefault": false, "priority": 1, "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 200000}], "prices": {"input": 0.000006, "output": 0.0000225}}]"#;
    let fields = [
        ("model_name", "claude-x"),
        ("match_pattern", "^claude-x$"),
        ("pricing_tiers", tiers),
    ];
    assert_eq!(team.create(&team.owner, &fields).await.status(), 303);
    let (_, html) = team.owner.page(&team.page()).await;
    assert!(html.contains("Long context"));
    assert!(
        html.contains("usage matching /input/ &#62; 200000"),
        "condition shown"
    );
    let response = team.create(&team.owner, &fields).await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(element_text(&html, "form-error")
        .unwrap()
        .contains("already exists"));
    let own = team.project_models().await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["pricingTiers"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn members_and_viewers_read_the_models_but_only_owners_and_admins_change_them() {
    let team = Team::new().await;
    let fields = [
        ("model_name", "mine"),
        ("match_pattern", "^mine$"),
        ("input_price", "1"),
    ];
    assert_eq!(team.create(&team.owner, &fields).await.status(), 303);
    let id = team.project_models().await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let delete = format!("{}/{id}/delete", team.page());

    for who in [&team.member, &team.viewer] {
        let (status, html) = who.page(&team.page()).await;
        assert_eq!(status, 200);
        assert!(html.contains("mine"));
        assert!(!html.contains("id=\"model-form\""), "no create form");
        assert!(!form_actions(&html).iter().any(|a| a.ends_with("/delete")));
        assert!(html.contains("Only owners and admins"));
        // The matching box is a GET form, for everyone.
        assert!(html.contains("id=\"match-form\""));
        let token = who.csrf_token(&team.page()).await;
        let other = [
            ("csrf_token", token.as_str()),
            ("model_name", "theirs"),
            ("match_pattern", "^t$"),
            ("input_price", "1"),
        ];
        assert_eq!(who.post_raw(&team.page(), &other).await.status(), 403);
        assert_eq!(
            who.post_raw(&delete, &[("csrf_token", token.as_str())])
                .await
                .status(),
            403
        );
    }
    assert_eq!(team.project_models().await.len(), 1);

    // Without the token, or with another person's: refused, nothing changes.
    let response = team
        .owner
        .post_raw(
            &team.page(),
            &[
                ("model_name", "x"),
                ("match_pattern", "^x$"),
                ("input_price", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = team.owner.post_raw(&delete, &[]).await;
    assert_eq!(response.status(), 403);
    let other_token = team.member.csrf_token(&team.page()).await;
    let response = team
        .owner
        .post_raw(&delete, &[("csrf_token", other_token.as_str())])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(team.project_models().await.len(), 1);

    // A shipped model is not deleted through the page.
    let (_, body) = team
        .app
        .get_json("/api/public/models?limit=1", &team.key)
        .await;
    let shipped = body["data"][0]["id"].as_str().unwrap().to_string();
    let response = team
        .owner
        .submit(
            &team.page(),
            &format!("{}/{shipped}/delete", team.page()),
            &[],
        )
        .await;
    assert_eq!(response.status(), 404);

    // Someone who is no member of the project: 404.
    let stranger = UiClient::signed_up(&team.app, "Sam", "sam@example.com").await;
    assert_eq!(stranger.page(&team.page()).await.0, 404);
    assert_eq!(
        UiClient::new(&team.app).get(&team.page()).await.status(),
        303
    );
}
