//! The web UI's traces table and users pages over HTTP, on traces sent through the public
//! ingestion API: filters, search, orders, cursor pages, the step to a list's neighbour, access,
//! and what strangers wrote coming out escaped.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{envelope, location, ApiKey, TestApp, TestConfig, UiClient};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const TRACES: &str = "/project/boot-project/traces";
/// Traces of user carol with nothing but a time, to fill pages.
const FILLERS: usize = 30;
const XSS_SCRIPT: &str = "<script>alert(1)</script>";
const XSS_IMG: &str = "<img src=x onerror=alert(1)>";

fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn later(at: &str, millis: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(at).unwrap() + chrono::Duration::milliseconds(millis))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A generation of `trace` lasting `millis`, with its tokens, cost and level.
fn generation(trace: &str, at: &str, millis: i64, tokens: u64, cost: f64, level: &str) -> Value {
    envelope(
        &format!("e-gen-{trace}"),
        "generation-create",
        at,
        json!({"id": format!("gen-{trace}"), "traceId": trace, "name": "llm", "startTime": at,
            "endTime": later(at, millis), "level": level,
            "usageDetails": {"input": tokens / 2, "output": tokens - tokens / 2, "total": tokens},
            "costDetails": {"total": cost}}),
    )
}

/// The bootstrap project with its owner, and its traces written:
///
/// | trace | name | user | tags | env | latency | tokens | cost | other |
/// |---|---|---|---|---|---|---|---|---|
/// | t-a | chat | alice | prod-tag | production | 2 s | 100 | 0.5 | metadata team=search |
/// | t-b | chat | bob | beta | staging | 5 s | 50 | 0.1 | input has "needle", ERROR |
/// | t-c | embed | alice | | production | 1 s | 10 | 2.0 | scores quality 0.5 and 1.0 |
/// | t-x | script | the img payload | | production | | | | payloads in input and metadata |
/// | filler-NN | filler | carol | | default | | | | |
async fn seeded() -> (TestApp, UiClient) {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_ORG_NAME", "Acme Research")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_NAME", "Support Assistant")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-boot")
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-boot-secret")
        .set("LANGFUSE_INIT_USER_EMAIL", OWNER_EMAIL)
        .set("LANGFUSE_INIT_USER_NAME", "Olivia Owner")
        .set("LANGFUSE_INIT_USER_PASSWORD", OWNER_PASSWORD);
    let app = TestApp::spawn_with_worker(config).await;
    let key = ApiKey::new("pk-lf-boot", "sk-lf-boot-secret");
    let (a, b, c, x) = (
        minutes_ago(10),
        minutes_ago(20),
        minutes_ago(30),
        minutes_ago(40),
    );
    let mut batch = vec![
        envelope(
            "e-a",
            "trace-create",
            &a,
            json!({"id": "t-a", "timestamp": a, "name": "chat",
            "userId": "alice", "tags": ["prod-tag"], "environment": "production",
            "metadata": {"team": "search"}, "input": "What is the capital of France?", "output": "Paris"}),
        ),
        generation("t-a", &a, 2000, 100, 0.5, "DEFAULT"),
        envelope(
            "e-b",
            "trace-create",
            &b,
            json!({"id": "t-b", "timestamp": b, "name": "chat",
            "userId": "bob", "tags": ["beta"], "environment": "staging", "sessionId": "s-1",
            "metadata": {"team": "ads"}, "input": {"question": "Where is the Needle?"}}),
        ),
        generation("t-b", &b, 5000, 50, 0.1, "ERROR"),
        envelope(
            "e-c",
            "trace-create",
            &c,
            json!({"id": "t-c", "timestamp": c, "name": "embed",
            "userId": "alice", "environment": "production"}),
        ),
        generation("t-c", &c, 1000, 10, 2.0, "DEFAULT"),
        envelope(
            "e-s1",
            "score-create",
            &c,
            json!({"id": "s-c1", "traceId": "t-c", "name": "quality", "value": 0.5}),
        ),
        envelope(
            "e-s2",
            "score-create",
            &c,
            json!({"id": "s-c2", "traceId": "t-c", "name": "quality", "value": 1.0}),
        ),
        envelope(
            "e-x",
            "trace-create",
            &x,
            json!({"id": "t-x", "timestamp": x, "name": XSS_SCRIPT,
            "userId": XSS_IMG, "environment": "production",
            "input": format!("{XSS_SCRIPT} {XSS_IMG}"), "metadata": {"payload": XSS_IMG, "script": XSS_SCRIPT}}),
        ),
    ];
    for i in 0..FILLERS {
        let at = minutes_ago(50 + i as i64);
        batch.push(envelope(
            &format!("e-f{i}"),
            "trace-create",
            &at,
            json!({"id": format!("filler-{i:02}"), "timestamp": at, "name": "filler", "userId": "carol"}),
        ));
    }
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_until_written().await, "the worker wrote the batch");
    let owner = UiClient::new(&app);
    assert_eq!(
        owner.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await.status(),
        303
    );
    (app, owner)
}

fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The links of the table's rows, in order.
fn row_links(html: &str) -> Vec<String> {
    html.split("class=\"row-link\" href=\"")
        .skip(1)
        .map(|rest| unescape(rest.split('"').next().unwrap()))
        .collect()
}

/// The trace ids of the table's rows, in order.
fn row_ids(html: &str) -> Vec<String> {
    row_links(html)
        .iter()
        .map(|link| {
            let path = link.split('?').next().unwrap();
            path.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

/// The pager's link with `rel`.
fn pager_link(html: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let start = html.find(&marker)? + marker.len();
    Some(unescape(&html[start..start + html[start..].find('"')?]))
}

async fn ids_at(client: &UiClient, path: &str) -> Vec<String> {
    let (status, html) = client.page(path).await;
    assert_eq!(status, 200, "{path}: {html}");
    row_ids(&html)
}

#[tokio::test]
async fn the_traces_table_filters_searches_and_orders() {
    let (_app, owner) = seeded().await;
    let (status, html) = owner.page(TRACES).await;
    assert_eq!(status, 200);
    let all = row_ids(&html);
    assert_eq!(all.len(), 4 + FILLERS, "{all:?}");
    assert_eq!(&all[..4], ["t-a", "t-b", "t-c", "t-x"], "newest first");
    assert!(html.contains("$0.50") && html.contains("2.00s"), "figures");
    assert!(html.contains(">quality<"), "a column per score name");
    assert!(html.contains("0.75 (avg of 2)"));
    assert!(html.contains("level-error"), "the ERROR trace is marked");
    let (_, fillers) = owner.page(&format!("{TRACES}?name=filler")).await;
    assert!(
        fillers.contains("<td class=\"num\">–</td>") && !fillers.contains("$0.00"),
        "no observations, no figures"
    );

    // What the filter form swaps in: the same rows, without the page around them.
    let results = owner
        .http
        .get(owner.url(&format!("{TRACES}?userId=alice")))
        .header("X-Lfrs-Results-Only", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(results.status(), 200);
    let results = results.text().await.unwrap();
    assert_eq!(row_ids(&results), ["t-a", "t-c"]);
    assert!(
        !results.contains("<html") && !results.contains("trace-filters"),
        "the table alone: {results}"
    );

    for (query, expected) in [
        ("userId=alice", vec!["t-a", "t-c"]),
        ("tags=beta,nothing", vec!["t-b"]),
        ("tags=prod-tag&tags=beta", vec!["t-a", "t-b"]),
        ("environment=staging", vec!["t-b"]),
        ("metadata=team%3Dsearch", vec!["t-a"]),
        ("search=NEEDLE", vec!["t-b"]),
        ("search=capital+of", vec!["t-a"]),
        ("search=t-c", vec!["t-c"]),
        ("name=embed", vec!["t-c"]),
        ("level=ERROR", vec!["t-b"]),
        ("sessionId=s-1", vec!["t-b"]),
        ("userId=alice&name=chat", vec!["t-a"]),
        ("range=1h&userId=nobody", vec![]),
    ] {
        let ids = ids_at(&owner, &format!("{TRACES}?{query}")).await;
        assert_eq!(ids, expected, "{query}");
    }
    // A range that ends before the traces: nothing.
    let ids = ids_at(&owner, &format!("{TRACES}?to=2000-01-01T00:00")).await;
    assert!(ids.is_empty());

    let latency = ids_at(&owner, &format!("{TRACES}?orderBy=latency.desc")).await;
    assert_eq!(&latency[..3], ["t-b", "t-a", "t-c"]);
    let latency = ids_at(
        &owner,
        &format!("{TRACES}?orderBy=latency.asc&userId=alice"),
    )
    .await;
    assert_eq!(latency, ["t-c", "t-a"]);
    let cost = ids_at(&owner, &format!("{TRACES}?orderBy=totalCost.desc")).await;
    assert_eq!(&cost[..3], ["t-c", "t-a", "t-b"]);
    let tokens = ids_at(&owner, &format!("{TRACES}?orderBy=totalTokens.desc")).await;
    assert_eq!(&tokens[..3], ["t-a", "t-b", "t-c"]);
    let oldest = ids_at(&owner, &format!("{TRACES}?orderBy=timestamp.asc")).await;
    assert_eq!(oldest.last().map(String::as_str), Some("t-a"));

    // Each row links to its trace with the table's query; the filters show in the form.
    let (_, html) = owner
        .page(&format!("{TRACES}?userId=alice&orderBy=latency.asc"))
        .await;
    assert_eq!(
        row_links(&html)[0],
        "/project/boot-project/traces/t-c?userId=alice&orderBy=latency.asc"
    );
    assert!(html.contains("name=\"userId\" type=\"text\" value=\"alice\""));

    // Values the table cannot read are a 400 page, not a guess.
    for query in [
        "level=LOUD",
        "orderBy=name.desc",
        "limit=7",
        "after=garbage",
    ] {
        let (status, _) = owner.page(&format!("{TRACES}?{query}")).await;
        assert_eq!(status, 400, "{query}");
    }
}

#[tokio::test]
async fn what_traces_carry_comes_out_escaped() {
    let (_app, owner) = seeded().await;
    for path in [
        format!("{TRACES}?search=alert"),
        "/project/boot-project/users".to_string(),
        format!(
            "/project/boot-project/users/{}",
            langfuse_rs::http::ui::path_segment(XSS_IMG)
        ),
    ] {
        let (status, html) = owner.page(&path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(!html.contains(XSS_SCRIPT), "{path}: {html}");
        assert!(!html.contains(XSS_IMG), "{path}: {html}");
        assert!(
            html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}: {html}"
        );
    }
    let (_, html) = owner.page(&format!("{TRACES}?search=alert")).await;
    assert_eq!(row_ids(&html), ["t-x"]);
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    // The user id is a path segment of its link, percent-encoded.
    assert!(html.contains("/users/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"));
    // Filtering on a metadata value holding a payload finds it.
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("metadata", &format!("payload={XSS_IMG}"))
        .finish();
    assert_eq!(ids_at(&owner, &format!("{TRACES}?{query}")).await, ["t-x"]);
}

/// Follows the `next` links from `first`; every page's ids.
async fn walk(client: &UiClient, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = Some(first.to_string());
    while let Some(current) = path {
        let (status, html) = client.page(&current).await;
        assert_eq!(status, 200, "{current}");
        pages.push(row_ids(&html));
        path = pager_link(&html, "next");
        assert!(pages.len() < 10, "paging does not end");
    }
    pages
}

#[tokio::test]
async fn cursor_pages_are_disjoint_and_cover_every_trace() {
    let (_app, owner) = seeded().await;
    let expected: BTreeSet<String> = ids_at(&owner, &format!("{TRACES}?limit=100"))
        .await
        .into_iter()
        .collect();
    assert_eq!(expected.len(), 4 + FILLERS);
    // The time order, and a figure most rows tie on (their ids break the ties).
    for order in ["timestamp.desc", "totalCost.desc", "latency.asc"] {
        let first = format!("{TRACES}?limit=25&orderBy={order}");
        let pages = walk(&owner, &first).await;
        assert_eq!(pages.len(), 2, "{order}: {pages:?}");
        assert_eq!(pages[0].len(), 25);
        let seen: Vec<String> = pages.concat();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{order}: pages overlap");
        assert_eq!(unique, expected, "{order}: every trace once");

        // Back from the second page: the first page again, without a previous link.
        let (_, first_html) = owner.page(&first).await;
        let second = pager_link(&first_html, "next").unwrap();
        assert!(pager_link(&first_html, "prev").is_none());
        let (_, second_html) = owner.page(&second).await;
        let back = pager_link(&second_html, "prev").expect("a previous page");
        let (_, back_html) = owner.page(&back).await;
        assert_eq!(row_ids(&back_html), pages[0], "{order}");
        assert!(pager_link(&back_html, "prev").is_none(), "{order}");
        assert!(pager_link(&back_html, "next").is_some());
    }
}

#[tokio::test]
async fn the_neighbour_step_walks_the_filtered_list_and_ends_at_the_table() {
    let (_app, owner) = seeded().await;
    let step = |from: &str, dir: &str| {
        format!("{TRACES}/{from}/neighbour?dir={dir}&userId=alice&orderBy=timestamp.desc")
    };
    let response = owner.get(&step("t-a", "next")).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        "/project/boot-project/traces/t-c?userId=alice&orderBy=timestamp.desc"
    );
    let response = owner.get(&step("t-c", "prev")).await;
    assert_eq!(
        location(&response),
        "/project/boot-project/traces/t-a?userId=alice&orderBy=timestamp.desc"
    );
    for (from, dir, text) in [
        ("t-c", "next", "last trace"),
        ("t-a", "prev", "first trace"),
    ] {
        let response = owner.get(&step(from, dir)).await;
        assert_eq!(response.status(), 303);
        let back = location(&response);
        assert!(
            back.starts_with(
                "/project/boot-project/traces?userId=alice&orderBy=timestamp.desc&notice=end-"
            ),
            "{back}"
        );
        let (status, html) = owner.page(&back).await;
        assert_eq!(status, 200);
        assert!(html.contains(text), "{html}");
        assert_eq!(row_ids(&html), ["t-a", "t-c"]);
    }
    // In a figure's order, across traces that tie on it.
    let response = owner
        .get(&format!(
            "{TRACES}/t-b/neighbour?dir=next&orderBy=totalCost.desc"
        ))
        .await;
    let cost = ids_at(
        &owner,
        &format!("{TRACES}?orderBy=totalCost.desc&limit=100"),
    )
    .await;
    let after_b = &cost[cost.iter().position(|id| id == "t-b").unwrap() + 1];
    assert_eq!(
        location(&response),
        format!("/project/boot-project/traces/{after_b}?orderBy=totalCost.desc")
    );
    let (status, _) = owner
        .page(&format!("{TRACES}/t-a/neighbour?dir=sideways"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_viewer_reads_the_tables_and_another_organization_gets_404() {
    let (app, owner) = seeded().await;
    let viewer = UiClient::signed_up(&app, "Victor Viewer", "victor@example.com").await;
    let response = owner
        .submit(
            "/project/boot-project/settings",
            "/project/boot-project/settings/members",
            &[("email", "victor@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let ids = ids_at(&viewer, &format!("{TRACES}?userId=bob")).await;
    assert_eq!(ids, ["t-b"]);
    let (status, html) = viewer.page("/project/boot-project/users").await;
    assert_eq!(status, 200);
    assert!(html.contains("carol"));

    let stranger = UiClient::signed_up(&app, "Mallory", "mallory@example.com").await;
    stranger.create_org_and_project("Elsewhere", "Other").await;
    for path in [
        TRACES.to_string(),
        format!("{TRACES}?userId=alice"),
        format!("{TRACES}/t-a/neighbour?dir=next"),
        "/project/boot-project/users".to_string(),
        "/project/boot-project/users/alice".to_string(),
    ] {
        let (status, html) = stranger.page(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("t-a") && !html.contains("alice"), "{path}");
    }
    // Signed out: sign in first.
    let anonymous = UiClient::new(&app);
    let response = anonymous.get(TRACES).await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/auth/sign-in"));
}

/// The `<td class="num">` figures of the users table row whose link is to `user`.
fn user_row(html: &str, user: &str) -> Vec<String> {
    let marker = format!("/project/boot-project/users/{user}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{user}: {html}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td class=\"num\">")
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn users_are_listed_with_their_figures_and_open_with_their_traces() {
    let (_app, owner) = seeded().await;
    let (status, html) = owner.page("/project/boot-project/users").await;
    assert_eq!(status, 200);
    assert_eq!(user_row(&html, "alice"), ["2", "110", "$2.50"]);
    assert_eq!(user_row(&html, "bob"), ["1", "50", "$0.10"]);
    assert_eq!(
        user_row(&html, "carol"),
        [FILLERS.to_string().as_str(), "0", "$0.00"]
    );

    let (_, html) = owner
        .page("/project/boot-project/users?orderBy=traces.desc")
        .await;
    let carol = html.find("/users/carol\"").unwrap();
    let alice = html.find("/users/alice\"").unwrap();
    assert!(carol < alice, "most traces first");
    let (_, html) = owner.page("/project/boot-project/users?search=LIC").await;
    assert!(html.contains("/users/alice\"") && !html.contains("/users/carol\""));

    let (status, html) = owner.page("/project/boot-project/users/alice").await;
    assert_eq!(status, 200);
    assert_eq!(row_ids(&html), ["t-a", "t-c"]);
    assert!(html.contains("$2.50") && html.contains("110"));
    // Its rows step through the user's traces.
    assert!(row_links(&html)[0].contains("userId=alice"));
    let (status, _) = owner.page("/project/boot-project/users/nobody").await;
    assert_eq!(status, 404);
}
