//! Data loss prevention: finds sensitive data in bodies and masks it.
//!
//! This crate has no HTTP server in it; the `dlp` stage adapts it to the pipeline. Detectors are
//! not bare regexes: each candidate is checked by a validator that cuts false positives (Luhn
//! and network prefixes for payment cards, mod 97 and country lengths for IBANs, the issuing
//! rules for US social security numbers, entropy for generic secrets). This first part holds the
//! validators and the redaction of samples.

#[doc(hidden)]
#[doc(hidden)]
pub mod bench_data;
mod detect;
pub mod fuzzing;
pub mod pseudo;
pub mod scan;
pub mod validate;

pub use scan::{
    mask, CustomDetector, CustomRule, Detector, Match, Profile, Scanner, Stream, Validator,
    MAX_MATCH,
};
pub use validate::{
    card_network, iban_valid, luhn_valid, redact_sample, shannon_entropy, us_ssn_valid, CardNetwork,
};
