use std::collections::HashMap;

use rampart_core::{Cidr, CompileCx, IpTable, RuleId};
use serde::Deserialize;

use super::stage::{IpRules, Matched};

/// One IP rule as written in YAML.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpRuleConfig {
    /// A stable id for events; defaults to `ip-rule-N` (N counted from 1).
    #[serde(default)]
    pub id: Option<String>,
    /// What happens to matching clients.
    pub action: IpAction,
    /// Addresses and prefixes written inline.
    #[serde(default)]
    pub list: Vec<String>,
    /// Names of lists from the top-level `lists` section.
    #[serde(default)]
    pub lists: Vec<String>,
}

/// What an IP rule does.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum IpAction {
    /// Not blocked by this stage (an exception to a wider block).
    Allow,
    /// Answered with 403.
    Block,
}

impl IpRules {
    /// Compiles rules against the named lists. Problems go to `cx`; `None` if any.
    pub fn compile(
        rules: &[IpRuleConfig],
        named: &HashMap<String, Vec<Cidr>>,
        cx: &mut CompileCx,
    ) -> Option<Self> {
        let before = cx.diagnostics().len();
        let mut table: IpTable<Matched> = IpTable::new();
        for (i, rule) in rules.iter().enumerate() {
            cx.at(format!("[{i}]"), |cx| {
                let id = RuleId::new(rule.id.as_deref().unwrap_or(&format!("ip-rule-{}", i + 1)));
                if rule.list.is_empty() && rule.lists.is_empty() {
                    cx.error("a rule needs `list` or `lists`");
                }
                let mut prefixes = Vec::new();
                cx.at("list", |cx| {
                    for (j, s) in rule.list.iter().enumerate() {
                        cx.at(format!("[{j}]"), |cx| match s.parse::<Cidr>() {
                            Ok(c) => prefixes.push(c),
                            Err(e) => cx.error(e.to_string()),
                        });
                    }
                });
                cx.at("lists", |cx| {
                    for (j, name) in rule.lists.iter().enumerate() {
                        cx.at(format!("[{j}]"), |cx| match named.get(name) {
                            Some(list) => prefixes.extend(list.iter().copied()),
                            None => cx.unknown("list", name, named.keys()),
                        });
                    }
                });
                for p in prefixes {
                    let m = Matched {
                        action: rule.action,
                        rule: id.clone(),
                        prefix: p,
                    };
                    // A block and an allow of the same prefix: the block wins.
                    let keep_block = table
                        .lookup(p.addr())
                        .is_some_and(|(old, len)| len == p.len() && old.action == IpAction::Block);
                    if !keep_block {
                        table.insert(p, m);
                    }
                }
            });
        }
        (cx.diagnostics().len() == before).then(|| Self::new(table))
    }
}
