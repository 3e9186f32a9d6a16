//! The parser: tokens to an [`Expr`], within [`Limits`].
//!
//! Precedence, loosest first: `or` (`||`), `xor` (`^^`), `and` (`&&`), `not` (`!`). Then a
//! comparison `operand op rhs`, a boolean operand alone, `any(…)`/`all(…)`, or parentheses.

use crate::ast::{CmpOp, Expr, ExprKind, Lit, Operand, OperandKind, Rhs, SetItem};
use crate::error::{RuleError, Span};
use crate::lex::{lex, Tok};
use crate::scheme;

/// Resource limits, checked when a rule is parsed and compiled, so that no rule from a config
/// file can make the gateway slow or big.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest expression, in bytes. Default: 16 KiB.
    pub max_expression_len: usize,
    /// How deeply parentheses, `not`, `any`/`all` and function calls may nest. Default: 32.
    pub max_nesting_depth: usize,
    /// The most elements in a literal set `{ … }`. Default: 10,000.
    pub max_set_len: usize,
    /// The most bytes a compiled regex may take (the `regex` crate's `size_limit`).
    /// Default: 1 MiB.
    pub regex_size_limit: usize,
    /// The most bytes the lazy DFA of one regex may cache (`dfa_size_limit`). Default: 1 MiB.
    pub regex_dfa_size_limit: usize,
    /// The most `*` in a wildcard pattern. Default: 16.
    pub max_wildcard_stars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_expression_len: 16 * 1024,
            max_nesting_depth: 32,
            max_set_len: 10_000,
            regex_size_limit: 1 << 20,
            regex_dfa_size_limit: 1 << 20,
            max_wildcard_stars: 16,
        }
    }
}

/// Parses an expression. Names are not resolved here (see the `compile` module), except that a
/// dotted key on a map field (`http.request.path_params.id`) becomes an index.
pub fn parse(src: &str, limits: &Limits) -> Result<Expr, RuleError> {
    if src.len() > limits.max_expression_len {
        return Err(RuleError::new(
            Span::new(0, src.len()),
            format!(
                "expression is {} bytes long, more than the limit of {}",
                src.len(),
                limits.max_expression_len
            ),
        ));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        limits,
    };
    if p.peek() == &Tok::Eof {
        return Err(RuleError::new(Span::new(0, src.len()), "empty expression"));
    }
    let e = p.or()?;
    if p.peek() != &Tok::Eof {
        let (t, span) = p.next();
        return Err(RuleError::new(
            span,
            format!("unexpected {} after a complete expression", t.describe()),
        )
        .help("join conditions with \"and\" or \"or\""));
    }
    Ok(e)
}

struct Parser<'l> {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
    limits: &'l Limits,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].0
    }

    fn span(&self) -> Span {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> (Tok, Span) {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, RuleError> {
        if *self.peek() == tok {
            Ok(self.next().1)
        } else {
            let span = self.span();
            Err(RuleError::new(
                span,
                format!("expected {what}, found {}", self.peek().describe()),
            ))
        }
    }

    fn enter(&mut self, span: Span) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > self.limits.max_nesting_depth {
            return Err(RuleError::new(
                span,
                format!(
                    "expression nests more than {} levels deep",
                    self.limits.max_nesting_depth
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn binary(
        &mut self,
        word: &str,
        sym: &Tok,
        next: fn(&mut Self) -> Result<Expr, RuleError>,
        make: fn(Vec<Expr>) -> ExprKind,
    ) -> Result<Expr, RuleError> {
        let first = next(self)?;
        if !(self.is_kw(word) || self.peek() == sym) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.is_kw(word) || self.peek() == sym {
            self.next();
            items.push(next(self)?);
        }
        let span = items[0].span.to(items[items.len() - 1].span);
        Ok(Expr {
            kind: make(items),
            span,
        })
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        self.binary("or", &Tok::OrOr, Self::xor, ExprKind::Or)
    }

    fn xor(&mut self) -> Result<Expr, RuleError> {
        self.binary("xor", &Tok::XorXor, Self::and, ExprKind::Xor)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        self.binary("and", &Tok::AndAnd, Self::unary, ExprKind::And)
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.is_kw("not") || self.peek() == &Tok::Bang {
            let (_, start) = self.next();
            self.enter(start)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Expr {
                span: start.to(inner.span),
                kind: ExprKind::Not(Box::new(inner)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        match self.peek().clone() {
            Tok::LParen => {
                let (_, start) = self.next();
                self.enter(start)?;
                let inner = self.or()?;
                self.leave();
                let end = self.expect(Tok::RParen, "\")\"")?;
                Ok(Expr {
                    kind: inner.kind,
                    span: start.to(end),
                })
            }
            Tok::Ident(name)
                if (name == "any" || name == "all") && self.peek_at(1) == &Tok::LParen =>
            {
                let (_, start) = self.next();
                self.next();
                self.enter(start)?;
                let inner = self.or()?;
                self.leave();
                let end = self.expect(Tok::RParen, "\")\" to close the quantifier")?;
                let b = Box::new(inner);
                Ok(Expr {
                    kind: if name == "any" {
                        ExprKind::Any(b)
                    } else {
                        ExprKind::All(b)
                    },
                    span: start.to(end),
                })
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, RuleError> {
        let lhs = self.operand()?;
        let Some(op) = self.operator()? else {
            return Ok(Expr {
                span: lhs.span,
                kind: ExprKind::Value(lhs),
            });
        };
        let rhs = match (op, self.peek().clone()) {
            (CmpOp::In, Tok::LBrace) => self.set()?,
            (_, Tok::List(name)) => {
                let (_, span) = self.next();
                Rhs::List(name, span)
            }
            _ => Rhs::Operand(self.operand()?),
        };
        let end = match &rhs {
            Rhs::Operand(o) => o.span,
            Rhs::List(_, s) => *s,
            Rhs::Set(items) => items.last().map_or(lhs.span, |i| i.span),
        };
        Ok(Expr {
            span: lhs.span.to(end),
            kind: ExprKind::Compare { lhs, op, rhs },
        })
    }

    fn operator(&mut self) -> Result<Option<CmpOp>, RuleError> {
        let op = match self.peek() {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Tilde => CmpOp::Matches,
            Tok::Ident(s) => match s.as_str() {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                "ge" => CmpOp::Ge,
                "contains" => CmpOp::Contains,
                "matches" => CmpOp::Matches,
                "wildcard" => CmpOp::Wildcard,
                "in" => CmpOp::In,
                "strict" => {
                    let (_, span) = self.next();
                    if !self.is_kw("wildcard") {
                        return Err(RuleError::new(
                            span,
                            "\"strict\" must be followed by \"wildcard\"",
                        ));
                    }
                    CmpOp::StrictWildcard
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(op))
    }

    fn set(&mut self) -> Result<Rhs, RuleError> {
        let (_, open) = self.next();
        let mut items = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::RBrace => {
                    self.next();
                    break;
                }
                Tok::Comma => {
                    self.next();
                }
                Tok::Eof => {
                    return Err(
                        RuleError::new(open, "unclosed \"{\"").help("close the set with \"}\"")
                    )
                }
                _ => {
                    let o = self.operand()?;
                    let OperandKind::Lit(lit) = o.kind else {
                        return Err(RuleError::new(
                            o.span,
                            "a set holds literals only (strings, numbers, addresses)",
                        )
                        .help("to test against a field's values, write \"value in field\""));
                    };
                    items.push(SetItem { lit, span: o.span });
                    if items.len() > self.limits.max_set_len {
                        return Err(RuleError::new(
                            o.span,
                            format!("set has more than {} elements", self.limits.max_set_len),
                        )
                        .help("put long lists in the config's `lists` and use $name"));
                    }
                }
            }
        }
        if items.is_empty() {
            return Err(RuleError::new(open, "empty set"));
        }
        Ok(Rhs::Set(items))
    }

    fn operand(&mut self) -> Result<Operand, RuleError> {
        let (tok, span) = self.next();
        let kind = match tok {
            Tok::Str(s) => OperandKind::Lit(Lit::Bytes(s)),
            Tok::Word(w) => {
                if w.bytes().all(|b| b.is_ascii_digit()) {
                    match w.parse::<i64>() {
                        Ok(i) => OperandKind::Lit(Lit::Int(i)),
                        Err(_) => return Err(RuleError::new(span, "integer is too large")),
                    }
                } else {
                    OperandKind::Lit(Lit::Addr(w))
                }
            }
            Tok::Ident(name) if name == "true" || name == "false" => {
                OperandKind::Lit(Lit::Bool(name == "true"))
            }
            Tok::Ident(name) if self.peek() == &Tok::LParen => {
                self.next();
                self.enter(span)?;
                let mut args = Vec::new();
                if self.peek() != &Tok::RParen {
                    loop {
                        args.push(self.operand()?);
                        if self.peek() == &Tok::Comma {
                            self.next();
                        } else {
                            break;
                        }
                    }
                }
                self.leave();
                let end = self.expect(Tok::RParen, "\",\" or \")\" in the argument list")?;
                return Ok(Operand {
                    kind: OperandKind::Call { name, args },
                    span: span.to(end),
                });
            }
            Tok::Ident(name) => {
                if self.peek() == &Tok::LBracket {
                    self.next();
                    let (key, kspan) = self.next();
                    let Tok::Str(key) = key else {
                        return Err(RuleError::new(
                            kspan,
                            "expected a quoted key, such as [\"name\"]",
                        ));
                    };
                    let end = self.expect(Tok::RBracket, "\"]\"")?;
                    return Ok(Operand {
                        kind: OperandKind::Field {
                            name,
                            key: Some(key),
                        },
                        span: span.to(end),
                    });
                }
                match (scheme::field(&name), scheme::map_field_prefix(&name)) {
                    (None, Some((f, key))) => OperandKind::Field {
                        name: f.name.to_owned(),
                        key: Some(key.as_bytes().to_vec()),
                    },
                    _ => OperandKind::Field { name, key: None },
                }
            }
            other => {
                let err = RuleError::new(
                    span,
                    format!(
                        "expected a field, a function or a value, found {}",
                        other.describe()
                    ),
                );
                return Err(if other == Tok::LBrace {
                    err.help("a set only follows \"in\": field in { … }")
                } else {
                    err
                });
            }
        };
        Ok(Operand { kind, span })
    }
}
