//! Static site mode: the filter in front of Workers static assets with
//! `run_worker_first = true`, so no asset is served before the session check.

use e2e_tests::flows::open_signed_in;
use e2e_tests::process::repo_root;
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};

#[tokio::test(flavor = "multi_thread")]
async fn static_assets_need_session() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("ORIGIN_URL", String::new()),
                ("ASSERTION_AUDIENCE", String::new()),
                ("STATIC_ASSETS", "true".to_owned()),
                (
                    "PATH_RULES",
                    r#"[{"match": "prefix", "pattern": "/public/", "action": "exclude"}]"#
                        .to_owned(),
                ),
            ],
            assets: Some(repo_root().join("edge-filter/static-demo")),
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();

    // No session: the asset path redirects to CAS and the content never shows.
    let anonymous = browser.get(&format!("{edge}/index.html"), &[]).await;
    assert_eq!(anonymous.status.as_u16(), 302, "{}", anonymous.body);
    assert!(!anonymous.body.contains("static-demo"));

    // Excluded assets are public.
    let public = browser.get(&format!("{edge}/public/"), &[]).await;
    assert_eq!(public.status.as_u16(), 200, "{}", public.body);
    assert!(
        public.body.contains(r#"id="static-public""#),
        "{}",
        public.body
    );

    // Signed in: the asset comes from the ASSETS binding.
    let page = open_signed_in(&mut browser, &stack.cas, &format!("{edge}/")).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    assert!(page.body.contains(r#"id="static-demo""#), "{}", page.body);
    stack.assert_running();
}
