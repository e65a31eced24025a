//! Path rules, attribute headers, API mode and redirect loop protection of the wasm
//! filter in workerd, against the real CAS server and demo origin.

use e2e_tests::flows::{cookie_pair, open_signed_in, service_of, USER};
use e2e_tests::raw_http::{raw, status};
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};

const RULES: &str = r#"[
  {"match": "exact", "pattern": "/public/health", "action": "exclude"},
  {"match": "prefix", "pattern": "/public/", "gateway": true},
  {"match": "glob", "pattern": "/staff/**", "require": {"memberOf": ["staff"]}},
  {"match": "regex", "pattern": "/fresh/[a-z]+", "renew": true},
  {"match": "prefix", "pattern": "/new/", "require": {"isFromNewLogin": ["true"]}}
]"#;

async fn rules_stack() -> (Stack, String) {
    let mut stack = Stack::start(StackOptions::default()).await;
    let options = EdgeOptions {
        vars: vec![
            ("PATH_RULES", RULES.to_owned()),
            ("AUTH_REALM", "Test site".to_owned()),
        ],
        ..Default::default()
    };
    let edge = stack.start_edge(options).await;
    (stack, edge)
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_route_each_path() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    let forged = [("X-CAS-User", "admin"), ("X-CAS-Attr-memberOf", "staff")];

    // Excluded: straight to the origin, forged identity headers scrubbed.
    let health = browser.get(&format!("{edge}/public/health"), &forged).await;
    assert_eq!(health.status.as_u16(), 200, "{}", health.body);
    assert!(health.body.contains(r#"id="anonymous""#), "{}", health.body);
    assert!(
        health.body.contains(r#"<ul id="attribute-headers"></ul>"#),
        "{}",
        health.body
    );
    assert!(!health.body.contains("admin"), "{}", health.body);
    assert!(health.set_cookies().is_empty());

    // Gateway without a CAS session: one trip to CAS, which returns without a ticket.
    let news = format!("{edge}/public/news");
    let to_cas = browser.get(&news, &[]).await;
    assert_eq!(to_cas.status.as_u16(), 302);
    let login = to_cas.location();
    assert!(login.ends_with("&gateway=true"), "{login}");
    assert!(to_cas.set_cookie("cas_edge_gateway").is_some());
    let back = browser.get(&login, &[]).await;
    assert_eq!(back.status.as_u16(), 302, "{}", back.body);
    assert_eq!(back.location(), news);
    let anonymous = browser.get(&news, &[]).await;
    assert_eq!(anonymous.status.as_u16(), 200, "{}", anonymous.body);
    assert!(
        anonymous.body.contains(r#"id="anonymous""#),
        "{}",
        anonymous.body
    );
    assert!(
        anonymous.body.contains(r#"<ul id="cookie-names"></ul>"#),
        "filter cookies reached the origin: {}",
        anonymous.body
    );

    // Signed in: attributes in headers and in the assertion.
    let private = open_signed_in(&mut browser, &stack.cas, &format!("{edge}/private/a")).await;
    assert_eq!(private.status.as_u16(), 200, "{}", private.body);
    assert!(private
        .body
        .contains(&format!(r#"<strong id="user">{USER}</strong>"#)));
    assert!(
        browser.cookie(&edge, "cas_edge_redirects").is_none(),
        "sign-in must reset the redirect count"
    );
    assert!(
        private
            .body
            .contains("<li>x-cas-attr-isfromnewlogin: true</li>"),
        "attribute header missing: {}",
        private.body
    );
    assert!(
        private.body.contains("<li>isFromNewLogin=true</li>"),
        "{}",
        private.body
    );
    assert!(
        private.body.contains("x-cas-attr-authenticationdate: 20"),
        "{}",
        private.body
    );
    assert!(
        !private.body.contains("x-cas-attr-memberof"),
        "{}",
        private.body
    );

    // Attribute requirements: alice has isFromNewLogin but no memberOf.
    let staff = browser.get(&format!("{edge}/staff/a/b"), &[]).await;
    assert_eq!(staff.status.as_u16(), 403, "{}", staff.body);
    assert!(staff.body.contains("Access denied"), "{}", staff.body);
    let new = browser.get(&format!("{edge}/new/a"), &[]).await;
    assert_eq!(new.status.as_u16(), 200, "{}", new.body);

    // Gateway with a session identifies the user.
    let identified = browser.get(&news, &[]).await;
    assert!(
        identified
            .body
            .contains(r#"<strong id="user">alice</strong>"#),
        "{}",
        identified.body
    );

    // Renew: the SSO session is not enough; CAS requests the password again.
    let fresh = format!("{edge}/fresh/page");
    let renew = browser.get(&fresh, &[]).await;
    assert_eq!(renew.status.as_u16(), 302, "{}", renew.body);
    assert!(
        renew.location().ends_with("&renew=true"),
        "{}",
        renew.location()
    );
    let renewed = open_signed_in(&mut browser, &stack.cas, &fresh).await;
    assert_eq!(renewed.status.as_u16(), 200, "{}", renewed.body);
    assert!(renewed.body.contains(r#"<strong id="user">alice</strong>"#));

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_with_cas_session_signs_in() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    open_signed_in(&mut browser, &stack.cas, &format!("{edge}/private/")).await;
    browser.clear_cookies(&edge);

    let news = format!("{edge}/public/news");
    let to_cas = browser.get(&news, &[]).await;
    let with_ticket = browser.get(&to_cas.location(), &[]).await;
    assert!(
        with_ticket.location().contains("ticket=ST-"),
        "{}",
        with_ticket.location()
    );
    let validated = browser.get(&with_ticket.location(), &[]).await;
    assert_eq!(validated.status.as_u16(), 302, "{}", validated.body);
    let page = browser.get(&validated.location(), &[]).await;
    assert!(
        page.body.contains(r#"<strong id="user">alice</strong>"#),
        "{}",
        page.body
    );

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_and_slash_paths_are_rejected() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();

    // The origin may resolve these outside the rule that matched them: to /private,
    // past the gateway prefix, or to a path with other rules.
    for path in [
        "/public/..%2Fprivate",
        "/public/..;/private",
        "/public/.%2Fprivate",
        "/admin/..%2Fpublic/x",
    ] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // With slashes merged or `\` read as `/`, these fall under another rule: the excluded
    // health page, or the staff pages.
    for path in ["/public//health", "//staff/x", "/staff%5Cx"] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // Both forms of this one are under the gateway rule, so it is served as usual.
    let page = browser.get(&format!("{edge}/public//page"), &[]).await;
    assert_eq!(page.status.as_u16(), 302, "{}", page.body);

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_paths_are_rejected() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    open_signed_in(&mut browser, &stack.cas, &format!("{edge}/private/")).await;

    // The filter rejects each of these on the excluded, the gateway and the staff-only
    // path alike, because an origin may serve it from another path than the one the
    // filter matched. Such an origin decodes twice (`%252e` to `.`), cuts the path at a
    // control character, reads `\` as `/`, reads the overlong UTF-8 `%C0%AE` as `.`, or
    // removes trailing spaces from `..`.
    for base in ["/public/health", "/public/news", "/staff/report"] {
        for rest in [
            "/%252e%252e/%252e%252e/staff/report",
            "%252F..%252F..%252Fstaff%252Freport",
            "%255C..%255C..%255Cstaff%255Creport",
            "/%u002e%u002e/%u002e%u002e/staff/report",
            "%00",
            "%00.html",
            "%0a",
            "%0D%0A",
            "%09",
            "%5C..%5C..%5Cstaff%5Creport",
            "%5c",
            "/%C0%AE%C0%AE/%C0%AE%C0%AE/staff/report",
            "%FF",
            "/..%20/..%20/staff/report",
        ] {
            let path = format!("{base}{rest}");
            let page = browser.get(&format!("{edge}{path}"), &[]).await;
            assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
            assert!(page.body.contains("Bad request"), "{path}: {}", page.body);
            assert!(
                page.body.contains("access rules cannot be applied"),
                "{path}: {}",
                page.body
            );
        }
    }

    // Windows removes trailing dots and spaces from names, so IIS serves these as
    // /public/health and /staff/report, under other rules than the paths as sent.
    for path in [
        "/public/health.",
        "/public/health%20",
        "/staff./report",
        "/staff%20/report",
        "/staff.%20./report",
        "/STAFF./report",
    ] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // A proxy that puts the decoded path into its upstream URL ends it at `?` or `#`,
    // so it serves these as /fresh/page and /public/health.
    for path in [
        "/fresh/page%3F",
        "/fresh/page%23top",
        "/public/health%3F.css",
    ] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // Ordinary names with escapes, and trailing dots or a `?` that leave the rule
    // unchanged, pass as before.
    for path in [
        "/private/what%3F",
        "/private/my%20file.pdf",
        "/private/app%2ejs",
        "/private/%E6%96%87%E6%A1%A3/%E9%A1%B5",
        "/private/100%25.html",
        "/private/Washington,_D.C.",
        "/public/news.",
    ] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 200, "{path}: {}", page.body);
    }
    let staff = browser.get(&format!("{edge}/staff/report."), &[]).await;
    assert_eq!(staff.status.as_u16(), 403, "{}", staff.body);

    stack.assert_running();
}

/// Sends a GET for `target`, written into the request line as it is, and returns the
/// status and the whole response.
async fn raw_get(edge: &str, target: &str) -> (u16, String) {
    let response = raw(
        edge,
        &format!("GET {target} HTTP/1.1\r\nAccept: text/html"),
        "",
    )
    .await;
    (status(&response), response)
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_controls_and_backslashes_never_pass() {
    let (mut stack, edge) = rules_stack().await;

    // workerd's HTTP parser rejects these request lines before the filter runs.
    for target in [
        "/public/health\0",
        "/public/health\x01",
        "/public/health\t",
        "/public/health\x7f",
    ] {
        let (status, response) = raw_get(&edge, target).await;
        assert_eq!(status, 400, "{target:?}: {response}");
    }

    // workerd reads a raw `\` as `/` and resolves the `..` segments it makes, so the
    // filter matches the path that the origin receives.
    let (status, response) = raw_get(&edge, "/public\\health").await;
    assert_eq!(status, 200, "{response}");
    assert!(
        response.contains(r#"<code id="path">/public/health</code>"#),
        "{response}"
    );
    let (status, response) = raw_get(&edge, "/public\\..\\staff\\report").await;
    assert_eq!(status, 302, "{response}");
    assert!(response.contains("%2Fstaff%2Freport"), "{response}");

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn parameter_paths_cannot_skip_require() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    open_signed_in(&mut browser, &stack.cas, &format!("{edge}/private/")).await;

    // The test user is not in the staff group.
    let staff = browser.get(&format!("{edge}/staff/report"), &[]).await;
    assert_eq!(staff.status.as_u16(), 403, "{}", staff.body);

    // Tomcat and Spring remove `;` parameters and serve these as /staff/report and
    // /public/health, under other rules than the paths the filter matches.
    for path in [
        "/staff;x/report",
        "/staff;jsessionid=1/report",
        "/public/health;x",
    ] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // Parameters that leave the rule unchanged pass as before.
    let page = browser.get(&format!("{edge}/private;v=1/a"), &[]).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn case_variants_cannot_skip_require() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    open_signed_in(&mut browser, &stack.cas, &format!("{edge}/private/")).await;

    // Express, ASP.NET Core and IIS ignore ASCII case in paths by default and serve
    // these as /staff/report and /public/health.
    for path in ["/STAFF/report", "/Staff/report", "/PUBLIC/HEALTH"] {
        let page = browser.get(&format!("{edge}{path}"), &[]).await;
        assert_eq!(page.status.as_u16(), 400, "{path}: {}", page.body);
    }

    // Uppercase letters that leave the rule unchanged pass as before.
    let private = browser.get(&format!("{edge}/private/Report"), &[]).await;
    assert_eq!(private.status.as_u16(), 200, "{}", private.body);
    let staff = browser.get(&format!("{edge}/staff/Report"), &[]).await;
    assert_eq!(staff.status.as_u16(), 403, "{}", staff.body);

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn api_clients_get_401_and_loops_stop() {
    let (mut stack, edge) = rules_stack().await;
    let mut browser = stack.browser();
    let api = format!("{edge}/api/items");

    // API signals: XMLHttpRequest, a non-navigate fetch, a POST, an Accept without HTML.
    for extra in [
        vec![("X-Requested-With", "XMLHttpRequest")],
        vec![("Sec-Fetch-Mode", "cors")],
    ] {
        let page = browser.get(&api, &extra).await;
        assert_eq!(page.status.as_u16(), 401, "{extra:?}: {}", page.body);
        let challenge = page.headers["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        let login = format!("{}/login?service=", stack.cas);
        assert!(
            challenge.starts_with(&format!(r#"CAS realm="Test site", login="{login}"#)),
            "{challenge}"
        );
        assert_eq!(service_of(challenge.trim_end_matches('"')), api);
    }
    let post = browser.post_form(&api, &[("a", "1")]).await;
    assert_eq!(post.status.as_u16(), 401, "{}", post.body);
    let json = reqwest::Client::new()
        .get(&api)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json.status().as_u16(), 401);

    // A browser that keeps only the counter cookie: three redirects, then the error page.
    for attempt in 1..=3 {
        let page = browser.get(&format!("{edge}/loop"), &[]).await;
        assert_eq!(
            page.status.as_u16(),
            302,
            "attempt {attempt}: {}",
            page.body
        );
        let counter = page.set_cookie("cas_edge_redirects").unwrap_or_default();
        assert!(cookie_pair(&counter).starts_with(&format!("cas_edge_redirects={attempt}.")));
    }
    let stopped = browser.get(&format!("{edge}/loop"), &[]).await;
    assert_eq!(stopped.status.as_u16(), 429, "{}", stopped.body);
    assert!(
        stopped.body.contains("Too many sign-in redirects"),
        "{}",
        stopped.body
    );

    stack.assert_running();
}
