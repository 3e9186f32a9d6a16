//! The syntax tree, its printer (which [`crate::parse`] reads back to the same tree), and a
//! visitor.
//!
//! Equality ignores spans, so that `parse(print(ast)) == ast` can be checked.

use std::fmt;

use crate::error::Span;

/// A boolean expression.
#[derive(Clone, Debug)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

/// The kinds of boolean expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `a or b or …`
    Or(Vec<Expr>),
    /// `a xor b xor …`
    Xor(Vec<Expr>),
    /// `a and b and …`
    And(Vec<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `any(comparison)`: true when some value of a multi-valued operand satisfies it.
    Any(Box<Expr>),
    /// `all(comparison)`: true when there are values and every one satisfies it.
    All(Box<Expr>),
    /// `lhs op rhs`
    Compare {
        /// The left side.
        lhs: Operand,
        /// The operator.
        op: CmpOp,
        /// The right side.
        rhs: Rhs,
    },
    /// A boolean operand on its own: `tls.client.verified`, `starts_with(…)`.
    Value(Operand),
}

/// A value: a field, a function call or a literal.
#[derive(Clone, Debug)]
pub struct Operand {
    /// What it is.
    pub kind: OperandKind,
    /// Where it is.
    pub span: Span,
}

impl PartialEq for Operand {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

/// The kinds of operand.
#[derive(Clone, Debug, PartialEq)]
pub enum OperandKind {
    /// A field, indexed for maps: `http.request.headers["accept"]`.
    Field {
        /// The field's name.
        name: String,
        /// The index, for map fields.
        key: Option<Vec<u8>>,
    },
    /// A function call.
    Call {
        /// The function's name.
        name: String,
        /// The arguments.
        args: Vec<Operand>,
    },
    /// A literal.
    Lit(Lit),
}

/// A literal value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lit {
    /// A string.
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// An address or prefix, as written (`10.0.0.0/8`); checked against its use.
    Addr(String),
    /// `true` or `false`.
    Bool(bool),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==` or `eq`
    Eq,
    /// `!=` or `ne`
    Ne,
    /// `<` or `lt`
    Lt,
    /// `<=` or `le`
    Le,
    /// `>` or `gt`
    Gt,
    /// `>=` or `ge`
    Ge,
    /// `contains`
    Contains,
    /// `matches` or `~`
    Matches,
    /// `wildcard` (case-insensitive)
    Wildcard,
    /// `strict wildcard` (case-sensitive)
    StrictWildcard,
    /// `in`
    In,
}

impl CmpOp {
    /// Returns the operator as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Contains => "contains",
            Self::Matches => "matches",
            Self::Wildcard => "wildcard",
            Self::StrictWildcard => "strict wildcard",
            Self::In => "in",
        }
    }
}

/// The right side of a comparison.
#[derive(Clone, Debug)]
pub enum Rhs {
    /// A value.
    Operand(Operand),
    /// A literal set: `{ "GET" "HEAD" }`, `{ 10.0.0.0/8 192.0.2.1 }`.
    Set(Vec<SetItem>),
    /// A named list of the config: `$office`.
    List(String, Span),
}

impl PartialEq for Rhs {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Operand(a), Self::Operand(b)) => a == b,
            (Self::Set(a), Self::Set(b)) => a == b,
            (Self::List(a, _), Self::List(b, _)) => a == b,
            _ => false,
        }
    }
}

/// One element of a literal set.
#[derive(Clone, Debug)]
pub struct SetItem {
    /// The literal.
    pub lit: Lit,
    /// Where it is.
    pub span: Span,
}

impl PartialEq for SetItem {
    fn eq(&self, other: &Self) -> bool {
        self.lit == other.lit
    }
}

/// Calls `f` on every operand of `expr`, outermost first, including function arguments.
pub fn visit_operands(expr: &Expr, f: &mut impl FnMut(&Operand)) {
    fn operand(o: &Operand, f: &mut impl FnMut(&Operand)) {
        f(o);
        if let OperandKind::Call { args, .. } = &o.kind {
            for a in args {
                operand(a, f);
            }
        }
    }
    match &expr.kind {
        ExprKind::Or(v) | ExprKind::Xor(v) | ExprKind::And(v) => {
            for e in v {
                visit_operands(e, f);
            }
        }
        ExprKind::Not(e) | ExprKind::Any(e) | ExprKind::All(e) => visit_operands(e, f),
        ExprKind::Compare { lhs, rhs, .. } => {
            operand(lhs, f);
            if let Rhs::Operand(r) = rhs {
                operand(r, f);
            }
        }
        ExprKind::Value(o) => operand(o, f),
    }
}

/// Writes a string literal so that the lexer reads back the same bytes.
pub(crate) fn write_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &c in b {
        match c {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", c as char)?,
            _ => write!(f, "\\x{c:02x}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bytes(b) => write_bytes(f, b),
            Self::Int(i) => write!(f, "{i}"),
            Self::Addr(a) => f.write_str(a),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            OperandKind::Field { name, key } => {
                f.write_str(name)?;
                if let Some(k) = key {
                    f.write_str("[")?;
                    write_bytes(f, k)?;
                    f.write_str("]")?;
                }
                Ok(())
            }
            OperandKind::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            OperandKind::Lit(l) => write!(f, "{l}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn child(f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
            if matches!(
                e.kind,
                ExprKind::Or(_) | ExprKind::Xor(_) | ExprKind::And(_)
            ) {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        fn list(f: &mut fmt::Formatter<'_>, v: &[Expr], sep: &str) -> fmt::Result {
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                child(f, e)?;
            }
            Ok(())
        }
        match &self.kind {
            ExprKind::Or(v) => list(f, v, " or "),
            ExprKind::Xor(v) => list(f, v, " xor "),
            ExprKind::And(v) => list(f, v, " and "),
            ExprKind::Not(e) => {
                f.write_str("not ")?;
                child(f, e)
            }
            ExprKind::Any(e) => write!(f, "any({e})"),
            ExprKind::All(e) => write!(f, "all({e})"),
            ExprKind::Compare { lhs, op, rhs } => {
                write!(f, "{lhs} {} ", op.as_str())?;
                match rhs {
                    Rhs::Operand(o) => write!(f, "{o}"),
                    Rhs::List(name, _) => write!(f, "${name}"),
                    Rhs::Set(items) => {
                        f.write_str("{")?;
                        for (i, it) in items.iter().enumerate() {
                            if i > 0 {
                                f.write_str(" ")?;
                            }
                            write!(f, "{}", it.lit)?;
                        }
                        f.write_str("}")
                    }
                }
            }
            ExprKind::Value(o) => write!(f, "{o}"),
        }
    }
}
