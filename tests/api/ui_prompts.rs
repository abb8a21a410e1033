//! The web UI's prompts pages over HTTP: the list, a prompt's versions, new versions, labels,
//! protected labels and the diff, each write read back through the public prompts API (the same
//! store and cache); roles, CSRF and bad input. Also the settings' API keys: last use, and a key
//! deleted in one server refused at once by another on the same stores.

use serde_json::{json, Value};

use crate::helpers::{form_actions, location, ApiKey, TestApp, UiClient, UiTeam};

/// Owner Olga's project with Max a MEMBER and Vera a VIEWER, and an API key made in the settings.
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

    fn prompts(&self) -> String {
        format!("/project/{}/prompts", self.project_id)
    }

    fn prompt(&self, name: &str) -> String {
        format!("{}/{}", self.prompts(), encode(name))
    }

    /// Creates a version through the form of `page`; the response.
    async fn create(
        &self,
        who: &UiClient,
        page: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        who.submit(page, &self.prompts(), fields).await
    }

    async fn api_prompt(&self, name: &str, query: &str) -> (u16, Value) {
        self.app
            .get_json(
                &format!("/api/public/v2/prompts/{}{query}", encode(name)),
                &self.key,
            )
            .await
    }
}

fn encode(text: &str) -> String {
    langfuse_rs::http::ui::path_segment(text)
}

/// Creates an API key in the settings; the key pair shown once.
#[tokio::test]
async fn versions_made_in_the_ui_are_what_the_api_answers_at_once() {
    let team = Team::new().await;
    let name = "support/greeting";
    let new_page = format!("{}/new", team.prompts());
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[
                ("name", name),
                ("type", "text"),
                ("text", "Hello {{name}}!\nHow can I help?"),
                ("config", r#"{"temperature": 0.2}"#),
                ("commit_message", "first words"),
                ("labels", "production, staging"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("{}?version=1&done=created", team.prompt(name))
    );
    let (status, body) = team.api_prompt(name, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["prompt"], "Hello {{name}}!\nHow can I help?");
    assert_eq!(body["config"], json!({"temperature": 0.2}));
    assert_eq!(body["commitMessage"], "first words");

    // A second version, from the version's own form, without the production label.
    let version_page = format!("{}/new", team.prompt(name));
    let (status, form) = team.owner.page(&version_page).await;
    assert_eq!(status, 200);
    assert!(form.contains("Hello {{name}}!"), "the form starts from v1");
    let response = team
        .create(
            &team.member,
            &version_page,
            &[
                ("name", name),
                ("type", "text"),
                ("text", "Hello {{name}}!\nWhat can I do for you?"),
                ("config", "{}"),
                ("commit_message", "friendlier"),
                ("labels", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    // The cached production answer is still v1; latest is v2.
    assert_eq!(team.api_prompt(name, "").await.1["version"], 1);
    assert_eq!(team.api_prompt(name, "?label=latest").await.1["version"], 2);

    // The list finds it by part of its name and by folder, with its labels.
    let (status, list) = team
        .owner
        .page(&format!("{}?search=GREET", team.prompts()))
        .await;
    assert_eq!(status, 200);
    assert!(list.contains("support/greeting"), "{list}");
    assert!(list.contains(&format!("href=\"{}\"", team.prompt(name))));
    assert!(list.contains("staging"));
    let (_, none) = team
        .owner
        .page(&format!("{}?search=nothing", team.prompts()))
        .await;
    assert!(none.contains("No prompt matches"));

    // The prompt's page: versions newest first with author and message; production by default.
    let (status, page) = team.owner.page(&team.prompt(name)).await;
    assert_eq!(status, 200);
    let (v2, v1) = (
        page.find("v2</span>").unwrap(),
        page.find("v1</span>").unwrap(),
    );
    assert!(v2 < v1, "newest first");
    assert!(page.contains("friendlier") && page.contains("Max") && page.contains("Olga"));
    assert!(
        page.contains("Version 1 "),
        "production is shown by default"
    );
    let (_, page2) = team
        .owner
        .page(&format!("{}?version=2", team.prompt(name)))
        .await;
    assert!(page2.contains("What can I do for you?"));

    // Moving production to v2 (the API's PATCH): the API's default read follows at once.
    let response = team
        .member
        .submit(
            &team.prompt(name),
            &format!("{}/labels", team.prompt(name)),
            &[("version", "2"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, body) = team.api_prompt(name, "").await;
    assert_eq!(body["version"], 2);
    assert_eq!(
        team.api_prompt(name, "?version=1").await.1["labels"],
        json!(["staging"])
    );

    // Removing staging from v1.
    let response = team
        .member
        .submit(
            &team.prompt(name),
            &format!("{}/labels/remove", team.prompt(name)),
            &[("version", "1"), ("label", "staging")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (status, _) = team.api_prompt(name, "?label=staging").await;
    assert_eq!(status, 404);
    // `latest` is automatic.
    let response = team
        .member
        .submit(
            &team.prompt(name),
            &format!("{}/labels/remove", team.prompt(name)),
            &[("version", "2"), ("label", "latest")],
        )
        .await;
    assert_eq!(response.status(), 400);

    // The diff shows the changed lines, both ways of viewing.
    let diff = format!("{}/diff?from=1&to=2", team.prompt(name));
    let (status, html) = team.viewer.page(&diff).await;
    assert_eq!(status, 200);
    assert!(html.contains("class=\"diff-del\""), "{html}");
    assert!(html.contains("How can I help?") && html.contains("What can I do for you?"));
    let (status, split) = team.viewer.page(&format!("{diff}&view=split")).await;
    assert_eq!(status, 200);
    assert!(split.contains("diff-split"));
}

#[tokio::test]
async fn chat_prompts_composed_prompts_and_bad_input() {
    let team = Team::new().await;
    let new_page = format!("{}/new", team.prompts());
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[
                ("name", "snippets/tone"),
                ("type", "text"),
                ("text", "Be <b>kind</b>."),
                ("labels", "production"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let messages = json!([
        {"role": "system", "content": "@@@langfusePrompt:name=snippets/tone|label=production@@@ <script>alert(1)</script>"},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"}
    ]);
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[
                ("name", "chat/helper"),
                ("type", "chat"),
                ("messages", &messages.to_string()),
                ("config", r#"{"model": "gpt-4o"}"#),
                ("labels", "production"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let (_, body) = team.api_prompt("chat/helper", "").await;
    assert_eq!(
        body["prompt"][0]["content"],
        "Be <b>kind</b>. <script>alert(1)</script>"
    );
    let (status, page) = team.owner.page(&team.prompt("chat/helper")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"prompt-resolved\""),
        "the resolved form is shown"
    );
    assert!(page.contains("Be &#60;b&#62;kind&#60;/b&#62;."), "{page}");
    assert!(!page.contains("<script>alert(1)"), "stored text is escaped");
    assert!(page.contains("placeholder"));

    // A label a composed prompt depends on cannot go.
    let response = team
        .owner
        .submit(
            &team.prompt("snippets/tone"),
            &format!("{}/labels/remove", team.prompt("snippets/tone")),
            &[("version", "1"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 400);

    // Names with folders, spaces and URL characters have one page each.
    let odd = "odd/a b+c%d?e";
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[("name", odd), ("type", "text"), ("text", "odd one")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("{}?version=1&done=created", team.prompt(odd))
    );
    let (status, page) = team.owner.page(&team.prompt(odd)).await;
    assert_eq!(status, 200);
    assert!(page.contains("odd one"));
    assert_eq!(
        team.api_prompt(odd, "?label=latest").await.1["prompt"],
        "odd one"
    );

    // Bad config JSON: a form error, with what was typed, and nothing written.
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[
                ("name", "broken"),
                ("type", "text"),
                ("text", "kept text"),
                ("config", "{temperature: 1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("The config is not valid JSON"), "{html}");
    assert!(html.contains("kept text"));
    assert_eq!(team.api_prompt("broken", "?label=latest").await.0, 404);
    // A chat version of a text prompt, bad messages and a reserved name are refused too.
    for fields in [
        vec![
            ("name", "snippets/tone"),
            ("type", "chat"),
            ("messages", "[]"),
        ],
        vec![
            ("name", "x"),
            ("type", "chat"),
            ("messages", "[{\"role\": "),
        ],
        vec![("name", "new"), ("type", "text"), ("text", "t")],
    ] {
        let response = team.create(&team.owner, &new_page, &fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
    }
}

#[tokio::test]
async fn protected_labels_are_for_owners_and_admins_and_viewers_only_read() {
    let team = Team::new().await;
    let new_page = format!("{}/new", team.prompts());
    let response = team
        .create(
            &team.owner,
            &new_page,
            &[
                ("name", "p"),
                ("type", "text"),
                ("text", "one"),
                ("labels", "production"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let response = team
        .create(
            &team.member,
            &new_page,
            &[("name", "p"), ("type", "text"), ("text", "two")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let settings = format!("/project/{}/settings", team.project_id);
    let protect = format!("{settings}/protected-labels");

    // Only owners and admins manage the list.
    let response = team
        .member
        .submit(&team.prompt("p"), &protect, &[("label", "production")])
        .await;
    assert_eq!(response.status(), 403);
    let response = team
        .owner
        .submit(&settings, &protect, &[("label", "latest")])
        .await;
    assert_eq!(response.status(), 400);
    let response = team
        .owner
        .submit(&settings, &protect, &[("label", "production")])
        .await;
    assert_eq!(response.status(), 303);
    let (_, html) = team.owner.page(&settings).await;
    assert!(html.contains("id=\"protected-labels\"") && html.contains(">production</span>"));

    // A member may not move it, nor create a version carrying it; other labels are fine.
    let labels = format!("{}/labels", team.prompt("p"));
    let response = team
        .member
        .submit(
            &team.prompt("p"),
            &labels,
            &[("version", "2"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = team
        .member
        .submit(
            &team.prompt("p"),
            &format!("{labels}/remove"),
            &[("version", "1"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = team
        .create(
            &team.member,
            &format!("{}/new", team.prompt("p")),
            &[
                ("name", "p"),
                ("type", "text"),
                ("text", "three"),
                ("labels", "production"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(team.api_prompt("p", "?label=latest").await.1["version"], 2);
    let response = team
        .member
        .submit(
            &team.prompt("p"),
            &labels,
            &[("version", "2"), ("label", "staging")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, page) = team.member.page(&team.prompt("p")).await;
    assert!(
        !page.contains("aria-label=\"Remove the label production\""),
        "a member is not offered the protected label's removal"
    );
    assert_eq!(team.api_prompt("p", "").await.1["version"], 1);

    // The owner may; so may the API (Langfuse's contract: project keys promote versions).
    let response = team
        .owner
        .submit(
            &team.prompt("p"),
            &labels,
            &[("version", "2"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(team.api_prompt("p", "").await.1["version"], 2);
    let patched = team
        .app
        .http
        .patch(team.app.url("/api/public/v2/prompts/p/versions/1"))
        .header("Authorization", team.key.basic_auth())
        .json(&json!({"newLabels": ["production"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(team.api_prompt("p", "").await.1["version"], 1);

    // A viewer reads everything and gets no form; forged posts are refused.
    for page in [
        team.prompts(),
        team.prompt("p"),
        format!("{}/diff", team.prompt("p")),
    ] {
        let (status, html) = team.viewer.page(&page).await;
        assert_eq!(status, 200, "{page}");
        let posts: Vec<_> = form_actions(&html)
            .into_iter()
            .filter(|a| a.contains("/prompts"))
            .filter(|a| !a.ends_with("/diff") && !a.ends_with("/prompts"))
            .collect();
        assert!(posts.is_empty(), "{page}: {posts:?}");
        assert!(!html.contains("New version") && !html.contains("Set label"));
    }
    assert_eq!(team.viewer.get(&new_page).await.status(), 403);
    let token = team.viewer.csrf_token(&team.prompt("p")).await;
    for (action, fields) in [
        (
            team.prompts(),
            vec![("name", "v"), ("type", "text"), ("text", "t")],
        ),
        (labels.clone(), vec![("version", "2"), ("label", "x")]),
        (
            format!("{labels}/remove"),
            vec![("version", "1"), ("label", "production")],
        ),
    ] {
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend(fields);
        let response = team.viewer.post_raw(&action, &all).await;
        assert_eq!(response.status(), 403, "{action}");
    }
    // Unprotected, the label is a member's to move again.
    let response = team
        .owner
        .submit(
            &settings,
            &format!("{protect}/remove"),
            &[("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let response = team
        .member
        .submit(
            &team.prompt("p"),
            &labels,
            &[("version", "2"), ("label", "production")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(team.api_prompt("p", "").await.1["version"], 2);

    // Without the CSRF token even the owner is refused.
    let response = team
        .owner
        .post_raw(&labels, &[("version", "2"), ("label", "x")])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(team.api_prompt("p", "?label=x").await.0, 404);
}

#[tokio::test]
async fn an_api_key_shows_its_last_use_and_is_refused_by_every_server_once_deleted() {
    let team = Team::new().await;
    let settings = format!("/project/{}/settings", team.project_id);
    let (_, html) = team.owner.page(&settings).await;
    assert!(html.contains("Never"), "an unused key");
    assert_eq!(
        team.app.get_json("/api/public/projects", &team.key).await.0,
        200
    );

    // A second server on the same stores, with a long key cache: it has the key cached.
    let settings_two = {
        let mut env = team.app.config.env.clone();
        env.insert(
            "LANGFUSE_RS__AUTH__KEY_CACHE_TTL_SECS".to_string(),
            "3600".to_string(),
        );
        langfuse_rs::config::Settings::load(None, &env).unwrap()
    };
    let stores = langfuse_rs::app::prepare(&settings_two).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { langfuse_rs::app::serve(&settings_two, stores, listener, false, shutdown).await }
    });
    let ask_other = || async {
        team.app
            .http
            .get(format!("{other}/api/public/projects"))
            .header("Authorization", team.key.basic_auth())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert!(
        crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
            ask_other().await == 200
        })
        .await
    );
    // Its subscription to revocations is up once it answers; give it a moment to subscribe.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let (_, html) = team.owner.page(&settings).await;
    assert!(!html.contains(">Never<"), "the use was recorded: {html}");

    let delete = form_actions(&html)
        .into_iter()
        .find(|a| a.contains("/api-keys/") && a.ends_with("/delete"))
        .expect("a delete form");
    let response = team.owner.submit(&settings, &delete, &[]).await;
    assert_eq!(response.status(), 303);
    // Refused at once here, and by the other server within moments, not after an hour.
    assert_eq!(
        team.app.get_json("/api/public/projects", &team.key).await.0,
        401
    );
    assert!(
        crate::helpers::eventually(std::time::Duration::from_secs(2), || async {
            ask_other().await == 401
        })
        .await,
        "the other server still accepts the deleted key"
    );
    shutdown.cancel();
    let _ = server.await;
}

/// The names a prompts list page shows, in order, and its next page's address.
fn prompts_list_page(html: &str) -> (Vec<String>, Option<String>) {
    let names = html
        .split("<td class=\"prompt-name\"><a href=\"")
        .skip(1)
        .filter_map(|rest| {
            let text = &rest[rest.find("\">")? + 2..];
            Some(text[..text.find("</a>")?].to_string())
        })
        .collect();
    let next = html.split("rel=\"next\" href=\"").nth(1).map(|rest| {
        rest[..rest.find('"').unwrap()]
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    });
    (names, next)
}

#[tokio::test]
async fn the_prompts_list_comes_in_pages_that_keep_its_filters() {
    let team = Team::new().await;
    let page_size = langfuse_rs::http::ui::prompts::PAGE_SIZE as usize;
    let (tagged, untagged) = (2 * page_size + 7, 5);
    let mut expected = Vec::new();
    for i in 0..tagged + untagged {
        let name = format!("bulk/prompt-{i:03}");
        let tags = if i < tagged {
            json!(["bulk"])
        } else {
            json!([])
        };
        let response = team
            .app
            .post_as(
                "/api/public/v2/prompts",
                &team.key,
                &json!({"name": name, "type": "text", "prompt": "Hello", "tags": tags}),
            )
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        expected.push(name);
    }
    // Every page, first to last, by its "Next page" link: each name once, in name order.
    for (first, want) in [
        (team.prompts(), expected.clone()),
        (
            format!("{}?tag=bulk&search=bulk%2F", team.prompts()),
            expected[..tagged].to_vec(),
        ),
    ] {
        let (mut seen, mut pages, mut next) = (Vec::new(), 0, Some(first.clone()));
        while let Some(address) = next {
            let (status, html) = team.viewer.page(&address).await;
            assert_eq!(status, 200, "{address}");
            let (names, after) = prompts_list_page(&html);
            assert!(names.len() <= page_size);
            if first.contains("tag=bulk") && pages > 0 {
                assert!(
                    address.contains("tag=bulk") && address.contains("search=bulk%2F"),
                    "the filters travel: {address}"
                );
                assert!(html.contains("rel=\"prev\""), "{address}");
            }
            seen.extend(names);
            pages += 1;
            next = after;
        }
        assert_eq!(seen, want, "from {first}");
        assert_eq!(pages, want.len().div_ceil(page_size));
    }
    // A page past the last says so; a page that is no number is refused.
    let (status, html) = team
        .viewer
        .page(&format!("{}?page=99", team.prompts()))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("past the last one"));
    let (status, _) = team
        .viewer
        .page(&format!("{}?page=0", team.prompts()))
        .await;
    assert_eq!(status, 400);
}
