//! The configuration as the admin plane shows it: the source text with every secret value
//! replaced. References (`env:NAME`, `file:path`) are not secrets and stay; literal values of
//! secret keys go, in block and in flow style alike.

use std::sync::OnceLock;

use regex::Regex;

/// Keys whose values are secrets (or hashes of secrets, which a low-entropy secret can be
/// guessed from).
const SECRET_KEY: &str = r"token|secret|[a-z_]*_secret|password|[a-z_]*_password|password_hash|key_sha256|hmac_key|[a-z_]*_hmac_key|private_key";

fn pattern() -> &'static Option<Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!(
            r#"(?P<k>(?:^|[\s{{,])(?:{SECRET_KEY})\s*:[ \t]*)(?P<v>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}}#][^,}}#\n]*)"#
        ))
        .ok()
    })
}

fn api_key_pattern() -> &'static Option<Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?P<k>(?:^|[\s{,])key\s*:[ \t]*)(?P<v>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}#][^,}#\n]*)"#,
        )
        .ok()
    })
}

fn is_reference(v: &str) -> bool {
    let v = v.trim().trim_matches(['"', '\'']);
    v.starts_with("env:") || v.starts_with("file:")
}

/// Replaces secret values in a YAML text by `"[redacted]"`. Without the pattern (it always
/// compiles; this is the fail-closed path) nothing of the text is shown.
pub fn redact_config(text: &str) -> String {
    let (Some(re), Some(key_re)) = (pattern(), api_key_pattern()) else {
        return "# (the configuration cannot be shown)\n".to_owned();
    };
    let redact = |re: &Regex, line: &str| -> String {
        re.replace_all(line, |c: &regex::Captures<'_>| {
            if is_reference(&c["v"]) {
                c[0].to_owned()
            } else {
                format!("{}\"[redacted]\"", &c["k"])
            }
        })
        .into_owned()
    };
    let mut out = String::with_capacity(text.len());
    // A credential of `type: api_key` may give the key itself as `key:`, in a flow mapping on
    // one line or in block style on the lines of its list item.
    let mut api_key_item: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let mut line = redact(re, line);
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if let Some(item) = api_key_item {
            let ends = if trimmed.starts_with('-') {
                indent <= item
            } else {
                !trimmed.is_empty() && indent <= item
            };
            if ends {
                api_key_item = None;
            }
        }
        let names_api_key = line.contains("api_key") && line.contains("type");
        if names_api_key && !line.contains('{') {
            api_key_item = Some(indent);
        }
        if api_key_item.is_some() || (names_api_key && line.contains('{')) {
            line = redact(key_re, &line);
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_references_and_the_rest_stay() {
        let yaml = r#"admin: { bind: 127.0.0.1:9901, token: s3cr3t-admin }
idp:
  client_secret: "very secret"
  client_id: app
consumers:
  - name: alice
    credentials:
      - { type: api_key, key: alice-literal-key }
      - { type: basic, password_hash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def" }
  - name: bob
    credentials:
      - type: api_key
        key: bob-literal-key
      - { type: api_key, key: env:BOB_KEY }
      - { type: api_key, key_sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef }
other:
  token: env:RAMPART_ADMIN_TOKEN
  tls: { certificates: [{ cert: server.pem, key: server.key }] }
rate_limits:
  - { name: per-ip, key: ip.src, requests: 10 }
"#;
        let r = redact_config(yaml);
        for secret in [
            "s3cr3t-admin",
            "very secret",
            "alice-literal-key",
            "bob-literal-key",
            "argon2id",
            "0123456789abcdef",
        ] {
            assert!(!r.contains(secret), "{secret} shown:\n{r}");
        }
        for kept in [
            "bind: 127.0.0.1:9901",
            "client_id: app",
            "env:BOB_KEY",
            "token: env:RAMPART_ADMIN_TOKEN",
            "key: server.key",
            "key: ip.src",
            "name: alice",
        ] {
            assert!(r.contains(kept), "{kept} lost:\n{r}");
        }
        assert_eq!(r.lines().count(), yaml.lines().count());
    }
}
