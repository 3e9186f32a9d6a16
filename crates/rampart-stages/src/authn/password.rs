//! Password hashes for HTTP basic: argon2 (PHC strings, as `rampart hash-password` writes
//! them), bcrypt (`$2a$`, `$2b$`, `$2y$`, as `htpasswd -B` writes them) and `{SHA}` (SHA-1,
//! base64, as `htpasswd -s` writes them; weak, accepted for old files), and htpasswd files.
//!
//! Verifying argon2 or bcrypt costs tens of milliseconds of CPU by design, so the stage runs it
//! off the async workers and remembers a success briefly (keyed by a digest of user and
//! password, never the password).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use aws_lc_rs::{constant_time, digest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A parsed password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordHashKind {
    /// An argon2 PHC string.
    Argon2(String),
    /// A bcrypt hash.
    Bcrypt(String),
    /// `{SHA}`: SHA-1 of the password.
    Sha1([u8; 20]),
}

impl PasswordHashKind {
    /// Parses a stored hash; the error says which formats are understood.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("$argon2") {
            PasswordHash::new(s).map_err(|e| format!("invalid argon2 hash: {e}"))?;
            return Ok(Self::Argon2(s.to_owned()));
        }
        if ["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|p| s.starts_with(p))
        {
            // bcrypt::verify parses at use; check the shape now so a bad file fails at load.
            let parts: Vec<&str> = s.split('$').collect();
            let ok = parts.len() == 4
                && parts[2].len() == 2
                && parts[2].bytes().all(|b| b.is_ascii_digit())
                && parts[3].len() == 53;
            if !ok {
                return Err("invalid bcrypt hash".to_owned());
            }
            return Ok(Self::Bcrypt(s.to_owned()));
        }
        if let Some(b) = s.strip_prefix("{SHA}") {
            let raw = STANDARD
                .decode(b)
                .map_err(|_| "invalid {SHA} hash: not base64".to_owned())?;
            let arr: [u8; 20] = raw
                .try_into()
                .map_err(|_| "invalid {SHA} hash: not 20 bytes".to_owned())?;
            return Ok(Self::Sha1(arr));
        }
        if s.starts_with("$apr1$") || s.starts_with("$1$") {
            return Err("MD5 password hashes ($apr1$) are not accepted: rehash with `htpasswd -B` or `rampart hash-password`".to_owned());
        }
        Err("unknown password hash format: use argon2 (`rampart hash-password`), bcrypt (`htpasswd -B`) or {SHA}".to_owned())
    }

    /// Returns true if `password` matches. Slow for argon2 and bcrypt, by design.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Argon2(s) => PasswordHash::new(s)
                .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok()),
            Self::Bcrypt(s) => bcrypt::verify(password, s).unwrap_or(false),
            Self::Sha1(want) => {
                let got = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password);
                constant_time::verify_slices_are_equal(got.as_ref(), want).is_ok()
            }
        }
    }

    /// True for hashes that cost nothing to check (and so need no cache and no thread hop).
    pub fn is_cheap(&self) -> bool {
        matches!(self, Self::Sha1(_))
    }
}

/// Hashes a password with argon2id and the default parameters (19 MiB, 2 passes), as a PHC
/// string: what `rampart hash-password` prints.
pub fn hash_argon2id(password: &[u8]) -> Result<String, String> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Hashes a password with bcrypt at `cost` (`$2b$`).
pub fn hash_bcrypt(password: &[u8], cost: u32) -> Result<String, String> {
    bcrypt::hash(password, cost).map_err(|e| e.to_string())
}

/// One line of an htpasswd file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtpasswdEntry {
    /// The 1-based line.
    pub line: usize,
    /// The user.
    pub user: String,
    /// The hash.
    pub hash: PasswordHashKind,
}

/// Parses an htpasswd file: `user:hash` per line, blank lines and `#` comments ignored. Returns
/// the entries and, for each bad line, its number and what is wrong.
pub fn parse_htpasswd(text: &str) -> (Vec<HtpasswdEntry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            errors.push((i + 1, "expected user:hash".to_owned()));
            continue;
        };
        if user.is_empty() {
            errors.push((i + 1, "empty user name".to_owned()));
            continue;
        }
        match PasswordHashKind::parse(hash) {
            Ok(h) => entries.push(HtpasswdEntry {
                line: i + 1,
                user: user.to_owned(),
                hash: h,
            }),
            Err(e) => errors.push((i + 1, format!("user \"{user}\": {e}"))),
        }
    }
    (entries, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_verifies_its_password_and_no_other() {
        // bcrypt at the lowest cost and {SHA} as `htpasswd -B -C 4` and `htpasswd -s` write them.
        let bcrypt = hash_bcrypt(b"s3cret", 4).unwrap();
        let sha = "{SHA}".to_owned()
            + &STANDARD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, b"s3cret"));
        let argon = hash_argon2id(b"s3cret").unwrap();
        assert!(argon.starts_with("$argon2id$v=19$"));
        for h in [&argon, &bcrypt, &sha] {
            let k = PasswordHashKind::parse(h).unwrap();
            assert!(k.verify(b"s3cret"), "{h}");
            assert!(!k.verify(b"s3cret "), "{h}");
            assert!(!k.verify(b""), "{h}");
        }
        // A `$2y$` hash as Apache's htpasswd writes it (password "password").
        let apache =
            PasswordHashKind::parse("$2y$05$B3rn6Qn7IQCzcTbIwo/yEuop5E4N9YRBjYWGPt8cgRjyI.WjwX/YS")
                .unwrap();
        assert!(apache.verify(b"password"));
    }

    #[test]
    fn htpasswd_files_report_each_bad_line() {
        let text = "# users\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\nbob\ncarol:$apr1$abc$def\n:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\ndave:$2b$04$short\n";
        let (entries, errors) = parse_htpasswd(text);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].line, entries[0].user.as_str()), (2, "alice"));
        assert!(entries[0].hash.verify(b"password"));
        let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, [4, 5, 6, 7], "{errors:?}");
        assert!(errors[1].1.contains("MD5"), "{errors:?}");
    }
}
