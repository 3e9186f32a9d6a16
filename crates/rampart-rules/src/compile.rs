//! Type checking, phase inference and compilation to a tree that evaluates without
//! re-parsing, over values a [`Context`] computes once per request.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use memchr::memmem;
use rampart_core::diagnostics::nearest;
use rampart_core::{Cidr, IpTable};

use crate::ast::{visit_operands, CmpOp, Expr, ExprKind, Lit, Operand, OperandKind, Rhs};
use crate::error::{RuleError, Span};
use crate::exec::{Arg, Context, Input, SlotDef, Value};
use crate::matcher::Matcher;
use crate::parse::{parse, Limits};
use crate::scheme::{self, Base, FieldId, FieldPhase, FuncId, Ty, FIELDS, FUNCTIONS};

/// A named list of the config (`lists:`), usable as `in $name`.
#[derive(Clone, Debug)]
pub enum List {
    /// Addresses and prefixes.
    Ip(Arc<IpTable<()>>),
    /// Strings (host names, user agents, …), matched exactly.
    Bytes(Arc<HashSet<Vec<u8>>>),
}

impl List {
    /// Builds a list from config entries: an IP list when the first entry is an address or a
    /// prefix (then every entry must be), a string list otherwise.
    pub fn from_entries(entries: &[String]) -> Result<Self, (usize, String)> {
        let is_ip = entries.first().is_some_and(|e| e.parse::<Cidr>().is_ok());
        if is_ip {
            let mut t = IpTable::new();
            for (i, e) in entries.iter().enumerate() {
                let c = e.parse::<Cidr>().map_err(|err| {
                    (
                        i,
                        format!("{err} (the list holds addresses, as its first entry does)"),
                    )
                })?;
                t.insert(c, ());
            }
            Ok(Self::Ip(Arc::new(t)))
        } else {
            Ok(Self::Bytes(Arc::new(
                entries.iter().map(|e| e.as_bytes().to_vec()).collect(),
            )))
        }
    }

    fn base(&self) -> Base {
        match self {
            Self::Ip(_) => Base::Ip,
            Self::Bytes(_) => Base::Bytes,
        }
    }
}

/// The named lists rules can use.
pub type Lists = HashMap<String, List>;

/// A compiled boolean expression.
#[derive(Debug)]
enum Node {
    Const(bool),
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Xor(Box<[Node]>),
    Test { slot: usize, all: bool, test: Test },
}

/// What is tested on each value of a slot.
#[derive(Debug)]
enum Test {
    Truthy,
    Eq(Value<'static>),
    Ne(Value<'static>),
    Ord(CmpOp, Value<'static>),
    Contains(Box<memmem::Finder<'static>>),
    Match(Box<Matcher>),
    InBytes(Arc<HashSet<Vec<u8>>>),
    InInt(Box<[i64]>),
    InIp(Arc<IpTable<()>>),
    /// Compared with every value of another slot.
    Slot(CmpOp, usize),
}

/// Identifies an expression in a [`RuleSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExprId(usize);

#[derive(Debug)]
struct Compiled {
    node: Node,
    phase: FieldPhase,
}

/// Compiles expressions into one [`RuleSet`], whose expressions share one per-request cache:
/// a field (or a function of fields) that several rules read is computed once per request.
#[derive(Debug)]
pub struct RuleSetBuilder<'l> {
    limits: Limits,
    lists: &'l Lists,
    defs: Vec<SlotDef>,
    interned: HashMap<String, usize>,
    exprs: Vec<Compiled>,
}

/// Compiled expressions, immutable, shared by every request.
#[derive(Debug)]
pub struct RuleSet {
    defs: Box<[SlotDef]>,
    exprs: Vec<Compiled>,
}

impl<'l> RuleSetBuilder<'l> {
    /// Creates a builder with these limits and named lists.
    pub fn new(limits: Limits, lists: &'l Lists) -> Self {
        Self {
            limits,
            lists,
            defs: Vec::new(),
            interned: HashMap::new(),
            exprs: Vec::new(),
        }
    }

    /// Parses, checks and compiles an expression. Returns every problem found in it.
    pub fn add(&mut self, src: &str) -> Result<ExprId, Vec<RuleError>> {
        let ast = parse(src, &self.limits).map_err(|e| vec![e])?;
        self.add_ast(&ast)
    }

    /// Checks and compiles a parsed expression.
    pub fn add_ast(&mut self, ast: &Expr) -> Result<ExprId, Vec<RuleError>> {
        let mut errs = Vec::new();
        let node = self.expr(ast, &mut errs);
        match node {
            Some(node) if errs.is_empty() => {
                self.exprs.push(Compiled {
                    node,
                    phase: phase_of(ast),
                });
                Ok(ExprId(self.exprs.len() - 1))
            }
            _ => {
                if errs.is_empty() {
                    errs.push(RuleError::new(ast.span, "invalid expression"));
                }
                Err(errs)
            }
        }
    }

    /// Finishes the set.
    pub fn build(self) -> RuleSet {
        RuleSet {
            defs: self.defs.into_boxed_slice(),
            exprs: self.exprs,
        }
    }

    fn expr(&mut self, e: &Expr, errs: &mut Vec<RuleError>) -> Option<Node> {
        let many = |this: &mut Self, v: &[Expr], errs: &mut Vec<RuleError>| {
            let nodes: Vec<Option<Node>> = v.iter().map(|e| this.expr(e, errs)).collect();
            nodes
                .into_iter()
                .collect::<Option<Vec<Node>>>()
                .map(Vec::into_boxed_slice)
        };
        match &e.kind {
            ExprKind::Or(v) => many(self, v, errs).map(Node::Or),
            ExprKind::And(v) => many(self, v, errs).map(Node::And),
            ExprKind::Xor(v) => many(self, v, errs).map(Node::Xor),
            ExprKind::Not(inner) => self.expr(inner, errs).map(|n| Node::Not(Box::new(n))),
            ExprKind::Any(inner) | ExprKind::All(inner) => {
                let all = matches!(e.kind, ExprKind::All(_));
                let name = if all { "all" } else { "any" };
                match &inner.kind {
                    ExprKind::Compare { lhs, op, rhs } => {
                        self.compare(lhs, *op, rhs, Some((all, name)), errs)
                    }
                    ExprKind::Value(o) => self.truthy(o, Some((all, name)), errs),
                    _ => {
                        errs.push(
                            RuleError::new(inner.span, format!("{name}() takes one comparison"))
                                .help(format!(
                                "write {name}(field op value); combine several with and/or outside"
                            )),
                        );
                        None
                    }
                }
            }
            ExprKind::Compare { lhs, op, rhs } => self.compare(lhs, *op, rhs, None, errs),
            ExprKind::Value(o) => self.truthy(o, None, errs),
        }
    }

    fn truthy(
        &mut self,
        o: &Operand,
        quant: Option<(bool, &str)>,
        errs: &mut Vec<RuleError>,
    ) -> Option<Node> {
        if let OperandKind::Lit(Lit::Bool(b)) = o.kind {
            return Some(Node::Const(b));
        }
        let (ty, slot) = self.value(o, errs)?;
        if ty.base != Base::Bool {
            errs.push(
                RuleError::new(o.span, format!("\"{o}\" is {ty}, not a condition"))
                    .help("compare it with a value, for example: == \"…\""),
            );
            return None;
        }
        let all = self.quantifier(quant, ty, o, errs)?;
        Some(Node::Test {
            slot,
            all,
            test: Test::Truthy,
        })
    }

    fn quantifier(
        &self,
        quant: Option<(bool, &str)>,
        ty: Ty,
        o: &Operand,
        errs: &mut Vec<RuleError>,
    ) -> Option<bool> {
        match quant {
            None => Some(false),
            Some((_, name)) if !ty.multi => {
                errs.push(RuleError::new(
                    o.span,
                    format!("{name}() needs a multi-valued operand, but \"{o}\" has one value"),
                ));
                None
            }
            Some((all, _)) => Some(all),
        }
    }

    fn compare(
        &mut self,
        lhs: &Operand,
        op: CmpOp,
        rhs: &Rhs,
        quant: Option<(bool, &str)>,
        errs: &mut Vec<RuleError>,
    ) -> Option<Node> {
        // A literal on the left: `"admins" in identity.groups`, `"x" == field`.
        if let OperandKind::Lit(lit) = &lhs.kind {
            return match (op, rhs) {
                (CmpOp::In | CmpOp::Eq | CmpOp::Ne, Rhs::Operand(r))
                    if !matches!(r.kind, OperandKind::Lit(_)) =>
                {
                    let (ty, slot) = self.value(r, errs)?;
                    let all = self.quantifier(quant, ty, r, errs)?;
                    let v = self.literal(lit, ty.base, lhs.span, r, errs)?;
                    let test = if op == CmpOp::Ne {
                        Test::Ne(v)
                    } else {
                        Test::Eq(v)
                    };
                    Some(Node::Test { slot, all, test })
                }
                _ => {
                    errs.push(
                        RuleError::new(
                            lhs.span,
                            "the left side of a comparison must be a field or a function",
                        )
                        .help("write the field first: field == \"value\""),
                    );
                    None
                }
            };
        }
        let (ty, slot) = self.value(lhs, errs)?;
        let all = self.quantifier(quant, ty, lhs, errs)?;
        let test = match rhs {
            Rhs::Operand(r) => match &r.kind {
                OperandKind::Lit(lit) => self.literal_test(lhs, ty, op, lit, r.span, errs)?,
                _ => {
                    let (rty, rslot) = self.value(r, errs)?;
                    let ok_op = match op {
                        CmpOp::Eq | CmpOp::Ne | CmpOp::In => true,
                        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                            matches!(ty.base, Base::Int | Base::Bytes)
                        }
                        _ => false,
                    };
                    if !ok_op {
                        errs.push(RuleError::new(
                            r.span,
                            format!("\"{}\" needs a literal on its right side", op.as_str()),
                        ));
                        return None;
                    }
                    if rty.base != ty.base {
                        errs.push(RuleError::new(
                            r.span,
                            format!("cannot compare \"{lhs}\" ({ty}) with \"{r}\" ({rty})"),
                        ));
                        return None;
                    }
                    let op = if op == CmpOp::In { CmpOp::Eq } else { op };
                    Test::Slot(op, rslot)
                }
            },
            Rhs::Set(items) => {
                if op != CmpOp::In {
                    errs.push(RuleError::new(
                        items.first().map_or(lhs.span, |i| i.span),
                        format!("a set can only follow \"in\", not \"{}\"", op.as_str()),
                    ));
                    return None;
                }
                self.set_test(lhs, ty, items, errs)?
            }
            Rhs::List(name, span) => {
                if op != CmpOp::In {
                    errs.push(RuleError::new(
                        *span,
                        format!("a list can only follow \"in\", not \"{}\"", op.as_str()),
                    ));
                    return None;
                }
                let Some(list) = self.lists.get(name) else {
                    let mut e = RuleError::new(*span, format!("unknown list \"${name}\""));
                    e = match nearest(name, self.lists.keys()) {
                        Some(n) => e.help(format!("did you mean \"${n}\"?")),
                        None => e.help("lists are defined under the config's `lists` key"),
                    };
                    errs.push(e);
                    return None;
                };
                if list.base() != ty.base {
                    errs.push(RuleError::new(
                        *span,
                        format!(
                            "list \"${name}\" holds {} values, but \"{lhs}\" is {ty}",
                            list.base().as_str()
                        ),
                    ));
                    return None;
                }
                match list {
                    List::Ip(t) => Test::InIp(t.clone()),
                    List::Bytes(s) => Test::InBytes(s.clone()),
                }
            }
        };
        Some(Node::Test { slot, all, test })
    }

    fn literal_test(
        &mut self,
        lhs: &Operand,
        ty: Ty,
        op: CmpOp,
        lit: &Lit,
        span: Span,
        errs: &mut Vec<RuleError>,
    ) -> Option<Test> {
        let needs_bytes = |errs: &mut Vec<RuleError>| {
            errs.push(RuleError::new(
                lhs.span,
                format!("\"{}\" works on bytes, but \"{lhs}\" is {ty}", op.as_str()),
            ));
            None
        };
        match op {
            CmpOp::Eq | CmpOp::Ne => {
                let v = self.literal(lit, ty.base, span, lhs, errs)?;
                Some(if op == CmpOp::Eq {
                    Test::Eq(v)
                } else {
                    Test::Ne(v)
                })
            }
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                if !matches!(ty.base, Base::Int | Base::Bytes) {
                    errs.push(RuleError::new(
                        lhs.span,
                        format!(
                            "\"{}\" compares numbers or bytes, but \"{lhs}\" is {ty}",
                            op.as_str()
                        ),
                    ));
                    return None;
                }
                let v = self.literal(lit, ty.base, span, lhs, errs)?;
                Some(Test::Ord(op, v))
            }
            CmpOp::Contains => {
                if ty.base != Base::Bytes {
                    return needs_bytes(errs);
                }
                let b = self.bytes_lit(lit, span, "contains", errs)?;
                Some(Test::Contains(Box::new(
                    memmem::Finder::new(&b).into_owned(),
                )))
            }
            CmpOp::Matches => {
                if ty.base != Base::Bytes {
                    return needs_bytes(errs);
                }
                let b = self.bytes_lit(lit, span, "matches", errs)?;
                let Ok(pattern) = std::str::from_utf8(&b) else {
                    errs.push(RuleError::new(span, "a regex must be valid UTF-8"));
                    return None;
                };
                match Matcher::regex(pattern, &self.limits) {
                    Ok(m) => Some(Test::Match(Box::new(m))),
                    Err(msg) => {
                        errs.push(RuleError::new(span, msg));
                        None
                    }
                }
            }
            CmpOp::Wildcard | CmpOp::StrictWildcard => {
                if ty.base != Base::Bytes {
                    return needs_bytes(errs);
                }
                let b = self.bytes_lit(lit, span, "wildcard", errs)?;
                match Matcher::wildcard(&b, op == CmpOp::StrictWildcard, &self.limits) {
                    Ok(m) => Some(Test::Match(Box::new(m))),
                    Err(msg) => {
                        errs.push(RuleError::new(span, msg));
                        None
                    }
                }
            }
            CmpOp::In => {
                errs.push(
                    RuleError::new(span, "\"in\" needs a set, a list or a multi-valued field")
                        .help(format!("write: in {{ {lit} }}")),
                );
                None
            }
        }
    }

    fn bytes_lit(
        &self,
        lit: &Lit,
        span: Span,
        op: &str,
        errs: &mut Vec<RuleError>,
    ) -> Option<Vec<u8>> {
        match lit {
            Lit::Bytes(b) => Some(b.clone()),
            other => {
                errs.push(
                    RuleError::new(
                        span,
                        format!("\"{op}\" needs a quoted string, found {other}"),
                    )
                    .help(format!("quote it: \"{other}\"")),
                );
                None
            }
        }
    }

    fn set_test(
        &mut self,
        lhs: &Operand,
        ty: Ty,
        items: &[crate::ast::SetItem],
        errs: &mut Vec<RuleError>,
    ) -> Option<Test> {
        let before = errs.len();
        let test = match ty.base {
            Base::Ip => {
                let mut t = IpTable::new();
                for it in items {
                    let parsed = match &it.lit {
                        Lit::Addr(a) => a.parse::<Cidr>().map_err(|e| e.to_string()),
                        other => Err(format!("expected an address or a prefix, found {other}")),
                    };
                    match parsed {
                        Ok(c) => {
                            t.insert(c, ());
                        }
                        Err(m) => errs.push(RuleError::new(it.span, m)),
                    }
                }
                Test::InIp(Arc::new(t))
            }
            Base::Bytes => {
                let mut s = HashSet::new();
                for it in items {
                    if let Some(b) = self.bytes_lit(&it.lit, it.span, "in", errs) {
                        s.insert(b);
                    }
                }
                Test::InBytes(Arc::new(s))
            }
            Base::Int => {
                let mut v = Vec::new();
                for it in items {
                    match it.lit {
                        Lit::Int(i) => v.push(i),
                        ref other => errs.push(RuleError::new(
                            it.span,
                            format!("expected a number, found {other}"),
                        )),
                    }
                }
                v.sort_unstable();
                Test::InInt(v.into_boxed_slice())
            }
            Base::Bool => {
                errs.push(RuleError::new(
                    lhs.span,
                    format!("\"in\" does not apply to \"{lhs}\", which is {ty}"),
                ));
                return None;
            }
        };
        (errs.len() == before).then_some(test)
    }

    /// Converts a literal to a value of type `base`, for a comparison with `other`.
    fn literal(
        &self,
        lit: &Lit,
        base: Base,
        span: Span,
        other: &Operand,
        errs: &mut Vec<RuleError>,
    ) -> Option<Value<'static>> {
        let v = match (base, lit) {
            (Base::Bytes, Lit::Bytes(b)) => Some(Value::Bytes(Cow::Owned(b.clone()))),
            (Base::Int, Lit::Int(i)) => Some(Value::Int(*i)),
            (Base::Bool, Lit::Bool(b)) => Some(Value::Bool(*b)),
            (Base::Ip, Lit::Addr(a)) => match a.parse::<IpAddr>() {
                Ok(ip) => Some(Value::Ip(rampart_core::iptable::canonical(ip))),
                Err(_) => {
                    let mut e = RuleError::new(span, format!("\"{a}\" is not an IP address"));
                    if a.contains('/') {
                        e = e.help(format!("to match a prefix, write: in {{ {a} }}"));
                    }
                    errs.push(e);
                    return None;
                }
            },
            _ => None,
        };
        if v.is_none() {
            let mut e = RuleError::new(
                span,
                format!(
                    "expected {} to compare with \"{other}\", found {lit}",
                    base.as_str()
                ),
            );
            match (base, lit) {
                (Base::Bytes, _) => e = e.help(format!("quote it: \"{lit}\"")),
                (Base::Int, Lit::Bytes(b))
                    if std::str::from_utf8(b).is_ok_and(|t| t.parse::<i64>().is_ok()) =>
                {
                    e = e.help("write the number without quotes");
                }
                _ => {}
            }
            errs.push(e);
        }
        v
    }

    /// Resolves a field or function call (not a literal) to its type and its cache slot.
    fn value(&mut self, o: &Operand, errs: &mut Vec<RuleError>) -> Option<(Ty, usize)> {
        match &o.kind {
            OperandKind::Lit(l) => {
                errs.push(RuleError::new(
                    o.span,
                    format!("expected a field or a function, found the literal {l}"),
                ));
                None
            }
            OperandKind::Field { name, key } => {
                let Some(def) = scheme::field(name) else {
                    let mut e = RuleError::new(o.span, format!("unknown field \"{name}\""));
                    if let Some(n) = nearest(name, FIELDS.iter().map(|f| f.name)) {
                        e = e.help(format!("did you mean \"{n}\"?"));
                    } else if scheme::function(name).is_some() {
                        e = e.help(format!("\"{name}\" is a function: {name}(…)"));
                    }
                    errs.push(e);
                    return None;
                };
                let key = match (def.map, key) {
                    (true, None) => {
                        errs.push(
                            RuleError::new(o.span, format!("\"{name}\" is a map: say which entry"))
                                .help(format!("for example: {name}[\"name\"]")),
                        );
                        return None;
                    }
                    (false, Some(_)) => {
                        errs.push(RuleError::new(
                            o.span,
                            format!("\"{name}\" is not a map and cannot be indexed"),
                        ));
                        return None;
                    }
                    (_, k) => k.clone(),
                };
                let key = match def.id {
                    FieldId::Headers | FieldId::ResponseHeaders => {
                        key.map(|k| k.to_ascii_lowercase())
                    }
                    _ => key,
                };
                if def.id == FieldId::BodyJson {
                    if let Some(k) = &key {
                        if !(k.is_empty() || k.starts_with(b"/")) {
                            errs.push(
                                RuleError::new(o.span, "a JSON pointer starts with \"/\"")
                                    .help("for example: http.request.body.json[\"/user/id\"]"),
                            );
                            return None;
                        }
                    }
                }
                let mut ikey = def.name.to_owned();
                if let Some(k) = &key {
                    ikey.push_str(&format!("[{}]", String::from_utf8_lossy(k)));
                }
                let slot = self.intern(ikey, || SlotDef::Field {
                    id: def.id,
                    key: key.map(Vec::into_boxed_slice),
                });
                Some((def.ty, slot))
            }
            OperandKind::Call { name, args } => {
                let Some(def) = scheme::function(name) else {
                    let mut e = RuleError::new(o.span, format!("unknown function \"{name}\""));
                    if let Some(n) = nearest(name, FUNCTIONS.iter().map(|f| f.name)) {
                        e = e.help(format!("did you mean \"{n}\"?"));
                    }
                    errs.push(e);
                    return None;
                };
                self.call(def, args, o, errs)
            }
        }
    }

    fn call(
        &mut self,
        def: &scheme::FuncDef,
        args: &[Operand],
        o: &Operand,
        errs: &mut Vec<RuleError>,
    ) -> Option<(Ty, usize)> {
        let arity_err = |errs: &mut Vec<RuleError>| {
            errs.push(
                RuleError::new(
                    o.span,
                    format!("wrong number of arguments to \"{}\"", def.name),
                )
                .help(def.signature.to_owned()),
            );
            None
        };
        let (min, max) = match def.id {
            FuncId::StartsWith | FuncId::EndsWith => (2, 2),
            FuncId::UrlDecode => (1, 2),
            FuncId::Concat => (1, 16),
            _ => (1, 1),
        };
        if args.len() < min || args.len() > max {
            return arity_err(errs);
        }
        let mut cargs = Vec::with_capacity(args.len());
        let mut multi = false;
        let mut keys = Vec::new();
        for (i, a) in args.iter().enumerate() {
            let (arg, ty) = match &a.kind {
                OperandKind::Lit(Lit::Bytes(b)) => (
                    Arg::Lit(Value::Bytes(Cow::Owned(b.clone()))),
                    Ty::one(Base::Bytes),
                ),
                OperandKind::Lit(other) => {
                    errs.push(
                        RuleError::new(
                            a.span,
                            format!("\"{}\" takes bytes, found {other}", def.name),
                        )
                        .help(def.signature.to_owned()),
                    );
                    return None;
                }
                _ => {
                    let (ty, slot) = self.value(a, errs)?;
                    (Arg::Slot(slot), ty)
                }
            };
            if ty.base != Base::Bytes {
                errs.push(
                    RuleError::new(
                        a.span,
                        format!("\"{}\" takes bytes, but \"{a}\" is {ty}", def.name),
                    )
                    .help(def.signature.to_owned()),
                );
                return None;
            }
            let literal_only = matches!(
                (def.id, i),
                (FuncId::StartsWith | FuncId::EndsWith | FuncId::UrlDecode, 1)
            );
            if literal_only && !matches!(arg, Arg::Lit(_)) {
                errs.push(
                    RuleError::new(
                        a.span,
                        format!(
                            "the second argument of \"{}\" must be a string literal",
                            def.name
                        ),
                    )
                    .help(def.signature.to_owned()),
                );
                return None;
            }
            if def.id == FuncId::UrlDecode && i == 1 {
                if let Arg::Lit(Value::Bytes(f)) = &arg {
                    if f.iter().any(|&c| c != b'r') {
                        errs.push(RuleError::new(
                            a.span,
                            "the only option of url_decode is \"r\" (decode recursively)",
                        ));
                        return None;
                    }
                }
            }
            if ty.multi {
                if i > 0 || def.id == FuncId::Concat {
                    errs.push(
                        RuleError::new(
                            a.span,
                            format!(
                                "\"{a}\" has several values; \"{}\" takes one here",
                                def.name
                            ),
                        )
                        .help("pick one with any(…) or index a single-valued field"),
                    );
                    return None;
                }
                multi = true;
            }
            keys.push(a.to_string());
            cargs.push(arg);
        }
        let base = match def.id {
            FuncId::Len => Base::Int,
            FuncId::StartsWith | FuncId::EndsWith => Base::Bool,
            _ => Base::Bytes,
        };
        let ikey = format!("{}({})", def.name, keys.join(","));
        let slot = self.intern(ikey, || SlotDef::Call {
            func: def.id,
            args: cargs.into_boxed_slice(),
        });
        Some((Ty { base, multi }, slot))
    }

    fn intern(&mut self, key: String, def: impl FnOnce() -> SlotDef) -> usize {
        if let Some(&i) = self.interned.get(&key) {
            return i;
        }
        self.defs.push(def());
        let i = self.defs.len() - 1;
        self.interned.insert(key, i);
        i
    }
}

/// Returns the phase an expression can first run in: the latest among its fields.
pub fn phase_of(e: &Expr) -> FieldPhase {
    let mut phase = FieldPhase::RequestHead;
    visit_operands(e, &mut |o| {
        if let OperandKind::Field { name, .. } = &o.kind {
            if let Some(f) = scheme::field(name) {
                phase = phase.max(f.phase);
            }
        }
    });
    phase
}

impl RuleSet {
    /// Returns the number of expressions.
    pub fn len(&self) -> usize {
        self.exprs.len()
    }

    /// Returns true if the set has no expression.
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Returns the phase an expression runs in.
    pub fn phase(&self, id: ExprId) -> FieldPhase {
        self.exprs
            .get(id.0)
            .map_or(FieldPhase::RequestHead, |c| c.phase)
    }

    /// Creates the per-request cache for this set.
    pub fn context<'a>(&self, input: Input<'a>) -> Context<'a> {
        Context::new(input, self.defs.len())
    }

    /// Evaluates an expression. The context must come from this set's [`RuleSet::context`]
    /// (a context of another set evaluates every field as absent).
    pub fn eval(&self, id: ExprId, cx: &mut Context<'_>) -> bool {
        match self.exprs.get(id.0) {
            Some(c) => self.node(&c.node, cx),
            None => false,
        }
    }

    fn node(&self, n: &Node, cx: &mut Context<'_>) -> bool {
        match n {
            Node::Const(b) => *b,
            Node::Not(inner) => !self.node(inner, cx),
            Node::And(v) => v.iter().all(|n| self.node(n, cx)),
            Node::Or(v) => v.iter().any(|n| self.node(n, cx)),
            Node::Xor(v) => v.iter().filter(|n| self.node(n, cx)).count() % 2 == 1,
            Node::Test { slot, all, test } => {
                if let Test::Slot(op, rhs) = test {
                    cx.get(&self.defs, *rhs);
                    cx.get(&self.defs, *slot);
                    let (Some(Some(l)), Some(Some(r))) = (cx.slots.get(*slot), cx.slots.get(*rhs))
                    else {
                        return false;
                    };
                    return l.test(*all, |a| r.test(false, |b| compare(*op, a, b)));
                }
                let v = cx.get(&self.defs, *slot);
                v.test(*all, |v| test_one(test, v))
            }
        }
    }
}

fn test_one(test: &Test, v: &Value<'_>) -> bool {
    match test {
        Test::Truthy => matches!(v, Value::Bool(true)),
        Test::Eq(lit) => v == lit,
        Test::Ne(lit) => v != lit,
        Test::Ord(op, lit) => compare(*op, v, lit),
        Test::Contains(f) => v.as_bytes().is_some_and(|b| f.find(b).is_some()),
        Test::Match(m) => v.as_bytes().is_some_and(|b| m.is_match(b)),
        Test::InBytes(s) => v.as_bytes().is_some_and(|b| s.contains(b)),
        Test::InInt(s) => matches!(v, Value::Int(i) if s.binary_search(i).is_ok()),
        Test::InIp(t) => matches!(v, Value::Ip(ip) if t.contains(*ip)),
        Test::Slot(..) => false,
    }
}

fn compare(op: CmpOp, a: &Value<'_>, b: &Value<'_>) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.as_ref().cmp(y.as_ref()),
        (Value::Ip(x), Value::Ip(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => return false,
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        _ => false,
    }
}
