use rampart_core::{
    Block, Cidr, Decision, Exchange, IpTable, Outcome, Reason, RuleId, Stage, StageId,
};

use super::IpAction;

/// The compiled IP rules of one scope (global or one API).
#[derive(Debug)]
pub struct IpRules {
    table: IpTable<Matched>,
}

#[derive(Clone, Debug)]
pub(super) struct Matched {
    pub(super) action: IpAction,
    pub(super) rule: RuleId,
    pub(super) prefix: Cidr,
}

impl IpRules {
    pub(super) fn new(table: IpTable<Matched>) -> Self {
        Self { table }
    }

    /// Returns true if the rules hold no prefix.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl Stage for IpRules {
    fn id(&self) -> StageId {
        StageId("iprules")
    }

    fn on_request_head(&self, _req: &mut http::request::Parts, x: &mut Exchange) -> Outcome {
        match self.table.lookup(x.client_ip) {
            Some((m, _)) if m.action == IpAction::Block => Ok(Decision::Block(
                Block::new(Reason::Forbidden)
                    .rule(m.rule.clone())
                    .detail(format!("client {} in {}", x.client_ip, m.prefix)),
            )),
            _ => Ok(Decision::Continue),
        }
    }
}
