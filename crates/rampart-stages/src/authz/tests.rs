#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use rampart_core::{Exchange, Principal};

use super::*;

fn policy(
    name: &str,
    methods: &[&str],
    path: Option<&str>,
    when: Option<&str>,
    require: Option<&str>,
) -> PolicyConfig {
    PolicyConfig {
        name: name.to_owned(),
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        path: path.map(str::to_owned),
        operation: None,
        when: when.map(str::to_owned),
        require: require.map(str::to_owned),
    }
}

fn stage(list: Vec<PolicyConfig>) -> AuthzStage {
    let mut cx = CompileCx::new();
    let p = Policies::compile(&list, &Lists::new(), false, &mut cx);
    assert!(cx.is_ok(), "{:?}", cx.diagnostics());
    AuthzStage::new(Arc::new(p.unwrap()))
}

fn exchange(sub: Option<&str>, groups: &[&str]) -> Exchange {
    let addr: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let mut x = Exchange::new(
        "r".into(),
        rampart_core::Peer {
            addr,
            listener: Arc::from("l"),
            tls: None,
        },
        0,
    );
    x.principal = sub.map(|s| Principal {
        consumer: Some(format!("user-{s}")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        method: "jwt".to_owned(),
        claims: serde_json::json!({ "sub": s }).as_object().unwrap().clone(),
        scopes: vec![],
    });
    x
}

fn head(method: &str, uri: &str) -> http::request::Parts {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn verdict(o: Outcome) -> Option<String> {
    match o.unwrap() {
        Decision::Continue => None,
        Decision::Block(b) => {
            assert_eq!(b.status, 403);
            Some(b.rule.unwrap().to_string())
        }
    }
}

fn policies() -> Vec<PolicyConfig> {
    vec![
        policy(
            "admins-delete",
            &["DELETE"],
            None,
            None,
            Some(r#""admins" in identity.groups"#),
        ),
        policy(
            "own-orders",
            &["GET", "put"],
            Some("/v1/users/{user_id}/orders/{order_id}"),
            None,
            Some("http.request.path_params.user_id == identity.claims.sub"),
        ),
        policy(
            "public-health",
            &["GET"],
            None,
            Some(r#"http.request.uri.path == "/v1/health""#),
            None,
        ),
        policy(
            "signed-in",
            &[],
            Some("/v1/users/{user_id}"),
            None,
            Some(r#"identity.consumer != """#),
        ),
    ]
}

#[test]
fn the_first_matching_policy_decides_and_none_means_deny() {
    let s = stage(policies());
    let run = |method: &str, uri: &str, x: &mut Exchange| {
        let mut h = head(method, uri);
        verdict(s.on_request_head(&mut h, x))
    };
    // BOLA: user 7 may read its own orders, not user 8's.
    let mut seven = exchange(Some("7"), &[]);
    assert_eq!(run("GET", "/v1/users/7/orders/1", &mut seven), None);
    assert_eq!(
        seven.path_params,
        [
            ("user_id".to_owned(), "7".to_owned()),
            ("order_id".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(
        run("GET", "/v1/users/8/orders/1", &mut seven).as_deref(),
        Some("own-orders")
    );
    // Percent-encoding does not get around it.
    assert_eq!(
        run("GET", "/v1/users/%38/orders/1", &mut seven).as_deref(),
        Some("own-orders")
    );
    assert_eq!(run("GET", "/v1/users/%37/orders/1", &mut seven), None);
    // DELETE: admins only, whatever the path; the first policy decides.
    assert_eq!(
        run("DELETE", "/v1/users/7/orders/1", &mut seven).as_deref(),
        Some("admins-delete")
    );
    let mut admin = exchange(Some("1"), &["admins"]);
    assert_eq!(run("DELETE", "/v1/users/7/orders/1", &mut admin), None);
    // A policy without `require` allows; anonymous clients too.
    let mut anon = exchange(None, &[]);
    assert_eq!(run("GET", "/v1/health", &mut anon), None);
    assert_eq!(
        run("GET", "/v1/users/7", &mut anon).as_deref(),
        Some("signed-in")
    );
    assert_eq!(run("GET", "/v1/users/7", &mut seven), None);
    // Nothing applies: denied by default.
    assert_eq!(
        run("GET", "/v1/admin", &mut admin).as_deref(),
        Some("authz-default-deny")
    );
    assert_eq!(
        run("POST", "/v1/users/7/orders/1", &mut seven).as_deref(),
        Some("authz-default-deny")
    );
}

#[test]
fn a_policy_on_the_body_is_decided_with_the_body() {
    let s = stage(vec![
        policy(
            "own-transfers",
            &["POST"],
            Some("/v1/transfers"),
            None,
            Some(r#"http.request.body.json["/from_account"] == identity.claims.sub"#),
        ),
        policy("reads", &["GET"], None, None, None),
    ]);
    assert!(s.phases().contains(Phases::REQUEST_BODY));
    let mut x = exchange(Some("acct-1"), &[]);
    let mut h = head("POST", "/v1/transfers");
    // Undecided at the head: the body decides.
    assert_eq!(verdict(s.on_request_head(&mut h, &mut x)), None);
    let mut own = Bytes::from_static(br#"{"from_account":"acct-1","amount":5}"#);
    assert_eq!(verdict(s.on_request_body(&h, &mut own, &mut x)), None);
    let mut other = Bytes::from_static(br#"{"from_account":"acct-2","amount":5}"#);
    assert_eq!(
        verdict(s.on_request_body(&h, &mut other, &mut x)).as_deref(),
        Some("own-transfers")
    );
    let mut none = Bytes::new();
    assert_eq!(
        verdict(s.on_request_body(&h, &mut none, &mut x)).as_deref(),
        Some("own-transfers")
    );
    // Requests the body policy does not cover are decided at the head.
    let mut g = head("GET", "/v1/transfers");
    assert_eq!(verdict(s.on_request_head(&mut g, &mut x)), None);
}

#[test]
fn templates_and_bad_policies() {
    let t = Template::parse("/a/{x}/b").unwrap();
    assert!(t.matches("/a/1/b").is_some());
    assert!(t.matches("/a//b").is_none());
    assert!(t.matches("/a/1/b/").is_none());
    assert!(t.matches("/a/1").is_none());
    for bad in ["a/{x}", "/a/{x}/{x}", "/a/x{y}", "/a/{}", "/a/{x-y}"] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
    let mut cx = CompileCx::new();
    let list = vec![
        policy(
            "p",
            &["GE T"],
            Some("nope"),
            Some("http.response.code == 200"),
            Some("identity.consumr == \"x\""),
        ),
        PolicyConfig {
            operation: Some("getUser".to_owned()),
            ..policy("p", &[], None, None, None)
        },
    ];
    assert!(Policies::compile(&list, &Lists::new(), false, &mut cx).is_none());
    let paths: Vec<&str> = cx.diagnostics().iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "[0].methods[0]",
            "[0].path",
            "[0].when",
            "[0].require",
            "[1].name",
            "[1].operation"
        ]
    );
}
