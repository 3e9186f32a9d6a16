//! The round-trip property: printing a syntax tree and parsing the text gives the same tree,
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! checked on every expression of the tables and on thousands of random trees.

use rampart_rules::ast::{CmpOp, Expr, ExprKind, Lit, Operand, OperandKind, Rhs, SetItem};
use rampart_rules::scheme::{FIELDS, FUNCTIONS};
use rampart_rules::{parse, Limits, Span};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn bytes(r: &mut Rng) -> Vec<u8> {
    let n = r.below(6);
    (0..n)
        .map(|_| {
            *r.pick(&[
                b'a', b'Z', b'"', b'\\', b'\n', b'\t', 0, 0xff, b' ', b'*', b'{',
            ])
        })
        .collect()
}

fn lit(r: &mut Rng) -> Lit {
    match r.below(4) {
        0 => Lit::Bytes(bytes(r)),
        1 => Lit::Int(r.below(100_000) as i64),
        2 => Lit::Addr(
            (*r.pick(&["10.0.0.0/8", "::1", "fe80::1", "2001:db8::/32", "192.0.2.1"])).to_owned(),
        ),
        _ => Lit::Bool(r.below(2) == 0),
    }
}

fn operand(r: &mut Rng, depth: usize) -> Operand {
    let kind = match r.below(if depth == 0 { 2 } else { 3 }) {
        0 => {
            let f = r.pick(FIELDS);
            OperandKind::Field {
                name: f.name.to_owned(),
                key: f.map.then(|| bytes(r)),
            }
        }
        1 => OperandKind::Lit(lit(r)),
        _ => OperandKind::Call {
            name: r.pick(FUNCTIONS).name.to_owned(),
            args: (0..1 + r.below(3)).map(|_| operand(r, depth - 1)).collect(),
        },
    };
    Operand {
        kind,
        span: Span::default(),
    }
}

fn expr(r: &mut Rng, depth: usize) -> Expr {
    let kind = match r.below(if depth == 0 { 2 } else { 7 }) {
        0 => {
            let op = *r.pick(&[
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
                CmpOp::Contains,
                CmpOp::Matches,
                CmpOp::Wildcard,
                CmpOp::StrictWildcard,
                CmpOp::In,
            ]);
            let rhs = match (op, r.below(3)) {
                (CmpOp::In, 0) => Rhs::Set(
                    (0..1 + r.below(3))
                        .map(|_| SetItem {
                            lit: lit(r),
                            span: Span::default(),
                        })
                        .collect(),
                ),
                (CmpOp::In, 1) => Rhs::List("office".to_owned(), Span::default()),
                _ => Rhs::Operand(operand(r, 1)),
            };
            ExprKind::Compare {
                lhs: operand(r, 2),
                op,
                rhs,
            }
        }
        1 => ExprKind::Value(operand(r, 2)),
        2 => ExprKind::Not(Box::new(expr(r, depth - 1))),
        3 => ExprKind::Any(Box::new(expr(r, depth - 1))),
        4 => ExprKind::Or((0..2 + r.below(2)).map(|_| expr(r, depth - 1)).collect()),
        5 => ExprKind::And((0..2 + r.below(2)).map(|_| expr(r, depth - 1)).collect()),
        _ => ExprKind::Xor((0..2 + r.below(2)).map(|_| expr(r, depth - 1)).collect()),
    };
    Expr {
        kind,
        span: Span::default(),
    }
}

#[test]
fn random_trees_round_trip() {
    let limits = Limits::default();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..5000 {
        let ast = expr(&mut r, 4);
        let text = ast.to_string();
        let back =
            parse(&text, &limits).unwrap_or_else(|e| panic!("#{i}: {text}\n{}", e.render(&text)));
        assert_eq!(back, ast, "#{i}: {text}");
        assert_eq!(back.to_string(), text, "#{i}: printing is not a fixpoint");
    }
}

#[test]
fn table_expressions_round_trip() {
    let limits = Limits::default();
    let mut n = 0;
    for file in ["operators.json", "functions.json"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(file);
        let table: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        for case in table["cases"].as_array().expect("cases") {
            let src = case["expr"].as_str().expect("expr");
            if let Ok(ast) = parse(src, &limits) {
                let printed = ast.to_string();
                assert_eq!(
                    parse(&printed, &limits).expect("reparse"),
                    ast,
                    "{src} -> {printed}"
                );
                n += 1;
            }
        }
    }
    assert!(n > 100);
}
