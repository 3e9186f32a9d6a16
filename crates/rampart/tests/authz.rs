//! Authorization through the proxy: policies over the principal and the request, an
//! object-level check (user A asking for user B's order: 403, and the upstream never sees it),
//! a policy on the JSON body, and the default deny.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use rampart_test_support::{jwks, HttpClient, TestGateway, TestUpstream, TokenSigner};

#[tokio::test]
async fn policies_stop_bola_and_default_to_deny() {
    let up = TestUpstream::start().await;
    let signer = TokenSigner::new("ES256", "k1");
    let dir = rampart_test_support::TempDir::new("authz");
    let jwks_path = dir.write("jwks.json", jwks(&[&signer]));
    let yaml = format!(
        r#"
listeners:
  - {{ name: public, bind: 127.0.0.1:0 }}
upstreams:
  app: {{ targets: ["{up}"] }}
consumers:
  - {{ name: ann, groups: [admins] }}
identity_providers:
  corp: {{ type: jwt, jwks: "file:{jwks}", algorithms: [ES256] }}
apis:
  - name: shop
    base_path: /v1
    upstream: app
    authn: {{ methods: [corp] }}
    authz:
      - name: admins-delete
        methods: [DELETE]
        require: '"admins" in identity.groups'
      - name: own-orders
        methods: [GET]
        path: /v1/users/{{user_id}}/orders/{{order_id}}
        require: 'http.request.path_params.user_id == identity.claims.sub'
      - name: own-transfers
        methods: [POST]
        path: /v1/transfers
        require: 'http.request.body.json["/from"] == identity.claims.sub'
      - name: catalogue
        methods: [GET]
        when: 'starts_with(http.request.uri.path, "/v1/products")'
"#,
        up = up.url(),
        jwks = jwks_path.display(),
    );
    let gw = TestGateway::start(&yaml).await;
    let c = HttpClient::new();
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = |sub: &str| {
        format!(
            "Bearer {}",
            signer.sign(&serde_json::json!({ "sub": sub, "exp": exp }))
        )
    };
    let send = |method: &str, path: &str, sub: &str, body: &'static str| {
        Request::builder()
            .method(method)
            .uri(gw.url("public", path))
            .header("authorization", token(sub))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };

    // User 7 reads its own order; asking for user 8's is refused before the upstream.
    let r = c
        .send(send("GET", "/v1/users/7/orders/100", "7", ""))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let before = up.requests();
    let r = c
        .send(send("GET", "/v1/users/8/orders/100", "7", ""))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    let r = c
        .send(send("GET", "/v1/users/%38/orders/100", "7", ""))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "an encoded id is the same id");
    assert_eq!(
        up.requests(),
        before,
        "a refused request reached the upstream"
    );

    // The body decides a transfer: only from one's own account.
    let r = c
        .send(send(
            "POST",
            "/v1/transfers",
            "7",
            r#"{"from":"7","to":"8","amount":5}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .send(send(
            "POST",
            "/v1/transfers",
            "7",
            r#"{"from":"8","to":"7","amount":5}"#,
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = c
        .send(send("POST", "/v1/transfers", "7", ""))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "no body is not a way around the policy");

    // Groups come from the consumer of the token's sub.
    assert_eq!(
        c.send(send("DELETE", "/v1/users/7/orders/100", "7", ""))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        c.send(send("DELETE", "/v1/users/7/orders/100", "ann", ""))
            .await
            .unwrap()
            .status,
        200
    );
    // A policy without require allows; nothing matching is denied.
    assert_eq!(
        c.send(send("GET", "/v1/products/3", "7", ""))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        c.send(send("GET", "/v1/admin/stats", "ann", ""))
            .await
            .unwrap()
            .status,
        403
    );
    // Authentication still comes first: no token, 401.
    assert_eq!(
        c.get(&gw.url("public", "/v1/products/3"))
            .await
            .unwrap()
            .status,
        401
    );

    gw.gateway.events().flush().await;
    gw.shutdown().await;
}
