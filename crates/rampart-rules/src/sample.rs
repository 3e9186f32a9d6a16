//! Sample requests written as data (JSON or YAML), for table tests and for
//! `rampart rules test`: what a user writes to unit-test a rule.
//!
//! ```yaml
//! method: POST
//! uri: /v1/orders?debug=1
//! headers: { content-type: application/json, x-tag: [a, b] }
//! client_ip: 192.0.2.7
//! json: { user: { id: 7 } }
//! identity: { consumer: alice, groups: [admins], claims: { sub: "7" } }
//! response: { status: 500 }
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use rampart_core::{ClientCert, Principal};
use serde::Deserialize;

use crate::exec::Input;

/// One value or several.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values, sent as repeated headers.
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            Self::One(v) => vec![v.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A sample request, and optionally its response and who sent it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// The path and query (default `/`); an absolute URI sets the host too.
    #[serde(default)]
    pub uri: Option<String>,
    /// `HTTP/1.0`, `HTTP/1.1` (default) or `HTTP/2`.
    #[serde(default)]
    pub version: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// The client's address (default `192.0.2.1`).
    #[serde(default)]
    pub client_ip: Option<IpAddr>,
    /// The body, as text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body, as JSON (sets `content-type: application/json` unless a header says otherwise).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// The response.
    #[serde(default)]
    pub response: Option<SampleResponse>,
    /// The authenticated principal.
    #[serde(default)]
    pub identity: Option<SampleIdentity>,
    /// The verified client certificate.
    #[serde(default)]
    pub tls_client: Option<SampleCert>,
    /// The API's name.
    #[serde(default)]
    pub api: Option<String>,
    /// The operation id.
    #[serde(default)]
    pub operation: Option<String>,
    /// Path parameters.
    #[serde(default)]
    pub path_params: BTreeMap<String, String>,
}

/// A sample response.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleResponse {
    /// The status code.
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// The response body, as text.
    #[serde(default)]
    pub body: Option<String>,
}

/// A sample principal.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleIdentity {
    /// The consumer.
    #[serde(default)]
    pub consumer: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The method (default `jwt`).
    #[serde(default)]
    pub method: Option<String>,
}

/// A sample client certificate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleCert {
    /// The subject.
    pub subject: String,
    /// The issuer.
    #[serde(default)]
    pub issuer: String,
    /// Subject alternative names.
    #[serde(default)]
    pub sans: Vec<String>,
}

/// A sample turned into the types a rule is evaluated on.
#[derive(Debug)]
pub struct Built {
    /// The request head.
    pub request: http::request::Parts,
    /// The request body.
    pub body: Option<Vec<u8>>,
    /// The response head.
    pub response: Option<http::response::Parts>,
    /// The response body.
    pub response_body: Option<Vec<u8>>,
    /// Who authentication found the client to be.
    pub principal: Option<Principal>,
    /// The verified client certificate.
    pub cert: Option<ClientCert>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The API's name.
    pub api: Option<String>,
    /// The operation id.
    pub operation: Option<String>,
    /// Path parameters.
    pub path_params: Vec<(String, String)>,
}

impl Sample {
    /// Builds the request; the error says what is invalid.
    pub fn build(&self) -> Result<Built, String> {
        let version = match self.version.as_deref() {
            None | Some("HTTP/1.1") => http::Version::HTTP_11,
            Some("HTTP/1.0") => http::Version::HTTP_10,
            Some("HTTP/2" | "HTTP/2.0") => http::Version::HTTP_2,
            Some(other) => return Err(format!("unknown version \"{other}\"")),
        };
        let mut b = http::Request::builder()
            .method(self.method.as_deref().unwrap_or("GET"))
            .uri(self.uri.as_deref().unwrap_or("/"))
            .version(version);
        for (name, v) in &self.headers {
            for one in v.values() {
                b = b.header(name.as_str(), one);
            }
        }
        let body = match (&self.body, &self.json) {
            (Some(_), Some(_)) => return Err("give either body or json, not both".to_owned()),
            (Some(t), None) => Some(t.clone().into_bytes()),
            (None, Some(j)) => {
                if !self
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
                {
                    b = b.header("content-type", "application/json");
                }
                Some(j.to_string().into_bytes())
            }
            (None, None) => None,
        };
        let (request, ()) = b.body(()).map_err(|e| e.to_string())?.into_parts();
        let response = match &self.response {
            None => None,
            Some(r) => {
                let mut rb = http::Response::builder().status(r.status);
                for (name, v) in &r.headers {
                    for one in v.values() {
                        rb = rb.header(name.as_str(), one);
                    }
                }
                Some(rb.body(()).map_err(|e| e.to_string())?.into_parts().0)
            }
        };
        Ok(Built {
            request,
            body,
            response,
            response_body: self
                .response
                .as_ref()
                .and_then(|r| r.body.clone())
                .map(String::into_bytes),
            principal: self.identity.as_ref().map(|i| Principal {
                consumer: i.consumer.clone(),
                groups: i.groups.clone(),
                method: i.method.clone().unwrap_or_else(|| "jwt".to_owned()),
                claims: i.claims.clone(),
                scopes: i.scopes.clone(),
            }),
            cert: self.tls_client.as_ref().map(|c| ClientCert {
                subject: c.subject.clone(),
                issuer: c.issuer.clone(),
                sans: c.sans.clone(),
                ..ClientCert::default()
            }),
            client_ip: self
                .client_ip
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))),
            api: self.api.clone(),
            operation: self.operation.clone(),
            path_params: self
                .path_params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

impl Built {
    /// Returns the input for rules.
    pub fn input(&self) -> Input<'_> {
        Input {
            client_ip: Some(self.client_ip),
            request: Some(&self.request),
            body: self.body.as_deref(),
            response: self.response.as_ref(),
            principal: self.principal.as_ref(),
            client_cert: self.cert.as_ref(),
            api: self.api.as_deref(),
            operation: self.operation.as_deref(),
            path_params: &self.path_params,
        }
    }

    /// Returns the request head.
    pub fn request(&self) -> &http::request::Parts {
        &self.request
    }
}
