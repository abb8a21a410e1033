//! The web UI's accounts and access, over HTTP with a cookie store: sign-up, sign-in and its
//! throttling, sessions that sign-out and a password change end, CSRF, roles, other people's
//! projects, the first user from `LANGFUSE_INIT_USER_*`, and API keys made on the settings page.

use langfuse_rs::storage::postgres::memberships;

use crate::helpers::{
    element_text, form_actions, location, ApiKey, TestApp, TestConfig, UiClient, UI_PASSWORD,
};

async fn count(app: &TestApp, sql: &str) -> i64 {
    let client = app.stores.postgres.get().await.unwrap();
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// The value of the session cookie a response sets.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lfrs-session=") && !c.starts_with("lfrs-session=;"))
        .map(|c| {
            c.trim_start_matches("lfrs-session=")
                .split(';')
                .next()
                .unwrap()
                .to_string()
        })
}

/// GETs `path` with only the given session cookie (a cookie kept by someone after sign-out).
async fn get_with_cookie(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(path))
        .header(reqwest::header::COOKIE, format!("lfrs-session={token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_up_signs_the_person_in_and_the_start_page_shows_their_organizations() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let ada = UiClient::new(&app);
    let response = ada
        .sign_up("Ada Lovelace", "Ada@Example.com", UI_PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let set_cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");

    let (status, home) = ada.page("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Ada Lovelace"));
    assert!(
        home.contains("not a member of any organization yet"),
        "{home}"
    );

    let project_id = ada
        .create_org_and_project("Analytical Engines", "Notes")
        .await;
    let (_, home) = ada.page("/").await;
    assert!(home.contains("Analytical Engines") && home.contains("Notes"));
    assert!(home.contains(&format!("/project/{project_id}")));

    // The address is taken whatever its case.
    let again = UiClient::new(&app);
    let response = again.sign_up("Other", "ada@example.COM", UI_PASSWORD).await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("already exists"));
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn sign_in_accepts_the_right_password_and_refuses_others_alike() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    UiClient::signed_up(&app, "Grace", "grace@example.com").await;

    let browser = UiClient::new(&app);
    let response = browser.get("/project/anything/settings").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        "/auth/sign-in?next=%2Fproject%2Fanything%2Fsettings"
    );

    for (email, password) in [
        ("grace@example.com", "wrong password"),
        ("nobody@example.com", UI_PASSWORD),
    ] {
        let response = browser.sign_in(email, password).await;
        assert_eq!(response.status(), 401, "{email}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Invalid email or password."), "{html}");
        assert!(
            html.contains(&format!("value=\"{email}\"")),
            "the address stays"
        );
        assert_eq!(browser.get("/").await.status(), 303, "still signed out");
    }

    let token = browser.csrf_token("/auth/sign-in?next=/account").await;
    let response = browser
        .post_raw(
            "/auth/sign-in",
            &[
                ("csrf_token", &token),
                ("email", "GRACE@example.com"),
                ("password", UI_PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/account");
    let (status, account) = browser.page("/account").await;
    assert_eq!(status, 200);
    assert!(account.contains("grace@example.com"));
}

#[tokio::test]
async fn sign_in_sends_people_back_only_to_pages_of_this_site() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    UiClient::signed_up(&app, "Grace", "grace@example.com").await;
    for (next, expected) in [
        ("/project/p?x=1", "/project/p?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
    ] {
        let browser = UiClient::new(&app);
        let token = browser.csrf_token("/auth/sign-in").await;
        let response = browser
            .post_raw(
                "/auth/sign-in",
                &[
                    ("csrf_token", &token),
                    ("email", "grace@example.com"),
                    ("password", UI_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), expected, "next={next}");
    }
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_per_address() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__AUTH__SIGNIN_MAX_FAILURES", "3");
    let app = TestApp::spawn(config).await;
    UiClient::signed_up(&app, "Grace", "grace@example.com").await;
    UiClient::signed_up(&app, "Alan", "alan@example.com").await;

    let attempt = |email: &'static str, password: &'static str, address: &'static str| {
        let browser = UiClient::new(&app);
        async move {
            let token = browser.csrf_token("/auth/sign-in").await;
            let response = browser
                .http
                .post(browser.url("/auth/sign-in"))
                .header("X-Forwarded-For", address)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    // Three failures for Grace's account from three addresses: the account is throttled, even
    // with the right password and from a fourth address.
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_eq!(attempt("grace@example.com", "nope", address).await.0, 401);
    }
    let (status, html) = attempt("grace@example.com", UI_PASSWORD, "10.0.0.4").await;
    assert_eq!(status, 429);
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
    // Alan's account is not, from another address.
    assert_eq!(
        attempt("alan@example.com", UI_PASSWORD, "10.0.0.5").await.0,
        303
    );

    // Three failures from one address on three accounts: that address is throttled for everyone.
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(attempt(email, "nope", "10.9.9.9").await.0, 401);
    }
    assert_eq!(
        attempt("alan@example.com", UI_PASSWORD, "10.9.9.9").await.0,
        429
    );
    assert_eq!(
        attempt("alan@example.com", UI_PASSWORD, "10.9.9.8").await.0,
        303
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_so_a_kept_cookie_is_worthless() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    UiClient::signed_up(&app, "Grace", "grace@example.com").await;
    let browser = UiClient::new(&app);
    let response = browser.sign_in("grace@example.com", UI_PASSWORD).await;
    let token = session_cookie(&response).expect("a session cookie");
    assert_eq!(get_with_cookie(&app, "/", &token).await.status(), 200);
    let sessions_before = count(&app, "SELECT count(*) FROM user_sessions").await;

    let response = browser.submit("/", "/auth/sign-out", &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/auth/sign-in");
    let cleared = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cleared.starts_with("lfrs-session=;"), "{cleared}");

    assert_eq!(browser.get("/").await.status(), 303);
    let kept = get_with_cookie(&app, "/", &token).await;
    assert_eq!(kept.status(), 303, "the old cookie no longer signs in");
    assert_eq!(location(&kept), "/auth/sign-in");
    assert_eq!(
        count(&app, "SELECT count(*) FROM user_sessions").await,
        sessions_before - 1
    );
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_of_the_person() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let here = UiClient::signed_up(&app, "Grace", "grace@example.com").await;
    let elsewhere = UiClient::new(&app);
    assert_eq!(
        elsewhere
            .sign_in("grace@example.com", UI_PASSWORD)
            .await
            .status(),
        303
    );
    let (_, account) = here.page("/account").await;
    assert!(
        account.contains("<dd>1</dd>"),
        "one other session: {account}"
    );

    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let here = &here;
        async move {
            here.submit(
                "/account",
                "/account/password",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", confirm),
                ],
            )
            .await
        }
    };
    let refused = change("wrong one", "a new password", "a new password").await;
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("current password is not right"));
    assert_eq!(
        change(UI_PASSWORD, "a new password", "another")
            .await
            .status(),
        400
    );
    assert_eq!(change(UI_PASSWORD, "short", "short").await.status(), 400);
    assert_eq!(
        elsewhere.get("/").await.status(),
        200,
        "nothing changed yet"
    );

    let response = change(UI_PASSWORD, "a new password", "a new password").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/account?done=password-changed");
    assert_eq!(
        here.get("/").await.status(),
        200,
        "this browser stays signed in"
    );
    assert_eq!(
        elsewhere.get("/").await.status(),
        303,
        "the other is signed out"
    );

    let fresh = UiClient::new(&app);
    assert_eq!(
        fresh
            .sign_in("grace@example.com", UI_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        fresh
            .sign_in("grace@example.com", "a new password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_state_change_without_the_sessions_token_or_from_another_origin_is_refused() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let grace = UiClient::signed_up(&app, "Grace", "grace@example.com").await;
    let alan = UiClient::signed_up(&app, "Alan", "alan@example.com").await;
    let alans_token = alan.csrf_token("/").await;
    let graces_token = grace.csrf_token("/").await;

    for fields in [
        vec![("name", "Forged")],
        vec![("csrf_token", ""), ("name", "Forged")],
        vec![("csrf_token", "0123abcd"), ("name", "Forged")],
        vec![("csrf_token", alans_token.as_str()), ("name", "Forged")],
    ] {
        let response = grace.post_raw("/organizations", &fields).await;
        assert_eq!(response.status(), 403, "{fields:?}");
        assert!(response.text().await.unwrap().contains("Form expired"));
    }
    let foreign = grace
        .http
        .post(grace.url("/organizations"))
        .header("Origin", "https://evil.example")
        .form(&[("csrf_token", graces_token.as_str()), ("name", "Forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "right token, another site's origin");
    assert_eq!(count(&app, "SELECT count(*) FROM organizations").await, 0);

    // Sign-out is a state change too: another site cannot sign people out.
    assert_eq!(grace.post_raw("/auth/sign-out", &[]).await.status(), 403);
    assert_eq!(grace.get("/").await.status(), 200);

    // Before sign-in, the form's token is bound to the nonce cookie of the sign-in page.
    let stranger = UiClient::new(&app);
    let response = stranger
        .post_raw(
            "/auth/sign-in",
            &[("email", "grace@example.com"), ("password", UI_PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403);

    // The real form, same origin, works.
    let same_origin = grace
        .http
        .post(grace.url("/organizations"))
        .header("Origin", app.address.as_str())
        .form(&[("csrf_token", graces_token.as_str()), ("name", "Real")])
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 303);
    assert_eq!(count(&app, "SELECT count(*) FROM organizations").await, 1);
}

/// Owner Ada's project, with Vic a VIEWER and Adam an ADMIN of its organization.
struct Team {
    app: TestApp,
    project_id: String,
    ada: UiClient,
    vic: UiClient,
    adam: UiClient,
}

impl Team {
    async fn new() -> Team {
        let app = TestApp::spawn(TestConfig::new().await).await;
        let ada = UiClient::signed_up(&app, "Ada", "ada@example.com").await;
        let vic = UiClient::signed_up(&app, "Vic", "vic@example.com").await;
        let adam = UiClient::signed_up(&app, "Adam", "adam@example.com").await;
        let project_id = ada.create_org_and_project("Engines", "Difference").await;
        let team = Team {
            app,
            project_id,
            ada,
            vic,
            adam,
        };
        for (email, role) in [("vic@example.com", "VIEWER"), ("adam@example.com", "ADMIN")] {
            let response = team
                .ada
                .submit(
                    &team.settings(),
                    &team.settings_action("members"),
                    &[("email", email), ("role", role)],
                )
                .await;
            assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        }
        team
    }

    fn settings(&self) -> String {
        format!("/project/{}/settings", self.project_id)
    }

    fn settings_action(&self, rest: &str) -> String {
        format!("/project/{}/settings/{rest}", self.project_id)
    }

    async fn user_id(&self, email: &str) -> String {
        let client = self.app.stores.postgres.get().await.unwrap();
        client
            .query_one("SELECT id FROM users WHERE email = $1", &[&email])
            .await
            .unwrap()
            .get(0)
    }

    async fn keys(&self) -> i64 {
        count(&self.app, "SELECT count(*) FROM api_keys").await
    }
}

#[tokio::test]
async fn a_viewer_reads_the_settings_but_can_change_nothing() {
    let team = Team::new().await;
    let (status, html) = team.vic.page(&team.settings()).await;
    assert_eq!(status, 200);
    assert!(html.contains("Difference") && html.contains("ada@example.com"));
    assert!(
        !html.contains("Create new API key"),
        "no key form for a viewer"
    );
    assert!(!html.contains("Add member"), "no member form for a viewer");
    assert!(
        form_actions(&html).iter().all(|a| a == "/auth/sign-out"),
        "the only form is sign-out: {:?}",
        form_actions(&html)
    );

    let ada_id = team.user_id("ada@example.com").await;
    let page = team.settings();
    for (action, fields) in [
        (team.settings_action("api-keys"), vec![("note", "x")]),
        (team.settings_action("name"), vec![("name", "Renamed")]),
        (
            team.settings_action("members"),
            vec![("email", "adam@example.com"), ("role", "VIEWER")],
        ),
        (
            team.settings_action(&format!("members/{ada_id}/role")),
            vec![("role", "VIEWER")],
        ),
        (
            team.settings_action(&format!("members/{ada_id}/remove")),
            vec![],
        ),
    ] {
        let response = team.vic.submit(&page, &action, &fields).await;
        assert_eq!(response.status(), 403, "{action}");
    }
    assert_eq!(team.keys().await, 0);
    let (_, html) = team.ada.page(&page).await;
    assert!(html.contains("value=\"Difference\""), "not renamed");
    assert_eq!(
        count(
            &team.app,
            "SELECT count(*) FROM organization_memberships WHERE role = 'OWNER'"
        )
        .await,
        1
    );
    let (_, home) = team
        .vic
        .page(&format!("/project/{}", team.project_id))
        .await;
    assert!(home.contains("VIEWER"));
}

#[tokio::test]
async fn an_admin_manages_keys_and_members_below_owner() {
    let team = Team::new().await;
    let page = team.settings();
    let response = team
        .adam
        .submit(&page, &team.settings_action("api-keys"), &[("note", "ci")])
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("shown only this once"));
    assert_eq!(team.keys().await, 1);

    // An admin may not make anyone an owner, nor touch the owner.
    let vic_id = team.user_id("vic@example.com").await;
    let ada_id = team.user_id("ada@example.com").await;
    let response = team
        .adam
        .submit(
            &page,
            &team.settings_action(&format!("members/{vic_id}/role")),
            &[("role", "OWNER")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = team
        .adam
        .submit(
            &page,
            &team.settings_action(&format!("members/{ada_id}/remove")),
            &[],
        )
        .await;
    assert_eq!(response.status(), 403);
    // But may promote the viewer to member.
    let response = team
        .adam
        .submit(
            &page,
            &team.settings_action(&format!("members/{vic_id}/role")),
            &[("role", "MEMBER")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, html) = team
        .vic
        .page(&format!("/project/{}", team.project_id))
        .await;
    assert!(html.contains("MEMBER"));

    // Unknown people and people already in are explained, nothing written.
    let response = team
        .adam
        .submit(
            &page,
            &team.settings_action("members"),
            &[("email", "nobody@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("has to sign up first"));
    let response = team
        .adam
        .submit(
            &page,
            &team.settings_action("members"),
            &[("email", "VIC@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 409);
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let team = Team::new().await;
    let page = team.settings();
    let ada_id = team.user_id("ada@example.com").await;
    for (rest, fields) in [
        (format!("members/{ada_id}/role"), vec![("role", "ADMIN")]),
        (format!("members/{ada_id}/remove"), vec![]),
    ] {
        let response = team
            .ada
            .submit(&page, &team.settings_action(&rest), &fields)
            .await;
        assert_eq!(response.status(), 409, "{rest}");
        assert!(response.text().await.unwrap().contains("needs an owner"));
    }
    // With a second owner, the first may step down.
    let adam_id = team.user_id("adam@example.com").await;
    let response = team
        .ada
        .submit(
            &page,
            &team.settings_action(&format!("members/{adam_id}/role")),
            &[("role", "OWNER")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let response = team
        .ada
        .submit(
            &page,
            &team.settings_action(&format!("members/{ada_id}/role")),
            &[("role", "ADMIN")],
        )
        .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn another_organizations_project_is_a_404_with_nothing_of_it_shown() {
    let team = Team::new().await;
    let eve = UiClient::signed_up(&team.app, "Eve", "eve@example.com").await;
    for path in [
        format!("/project/{}", team.project_id),
        team.settings(),
        "/project/does-not-exist".to_string(),
    ] {
        let (status, html) = eve.page(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("Page not found"));
        assert!(
            !html.contains("Difference") && !html.contains("Engines"),
            "{html}"
        );
    }
    // A form posted with Eve's own valid token to Ada's project changes nothing.
    let response = eve
        .submit("/", &team.settings_action("api-keys"), &[("note", "x")])
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(team.keys().await, 0);
    let (_, home) = eve.page("/").await;
    assert!(!home.contains("Difference"));

    // A project role of NONE hides the project from an organization member.
    let vic_id = team.user_id("vic@example.com").await;
    assert!(memberships::set_project_role(
        &team.app.stores.postgres,
        &team.project_id,
        &vic_id,
        langfuse_rs::domain::account::Role::None
    )
    .await
    .unwrap());
    assert_eq!(team.vic.page(&team.settings()).await.0, 404);
}

#[tokio::test]
async fn an_api_key_created_on_the_settings_page_authenticates_the_public_api() {
    let team = Team::new().await;
    let response = team
        .ada
        .submit(
            &team.settings(),
            &team.settings_action("api-keys"),
            &[("note", "backend")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .unwrap(),
        "no-store"
    );
    let html = response.text().await.unwrap();
    let key = ApiKey::new(
        element_text(&html, "new-public-key").unwrap(),
        element_text(&html, "new-secret-key").unwrap(),
    );
    assert!(key.public.starts_with("pk-lf-") && key.secret.starts_with("sk-lf-"));
    let (status, body) = team.app.get_json("/api/public/projects", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], team.project_id.as_str());
    assert_eq!(body["data"][0]["name"], "Difference");

    // The list shows the key masked, never its secret.
    let (_, settings) = team.ada.page(&team.settings()).await;
    assert!(settings.contains(&key.public) && settings.contains("backend"));
    assert!(!settings.contains(&key.secret));

    // Deleted on the page: refused at once by this process.
    let delete = form_actions(&settings)
        .into_iter()
        .find(|a| a.ends_with("/delete"))
        .unwrap();
    let response = team.ada.submit(&team.settings(), &delete, &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(team.keys().await, 0);
    let (status, _) = team.app.get_json("/api/public/projects", &key).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_init_user_is_created_once_when_replicas_start_together() {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_ORG_NAME", "Boot Org")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_NAME", "Boot Project")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-boot")
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-boot")
        .set("LANGFUSE_INIT_USER_EMAIL", "Owner@Example.com")
        .set("LANGFUSE_INIT_USER_NAME", "First Owner")
        .set("LANGFUSE_INIT_USER_PASSWORD", "initial password");
    config.migrate().await;
    let settings = config.settings();
    // The organization first (the user bootstrap runs after it in every replica), then six
    // replicas provisioning the user at once.
    let mut without_user = settings.clone();
    without_user.init.user_email.clear();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    langfuse_rs::bootstrap::run(&pool, &without_user)
        .await
        .unwrap();
    let runs = (0..6).map(|_| {
        let settings = settings.clone();
        tokio::spawn(async move {
            let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
            langfuse_rs::bootstrap::provision_user(&pool, &settings)
                .await
                .expect("never fails on a race")
                .unwrap()
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.created_user).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| o.created_membership).count(), 1);
    // Starting the app runs the whole bootstrap again: nothing new.
    let app = TestApp::spawn_migrated(config).await.unwrap();
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM organization_memberships WHERE role = 'OWNER' AND org_id = 'boot-org'"
        )
        .await,
        1
    );

    let owner = UiClient::new(&app);
    let response = owner.sign_in("owner@example.com", "initial password").await;
    assert_eq!(response.status(), 303);
    let (_, home) = owner.page("/").await;
    assert!(home.contains("Boot Org") && home.contains("Boot Project") && home.contains("OWNER"));
    let (status, settings) = owner.page("/project/boot-project/settings").await;
    assert_eq!(status, 200);
    assert!(settings.contains("pk-lf-boot"));
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_unknown_paths_an_html_404() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let browser = UiClient::new(&app);
    for path in ["/auth/sign-in", "/no/such/page"] {
        let response = browser.get(path).await;
        let headers = response.headers().clone();
        let csp = headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
        assert!(headers.get("referrer-policy").is_some());
        assert!(headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    let (status, html) = browser.page("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"));
    // The public API keeps its JSON 404.
    let response = browser.get("/api/public/nope").await;
    assert_eq!(response.status(), 404);
    assert!(response.json::<serde_json::Value>().await.is_ok());

    // Assets: long-lived at their hashed URL, 404 at any other.
    let (_, sign_in) = browser.page("/auth/sign-in").await;
    let css = sign_in
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.ends_with("app.css")))
        .unwrap()
        .to_string();
    let response = browser.get(&css).await;
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(browser.get("/static/0000/app.css").await.status(), 404);
}

#[tokio::test]
async fn sign_up_can_be_turned_off() {
    let mut config = TestConfig::new().await;
    config.set("AUTH_DISABLE_SIGNUP", "true");
    let app = TestApp::spawn(config).await;
    let browser = UiClient::new(&app);
    let (_, sign_in) = browser.page("/auth/sign-in").await;
    assert!(!sign_in.contains("/auth/sign-up"));
    assert_eq!(browser.get("/auth/sign-up").await.status(), 404);
    let response = browser
        .submit(
            "/auth/sign-in",
            "/auth/sign-up",
            &[
                ("name", "X"),
                ("email", "x@example.com"),
                ("password", UI_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn an_https_public_url_makes_the_cookies_secure() {
    let mut config = TestConfig::new().await;
    config.set("NEXTAUTH_URL", "https://langfuse.example.com");
    let app = TestApp::spawn(config).await;
    let response = UiClient::new(&app).get("/auth/sign-in").await;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("__Host-lfrs-csrf="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
}
