use rampart_core::Enforcement;
use serde::Deserialize;

/// The `waf` section, global or of one API.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WafConfig {
    /// The default enforcement of this section's rules (each rule may override it).
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Custom rules, evaluated in order.
    #[serde(default)]
    pub custom: Vec<CustomRuleConfig>,
    /// The managed rules: the OWASP CRS or another SecLang rule set (an API's own section
    /// replaces the global one).
    #[serde(default)]
    pub crs: Option<super::crs::CrsConfig>,
}

/// One custom rule as written in YAML.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CustomRuleConfig {
    /// A stable id, unique in the config, shown in events (`block-legacy`).
    pub id: String,
    /// What the rule is for; shown in events.
    #[serde(default)]
    pub description: String,
    /// The condition, in the rules language.
    pub when: String,
    /// What happens when it matches.
    pub action: CustomAction,
    /// For `action: skip`: the stages (`waf.crs`, `ratelimit`, …) or rule ids to skip.
    #[serde(default)]
    pub skip: Vec<String>,
    /// For `action: block`: the status to answer with (default 403).
    #[serde(default)]
    pub status: Option<u16>,
    /// Overrides the section's enforcement for this rule.
    #[serde(default)]
    pub enforcement: Option<Enforcement>,
    /// Runs the rule in a later phase than its fields need (`response_head`, …).
    #[serde(default)]
    pub phase: Option<String>,
    /// Free-form tags, shown in events.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What a custom rule does when it matches.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CustomAction {
    /// Answer with the rule's status (403 by default) and record an event.
    Block,
    /// Record an event and go on.
    Log,
    /// Switch the stages or rules named in `skip` off for this request, record an event and go on.
    Skip,
}
