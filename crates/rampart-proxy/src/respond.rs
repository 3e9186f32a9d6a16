//! The one place that turns a [`Block`] into an HTTP response.
//!
//! The client gets a small, fixed JSON body: the stable reason code, the status and the request
//! id. The rule and the detail never leave the gateway: they go to events and logs.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Response};
use http_body_util::{BodyExt, Full};
use rampart_core::{Block, Reason};

use crate::body::ProxyBody;

/// Builds the response for a block.
pub fn block_response(
    block: &Block,
    request_id: &str,
    request_id_header: &HeaderName,
) -> Response<ProxyBody> {
    let problem_doc = !block.problems.is_empty() || block.reason == Reason::SchemaViolation;
    let (body, content_type) = if !problem_doc {
        let body = serde_json::json!({
            "error": block.reason.code(),
            "status": block.status.as_u16(),
            "request_id": request_id,
        });
        (body.to_string(), "application/json")
    } else {
        // RFC 9457: a problem document, with what the client did wrong and where.
        let errors: Vec<serde_json::Value> = block
            .problems
            .iter()
            .map(
                |(location, message)| serde_json::json!({"location": location, "message": message}),
            )
            .collect();
        let detail = if block.problems.is_empty() {
            // A response the upstream got wrong: the client learns that, and nothing more.
            "The upstream's response does not conform to the API's schema.".to_owned()
        } else {
            block
                .problems
                .iter()
                .map(|(l, m)| format!("{l}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let body = serde_json::json!({
            "type": "about:blank",
            "title": block.status.canonical_reason().unwrap_or("Error"),
            "status": block.status.as_u16(),
            "detail": detail,
            "error": block.reason.code(),
            "errors": errors,
            "request_id": request_id,
        });
        (body.to_string(), "application/problem+json")
    };
    let len = body.len();
    let mut rsp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *rsp.status_mut() = block.status;
    let h = rsp.headers_mut();
    for (name, value) in &block.headers {
        h.append(name.clone(), value.clone());
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(request_id_header.clone(), v);
    }
    rsp
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use rampart_core::RuleId;

    use super::*;

    #[tokio::test]
    async fn body_is_fixed_and_leaks_nothing() {
        let b = Block::new(Reason::Forbidden)
            .rule(RuleId::new("secret-rule"))
            .detail("client 1.2.3.4 in 1.2.3.0/24");
        let rsp = block_response(&b, "abc", &HeaderName::from_static("x-request-id"));
        assert_eq!(rsp.status(), 403);
        assert_eq!(rsp.headers()["x-request-id"], "abc");
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(
            text,
            r#"{"error":"forbidden","request_id":"abc","status":403}"#
        );
        assert!(!text.contains("secret-rule"));
    }

    #[tokio::test]
    async fn problems_make_a_problem_document() {
        let b = Block::new(Reason::SchemaViolation)
            .rule(RuleId::new("listUsers"))
            .detail("internal")
            .problem("/query/limit", "must be <= 100")
            .problem("/header/x-trace", "is required");
        let rsp = block_response(&b, "abc", &HeaderName::from_static("x-request-id"));
        assert_eq!(rsp.status(), 400);
        assert_eq!(rsp.headers()["content-type"], "application/problem+json");
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["title"], "Bad Request");
        assert_eq!(v["status"], 400);
        assert_eq!(v["errors"][0]["location"], "/query/limit");
        assert_eq!(v["errors"][1]["message"], "is required");
        assert_eq!(
            v["detail"],
            "/query/limit: must be <= 100; /header/x-trace: is required"
        );
        assert!(!body.windows(8).any(|w| w == b"internal"));
    }

    #[test]
    fn protocol_headers_of_a_block_are_sent() {
        let b = Block::new(Reason::Unauthenticated)
            .header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"api\""),
            )
            .header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        let rsp = block_response(&b, "abc", &HeaderName::from_static("x-request-id"));
        assert_eq!(rsp.status(), 401);
        let challenges: Vec<_> = rsp.headers().get_all("www-authenticate").iter().collect();
        assert_eq!(challenges, ["Basic realm=\"api\"", "Bearer realm=\"api\""]);
    }
}
