//! The parser: rule files to [`Directive`]s, every problem reported at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::{
    Action, AllowScope, Collection, Ctl, Directive, DirectiveKind, EngineMode, IdRange,
    LimitAction, Operator, OperatorKind, Rule, Selector, SetVar, SetVarOp, Span, Transform,
    Variable,
};
use crate::names::hint;
use crate::source::{logical_lines, split_args, Arg, Logical};

/// A problem in a rule file, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: Arc<str>,
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1.
    pub col: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub help: Option<String>,
    /// The line as written, for the caret.
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.line.to_string();
        let pad = " ".repeat(n.len());
        writeln!(f, "error: {}", self.message)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.col)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{n} | {}", self.source_line)?;
        write!(
            f,
            "{pad} | {}^",
            " ".repeat(self.col.saturating_sub(1) as usize)
        )?;
        if let Some(h) = &self.help {
            write!(f, "\n{pad} = help: {h}")?;
        }
        Ok(())
    }
}

/// What the parser read: the directives in order (those of included files in place), and every
/// problem found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The directives.
    pub directives: Vec<Directive>,
    /// The problems (none means the rule set is usable).
    pub diagnostics: Vec<Diagnostic>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

impl Parsed {
    /// Every rule (`SecRule` with its chain, `SecAction`), in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.directives.iter().filter_map(|d| match &d.kind {
            DirectiveKind::Rule(r) => Some(r),
            _ => None,
        })
    }
}

/// The deepest `Include` nesting allowed.
const MAX_DEPTH: usize = 16;

/// Reads a rule file and the files it includes.
pub fn parse_file(path: &Path) -> Parsed {
    let mut p = Parser::default();
    p.file(path, 0);
    p.finish()
}

/// Reads rule text; `name` is used in diagnostics and `base_dir` resolves `Include`s.
pub fn parse_str(text: &str, name: &str, base_dir: &Path) -> Parsed {
    let mut p = Parser::default();
    p.text(text, Arc::from(name), base_dir, 0);
    p.finish()
}

#[derive(Default)]
struct Parser {
    out: Parsed,
    /// A rule whose last link has `chain`, waiting for the next `SecRule`.
    pending: Option<Rule>,
    stack: Vec<PathBuf>,
}

/// Where a diagnostic points.
struct At<'a> {
    file: &'a Arc<str>,
    line: &'a Logical,
    source: &'a str,
}

impl At<'_> {
    fn diag(&self, offset: usize, message: impl Into<String>, help: Option<String>) -> Diagnostic {
        let (line, col) = self.line.pos(offset);
        Diagnostic {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
            help,
            source_line: self
                .source
                .lines()
                .nth(line.saturating_sub(1) as usize)
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_owned(),
        }
    }

    fn span(&self, offset: usize) -> Span {
        let (line, col) = self.line.pos(offset);
        Span {
            file: self.file.clone(),
            line,
            col,
        }
    }
}

impl Parser {
    fn finish(self) -> Parsed {
        self.out
    }

    fn file(&mut self, path: &Path, depth: usize) {
        let name: Arc<str> = Arc::from(path.display().to_string());
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) {
            self.out.diagnostics.push(file_error(
                &name,
                "this file includes itself (through a chain of Include)",
            ));
            return;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                self.stack.push(canonical);
                self.out.files.push(path.to_path_buf());
                let base = path.parent().unwrap_or(Path::new("."));
                self.text(&text, name, base, depth);
                self.stack.pop();
            }
            Err(e) => self
                .out
                .diagnostics
                .push(file_error(&name, &format!("cannot read the file: {e}"))),
        }
    }

    fn text(&mut self, text: &str, file: Arc<str>, base: &Path, depth: usize) {
        for line in logical_lines(text) {
            let at = At {
                file: &file,
                line: &line,
                source: text,
            };
            let args = match split_args(&line.text) {
                Ok(a) => a,
                Err(offset) => {
                    self.out.diagnostics.push(at.diag(
                        offset,
                        "this quote is never closed",
                        Some("close it, or end the line with `\\` to continue it".into()),
                    ));
                    continue;
                }
            };
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            let directive = name.text.to_ascii_lowercase();
            if directive == "include" {
                self.include(&at, rest, base, depth);
                continue;
            }
            let kind = match self.directive(&at, &directive, name, rest) {
                Ok(Some(k)) => k,
                Ok(None) => continue,
                Err(d) => {
                    self.out.diagnostics.push(d);
                    continue;
                }
            };
            if let Some(pending) = self.pending.take() {
                // The next directive after a `chain` must be a `SecRule`.
                match kind {
                    DirectiveKind::Rule(r) if directive == "secrule" => {
                        let mut head = pending;
                        attach(&mut head, r);
                        if last_link_chains(&head) {
                            self.pending = Some(head);
                        } else {
                            self.out.directives.push(Directive {
                                span: head.span.clone(),
                                kind: DirectiveKind::Rule(head),
                            });
                        }
                        continue;
                    }
                    other => {
                        self.out.diagnostics.push(at.diag(
                            0,
                            "a rule with `chain` must be followed by a `SecRule`",
                            Some(format!(
                                "the chained rule starts at line {}",
                                pending.span.line
                            )),
                        ));
                        self.push(at.span(0), other);
                        continue;
                    }
                }
            }
            match kind {
                DirectiveKind::Rule(r) if last_link_chains(&r) => self.pending = Some(r),
                other => self.push(at.span(0), other),
            }
        }
        // A chain does not continue into another file.
        if let Some(r) = self.pending.take() {
            self.out.diagnostics.push(Diagnostic {
                file: r.span.file.clone(),
                line: r.span.line,
                col: r.span.col,
                message: "the last rule of the file has `chain` but no rule follows it".into(),
                help: Some("remove `chain`, or add the rule it chains to".into()),
                source_line: text
                    .lines()
                    .nth(r.span.line.saturating_sub(1) as usize)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
    }

    fn push(&mut self, span: Span, kind: DirectiveKind) {
        self.out.directives.push(Directive { span, kind });
    }

    fn include(&mut self, at: &At<'_>, rest: &[Arg], base: &Path, depth: usize) {
        let Some(arg) = rest.first() else {
            self.out
                .diagnostics
                .push(at.diag(0, "`Include` needs a path", None));
            return;
        };
        if depth >= MAX_DEPTH {
            self.out.diagnostics.push(at.diag(
                arg.offset,
                format!("`Include` nested deeper than {MAX_DEPTH} files"),
                None,
            ));
            return;
        }
        let pattern = base.join(&arg.text);
        let files = expand_glob(&pattern);
        if files.is_empty() {
            self.out.diagnostics.push(at.diag(
                arg.inner,
                format!("cannot read {}: no file matches", pattern.display()),
                None,
            ));
        }
        for f in files {
            self.file(&f, depth + 1);
        }
    }

    fn directive(
        &mut self,
        at: &At<'_>,
        directive: &str,
        name: &Arg,
        rest: &[Arg],
    ) -> Result<Option<DirectiveKind>, Diagnostic> {
        let arg = |i: usize, what: &str| -> Result<&Arg, Diagnostic> {
            rest.get(i)
                .ok_or_else(|| at.diag(name.offset, format!("`{}` needs {what}", name.text), None))
        };
        let on_off = |a: &Arg| -> Result<bool, Diagnostic> {
            match a.text.to_ascii_lowercase().as_str() {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err(at.diag(a.inner, "expected `On` or `Off`", None)),
            }
        };
        let number = |a: &Arg| -> Result<u64, Diagnostic> {
            a.text
                .parse::<u64>()
                .map_err(|_| at.diag(a.inner, "expected a whole number", None))
        };
        let limit_action = |a: &Arg| -> Result<LimitAction, Diagnostic> {
            match a.text.to_ascii_lowercase().as_str() {
                "reject" => Ok(LimitAction::Reject),
                "processpartial" => Ok(LimitAction::ProcessPartial),
                _ => Err(at.diag(a.inner, "expected `Reject` or `ProcessPartial`", None)),
            }
        };
        Ok(Some(match directive {
            "secrule" => {
                let vars = arg(0, "variables, an operator and actions")?;
                let op = arg(1, "an operator")?;
                let variables = variables(at, &vars.text, vars.inner)?;
                let operator = operator(at, &op.text, op.inner)?;
                let actions = match rest.get(2) {
                    Some(a) => actions(at, &a.text, a.inner)?,
                    None => Vec::new(),
                };
                if rest.len() > 3 {
                    return Err(at.diag(rest[3].offset, "unexpected text after the actions", None));
                }
                DirectiveKind::Rule(Rule {
                    span: at.span(name.offset),
                    variables,
                    operator,
                    actions,
                    chain: None,
                })
            }
            "secaction" => {
                let a = arg(0, "actions")?;
                DirectiveKind::Rule(Rule {
                    span: at.span(name.offset),
                    variables: Vec::new(),
                    operator: Operator {
                        negated: false,
                        kind: OperatorKind::UnconditionalMatch,
                        param: String::new(),
                    },
                    actions: actions(at, &a.text, a.inner)?,
                    chain: None,
                })
            }
            "secmarker" => DirectiveKind::Marker(arg(0, "a name")?.text.clone()),
            "secdefaultaction" => {
                let a = arg(0, "actions")?;
                DirectiveKind::DefaultAction(actions(at, &a.text, a.inner)?)
            }
            "secruleengine" => {
                let a = arg(0, "`On`, `Off` or `DetectionOnly`")?;
                DirectiveKind::RuleEngine(engine_mode(&a.text).ok_or_else(|| {
                    at.diag(a.inner, "expected `On`, `Off` or `DetectionOnly`", None)
                })?)
            }
            "secrequestbodyaccess" => {
                DirectiveKind::RequestBodyAccess(on_off(arg(0, "`On` or `Off`")?)?)
            }
            "secresponsebodyaccess" => {
                DirectiveKind::ResponseBodyAccess(on_off(arg(0, "`On` or `Off`")?)?)
            }
            "secresponsebodymimetype" => DirectiveKind::ResponseBodyMimeType(
                rest.iter()
                    .flat_map(|a| a.text.split_whitespace())
                    .map(str::to_owned)
                    .collect(),
            ),
            "secrequestbodylimit" => DirectiveKind::RequestBodyLimit(number(arg(0, "a size")?)?),
            "secrequestbodynofileslimit" => {
                DirectiveKind::RequestBodyNoFilesLimit(number(arg(0, "a size")?)?)
            }
            "secresponsebodylimit" => DirectiveKind::ResponseBodyLimit(number(arg(0, "a size")?)?),
            "secrequestbodylimitaction" => {
                DirectiveKind::RequestBodyLimitAction(limit_action(arg(0, "an action")?)?)
            }
            "secresponsebodylimitaction" => {
                DirectiveKind::ResponseBodyLimitAction(limit_action(arg(0, "an action")?)?)
            }
            "secruleremovebyid" => {
                if rest.is_empty() {
                    arg(0, "rule ids")?;
                }
                let mut ids = Vec::new();
                for a in rest {
                    ids.extend(id_ranges(at, &a.text, a.inner)?);
                }
                DirectiveKind::RuleRemoveById(ids)
            }
            "secruleremovebytag" => DirectiveKind::RuleRemoveByTag(arg(0, "a tag")?.text.clone()),
            "secruleremovebymsg" => {
                DirectiveKind::RuleRemoveByMsg(arg(0, "a message")?.text.clone())
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" => {
                let target = arg(0, "rules")?;
                let vars = arg(1, "variables")?;
                if let Some(extra) = rest.get(2) {
                    return Err(at.diag(
                        extra.offset,
                        "replacing a rule's variables is not supported",
                        Some("add or exclude variables instead: `!ARGS:foo`".into()),
                    ));
                }
                let variables = variables(at, &vars.text, vars.inner)?;
                if directive == "secruleupdatetargetbyid" {
                    DirectiveKind::RuleUpdateTargetById(
                        id_ranges(at, &target.text, target.inner)?,
                        variables,
                    )
                } else {
                    DirectiveKind::RuleUpdateTargetByTag(target.text.clone(), variables)
                }
            }
            "secruleupdateactionbyid" => {
                let target = arg(0, "a rule id")?;
                let a = arg(1, "actions")?;
                DirectiveKind::RuleUpdateActionById(
                    id_ranges(at, &target.text, target.inner)?,
                    actions(at, &a.text, a.inner)?,
                )
            }
            "seccomponentsignature" => {
                DirectiveKind::ComponentSignature(arg(0, "a signature")?.text.clone())
            }
            "seccollectiontimeout" => DirectiveKind::CollectionTimeout(number(arg(0, "seconds")?)?),
            d if INFORMATIONAL.contains(&d) => DirectiveKind::Informational(
                name.text.clone(),
                rest.iter().map(|a| a.text.clone()).collect(),
            ),
            _ => {
                let known = KNOWN.iter().chain(INFORMATIONAL).copied();
                return Err(at.diag(
                    name.offset,
                    format!("unknown directive `{}`", name.text),
                    hint(&name.text, known.map(display_name)),
                ));
            }
        }))
    }
}

/// The directives that change verdicts (lowercase).
const KNOWN: &[&str] = &[
    "include",
    "secrule",
    "secaction",
    "secmarker",
    "secdefaultaction",
    "secruleengine",
    "secrequestbodyaccess",
    "secresponsebodyaccess",
    "secresponsebodymimetype",
    "secrequestbodylimit",
    "secrequestbodynofileslimit",
    "secresponsebodylimit",
    "secrequestbodylimitaction",
    "secresponsebodylimitaction",
    "secruleremovebyid",
    "secruleremovebytag",
    "secruleremovebymsg",
    "secruleupdatetargetbyid",
    "secruleupdatetargetbytag",
    "secruleupdateactionbyid",
    "seccomponentsignature",
    "seccollectiontimeout",
];

/// Directives about logging, storage and limits of other engines (lowercase): read, kept,
/// without effect on verdicts.
const INFORMATIONAL: &[&str] = &[
    "secauditengine",
    "secauditlog",
    "secauditlog2",
    "secauditlogparts",
    "secauditlogrelevantstatus",
    "secauditlogtype",
    "secauditlogformat",
    "secauditlogstoragedir",
    "secauditlogdirmode",
    "secauditlogfilemode",
    "secdebuglog",
    "secdebugloglevel",
    "sectmpdir",
    "secdatadir",
    "secuploaddir",
    "secuploadkeepfiles",
    "secuploadfilemode",
    "secuploadfilelimit",
    "secargumentseparator",
    "seccookieformat",
    "secunicodemapfile",
    "secpcrematchlimit",
    "secpcrematchlimitrecursion",
    "secserversignature",
    "secstatusengine",
    "sectmpsaveuploadedfiles",
    "secrequestbodyinmemorylimit",
    "secargumentslimit",
    "secrequestbodyjsondepthlimit",
    "secwebappid",
    "secsensorid",
    "sechttpblkey",
    "secgeolookupdb",
    "secremoterules",
    "secremoterulesfailaction",
    "seccookiev0separator",
    "secconnengine",
    "secxmlexternalentity",
];

/// `secruleengine` → `SecRuleEngine`, for hints.
fn display_name(lower: &str) -> &'static str {
    const DISPLAY: &[&str] = &[
        "Include",
        "SecRule",
        "SecAction",
        "SecMarker",
        "SecDefaultAction",
        "SecRuleEngine",
        "SecRequestBodyAccess",
        "SecResponseBodyAccess",
        "SecResponseBodyMimeType",
        "SecRequestBodyLimit",
        "SecRequestBodyNoFilesLimit",
        "SecResponseBodyLimit",
        "SecRequestBodyLimitAction",
        "SecResponseBodyLimitAction",
        "SecRuleRemoveById",
        "SecRuleRemoveByTag",
        "SecRuleRemoveByMsg",
        "SecRuleUpdateTargetById",
        "SecRuleUpdateTargetByTag",
        "SecRuleUpdateActionById",
        "SecComponentSignature",
        "SecCollectionTimeout",
    ];
    DISPLAY
        .iter()
        .find(|d| d.eq_ignore_ascii_case(lower))
        .copied()
        .unwrap_or("SecAuditEngine")
}

fn file_error(file: &Arc<str>, message: &str) -> Diagnostic {
    Diagnostic {
        file: file.clone(),
        line: 1,
        col: 1,
        message: message.to_owned(),
        help: None,
        source_line: String::new(),
    }
}

fn attach(head: &mut Rule, next: Rule) {
    match &mut head.chain {
        Some(c) => attach(c, next),
        None => head.chain = Some(Box::new(next)),
    }
}

fn last_link_chains(rule: &Rule) -> bool {
    let mut cur = rule;
    while let Some(c) = &cur.chain {
        cur = c;
    }
    cur.actions.iter().any(|a| matches!(a, Action::Chain))
}

fn engine_mode(s: &str) -> Option<EngineMode> {
    match s.to_ascii_lowercase().as_str() {
        "on" => Some(EngineMode::On),
        "off" => Some(EngineMode::Off),
        "detectiononly" => Some(EngineMode::DetectionOnly),
        _ => None,
    }
}

/// `942100`, `900000-900999`, or several of them separated by commas or spaces.
fn id_ranges(at: &At<'_>, text: &str, offset: usize) -> Result<Vec<IdRange>, Diagnostic> {
    let mut out = Vec::new();
    let mut pos = 0;
    for part in text.split([',', ' ']) {
        let here = offset + pos;
        pos += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let parse = |s: &str| s.trim().parse::<u32>().ok();
        let range = match part.split_once('-') {
            Some((a, b)) => parse(a)
                .zip(parse(b))
                .map(|(from, to)| IdRange { from, to }),
            None => parse(part).map(|id| IdRange { from: id, to: id }),
        };
        match range {
            Some(r) if r.from <= r.to => out.push(r),
            _ => {
                return Err(at.diag(
                    here,
                    format!("`{part}` is not a rule id or a range of ids (`900000-900999`)"),
                    None,
                ))
            }
        }
    }
    Ok(out)
}

/// A variable list: `ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-/|XML:/*`.
fn variables(at: &At<'_>, text: &str, offset: usize) -> Result<Vec<Variable>, Diagnostic> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i <= b.len() {
        let start = i;
        let mut exclude = false;
        let mut count = false;
        while i < b.len() && (b[i] == b'!' || b[i] == b'&') {
            if b[i] == b'!' {
                exclude = true;
            } else {
                count = true;
            }
            i += 1;
        }
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &text[name_start..i];
        if name.is_empty() {
            return Err(at.diag(
                offset + name_start,
                "expected a variable name",
                Some("variables are separated by `|`: `ARGS|REQUEST_HEADERS`".into()),
            ));
        }
        let Some(collection) = Collection::from_name(name) else {
            return Err(at.diag(
                offset + name_start,
                format!("unknown variable `{name}`"),
                hint(name, Collection::ALL.iter().map(|(n, _)| *n)),
            ));
        };
        let mut selector = None;
        if i < b.len() && b[i] == b':' {
            i += 1;
            let sel_start = i;
            if collection == Collection::Xml {
                // An XPath: up to the next `|`.
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                selector = Some(Selector::Key(text[sel_start..i].to_owned()));
            } else if i < b.len() && b[i] == b'/' {
                // A regular expression up to the `/` that ends the element.
                let mut j = i + 1;
                let mut end = None;
                while j < b.len() {
                    if b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if b[j] == b'/' && (j + 1 == b.len() || b[j + 1] == b'|') {
                        end = Some(j);
                        break;
                    }
                    j += 1;
                }
                let Some(end) = end else {
                    return Err(at.diag(
                        offset + i,
                        "this regular expression selector is not closed by `/`",
                        None,
                    ));
                };
                selector = Some(Selector::Regex(text[i + 1..end].to_owned()));
                i = end + 1;
            } else if i < b.len() && b[i] == b'\'' {
                let close = text[i + 1..].find('\'').map(|k| i + 1 + k);
                let Some(close) = close else {
                    return Err(at.diag(offset + i, "this quote is never closed", None));
                };
                let inner = &text[i + 1..close];
                selector = Some(
                    match inner.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
                        Some(re) => Selector::Regex(re.to_owned()),
                        None => Selector::Key(inner.to_owned()),
                    },
                );
                i = close + 1;
            } else {
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                let key = &text[sel_start..i];
                if key.is_empty() {
                    return Err(at.diag(offset + sel_start, "expected a key after `:`", None));
                }
                selector = Some(Selector::Key(key.to_owned()));
            }
        }
        out.push(Variable {
            exclude,
            count,
            collection,
            selector,
        });
        if i >= b.len() {
            break;
        }
        if b[i] != b'|' {
            return Err(at.diag(
                offset + i,
                format!("unexpected `{}` in the variables", char::from(b[i])),
                Some("variables are separated by `|`".into()),
            ));
        }
        i += 1;
        if i == b.len() {
            return Err(at.diag(offset + start, "a variable list cannot end with `|`", None));
        }
    }
    Ok(out)
}

/// An operator: `@rx …`, `!@eq 0`, or a bare regular expression.
fn operator(at: &At<'_>, text: &str, offset: usize) -> Result<Operator, Diagnostic> {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    let (negated, rest, at_rest) = match trimmed.strip_prefix('!') {
        Some(r) => (true, r.trim_start(), offset + lead + 1),
        None => (false, trimmed, offset + lead),
    };
    let Some(named) = rest.strip_prefix('@') else {
        return Ok(Operator {
            negated,
            kind: OperatorKind::Rx,
            param: rest.to_owned(),
        });
    };
    let name_len = named.find(char::is_whitespace).unwrap_or(named.len());
    let name = &named[..name_len];
    let Some(kind) = OperatorKind::from_name(name) else {
        return Err(at.diag(
            at_rest,
            format!("unknown operator `@{name}`"),
            hint(name, OperatorKind::ALL.iter().map(|(n, _)| *n)),
        ));
    };
    let param = named[name_len..].trim_start().to_owned();
    Ok(Operator {
        negated,
        kind,
        param,
    })
}

/// Splits an action list at commas outside single quotes; returns (text, offset) pairs.
fn split_actions(text: &str) -> Result<Vec<(String, usize)>, usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut cur_start = None;
    let mut i = 0;
    let mut quote_at = None;
    while i < b.len() {
        let c = b[i];
        match quote_at {
            Some(_) => {
                if c == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    cur.push(b'\\');
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    quote_at = None;
                }
                cur.push(c);
            }
            None => {
                if c == b',' {
                    if let Some(s) = cur_start.take() {
                        out.push((String::from_utf8_lossy(&cur).trim().to_owned(), s));
                    }
                    cur.clear();
                    i += 1;
                    continue;
                }
                if c == b'\'' {
                    quote_at = Some(i);
                }
                if cur_start.is_none() {
                    if c.is_ascii_whitespace() {
                        i += 1;
                        continue;
                    }
                    cur_start = Some(i);
                }
                cur.push(c);
            }
        }
        i += 1;
    }
    if let Some(q) = quote_at {
        return Err(q);
    }
    if let Some(s) = cur_start {
        out.push((String::from_utf8_lossy(&cur).trim().to_owned(), s));
    }
    Ok(out)
}

/// The action names (for hints).
const ACTION_NAMES: &[&str] = &[
    "id",
    "phase",
    "chain",
    "block",
    "deny",
    "drop",
    "pass",
    "allow",
    "redirect",
    "status",
    "msg",
    "logdata",
    "tag",
    "severity",
    "ver",
    "rev",
    "maturity",
    "accuracy",
    "capture",
    "setvar",
    "expirevar",
    "initcol",
    "setenv",
    "skip",
    "skipAfter",
    "ctl",
    "t",
    "multiMatch",
    "log",
    "nolog",
    "auditlog",
    "noauditlog",
];

/// An action list: `id:1,phase:2,deny,msg:'…',t:none,setvar:'tx.x=+1'`.
fn actions(at: &At<'_>, text: &str, offset: usize) -> Result<Vec<Action>, Diagnostic> {
    let parts =
        split_actions(text).map_err(|q| at.diag(offset + q, "this quote is never closed", None))?;
    let mut out = Vec::new();
    for (part, start) in parts {
        let here = offset + start;
        let (name, value) = match part.split_once(':') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (part.as_str(), None),
        };
        let value_at = here + name.len() + 1;
        let need = |what: &str| -> Result<String, Diagnostic> {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| at.diag(here, format!("`{name}` needs {what}: `{name}:…`"), None))
        };
        let num = |what: &str| -> Result<u64, Diagnostic> {
            let v = need(what)?;
            v.parse::<u64>()
                .map_err(|_| at.diag(value_at, format!("`{name}` takes {what}"), None))
        };
        let lower = name.to_ascii_lowercase();
        let action = match lower.as_str() {
            "id" => {
                let id = num("a number")?;
                match u32::try_from(id) {
                    Ok(id) if id > 0 => Action::Id(id),
                    _ => return Err(at.diag(value_at, "a rule id is a number from 1", None)),
                }
            }
            "phase" => {
                let v = need("a phase")?;
                Action::Phase(match v.to_ascii_lowercase().as_str() {
                    "1" => 1,
                    "2" | "request" => 2,
                    "3" => 3,
                    "4" | "response" => 4,
                    "5" | "logging" => 5,
                    _ => {
                        return Err(at.diag(
                            value_at,
                            "a phase is 1 to 5 (or `request`, `response`, `logging`)",
                            None,
                        ))
                    }
                })
            }
            "chain" => Action::Chain,
            "block" => Action::Block,
            "deny" => Action::Deny,
            "drop" => Action::Drop,
            "pass" => Action::Pass,
            "allow" => Action::Allow(
                match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("") => AllowScope::All,
                    Some("phase") => AllowScope::Phase,
                    Some("request") => AllowScope::Request,
                    Some(_) => {
                        return Err(at.diag(value_at, "`allow` takes `phase` or `request`", None))
                    }
                },
            ),
            "redirect" => Action::Redirect(need("a URL")?),
            "status" => {
                let s = num("an HTTP status")?;
                match u16::try_from(s) {
                    Ok(s) if (100..=599).contains(&s) => Action::Status(s),
                    _ => return Err(at.diag(value_at, "an HTTP status is 100 to 599", None)),
                }
            }
            "msg" => Action::Msg(value.unwrap_or_default()),
            "logdata" => Action::LogData(value.unwrap_or_default()),
            "tag" => Action::Tag(need("a tag")?),
            "severity" => {
                let v = need("a severity")?;
                let levels = [
                    "EMERGENCY",
                    "ALERT",
                    "CRITICAL",
                    "ERROR",
                    "WARNING",
                    "NOTICE",
                    "INFO",
                    "DEBUG",
                ];
                let level = v.parse::<u8>().ok().filter(|n| *n <= 7).or_else(|| {
                    levels
                        .iter()
                        .position(|l| l.eq_ignore_ascii_case(&v))
                        .map(|p| p as u8)
                });
                match level {
                    Some(l) => Action::Severity(l),
                    None => {
                        return Err(at.diag(
                            value_at,
                            "a severity is 0 to 7 or EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG",
                            None,
                        ))
                    }
                }
            }
            "ver" => Action::Ver(value.unwrap_or_default()),
            "rev" => Action::Rev(value.unwrap_or_default()),
            "maturity" => Action::Maturity(u8::try_from(num("a number")?).unwrap_or(u8::MAX)),
            "accuracy" => Action::Accuracy(u8::try_from(num("a number")?).unwrap_or(u8::MAX)),
            "capture" => Action::Capture,
            "setvar" => Action::SetVar(setvar(at, &need("a variable")?, value_at)?),
            "expirevar" => {
                let v = need("a variable and seconds")?;
                let (k, secs) = v.split_once('=').unwrap_or((v.as_str(), "0"));
                Action::ExpireVar(k.to_owned(), secs.to_owned())
            }
            "initcol" => {
                let v = need("a collection and a key")?;
                let Some((c, key)) = v.split_once('=') else {
                    return Err(at.diag(
                        value_at,
                        "`initcol` is `initcol:ip=%{REMOTE_ADDR}`",
                        None,
                    ));
                };
                match Collection::from_name(c) {
                    Some(col) => Action::InitCol(col, key.to_owned()),
                    None => {
                        return Err(at.diag(value_at, format!("unknown collection `{c}`"), None))
                    }
                }
            }
            "setenv" => Action::SetEnv(need("a variable")?),
            "skip" => Action::Skip(u32::try_from(num("a number of rules")?).unwrap_or(u32::MAX)),
            "skipafter" => Action::SkipAfter(need("a marker")?),
            "ctl" => Action::Ctl(ctl(at, &need("a setting")?, value_at)?),
            "t" => {
                let v = need("a transformation")?;
                match Transform::from_name(&v) {
                    Some(t) => Action::T(t),
                    None => {
                        return Err(at.diag(
                            value_at,
                            format!("unknown transformation `{v}`"),
                            hint(&v, Transform::ALL.iter().map(|(n, _)| *n)),
                        ))
                    }
                }
            }
            "multimatch" => Action::MultiMatch,
            "log" => Action::Log,
            "nolog" => Action::NoLog,
            "auditlog" => Action::AuditLog,
            "noauditlog" => Action::NoAuditLog,
            _ => {
                return Err(at.diag(
                    here,
                    format!("unknown action `{name}`"),
                    hint(name, ACTION_NAMES.iter().copied()),
                ))
            }
        };
        out.push(action);
    }
    Ok(out)
}

/// `'text'` to `text`, with `\'` to `'`.
fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.replace("\\'", "'"),
        None => v.to_owned(),
    }
}

/// `tx.score=+%{tx.critical_anomaly_score}`, `!tx.x`, `tx.flag`.
fn setvar(at: &At<'_>, v: &str, offset: usize) -> Result<SetVar, Diagnostic> {
    let (delete, v) = match v.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (target, value) = match v.split_once('=') {
        Some((t, val)) => (t, Some(val)),
        None => (v, None),
    };
    let Some((col, key)) = target.split_once('.') else {
        return Err(at.diag(
            offset,
            format!("`setvar:{v}` needs a collection: `tx.name`"),
            None,
        ));
    };
    let Some(collection) = Collection::from_name(col) else {
        return Err(at.diag(offset, format!("unknown collection `{col}`"), None));
    };
    let op = if delete {
        SetVarOp::Delete
    } else {
        match value {
            None => SetVarOp::Set("1".into()),
            Some(val) => match (val.strip_prefix('+'), val.strip_prefix('-')) {
                (Some(n), _) => SetVarOp::Add(n.to_owned()),
                (_, Some(n)) => SetVarOp::Sub(n.to_owned()),
                _ => SetVarOp::Set(val.to_owned()),
            },
        }
    };
    Ok(SetVar {
        collection,
        key: key.to_owned(),
        op,
    })
}

/// `ctl:ruleRemoveTargetById=942100;ARGS:foo` and the other settings.
fn ctl(at: &At<'_>, v: &str, offset: usize) -> Result<Ctl, Diagnostic> {
    let Some((name, value)) = v.split_once('=') else {
        return Err(at.diag(offset, "`ctl` is `ctl:setting=value`", None));
    };
    let value_at = offset + name.len() + 1;
    let on_off = |s: &str| match s.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(at.diag(value_at, "expected `On` or `Off`", None)),
    };
    let target = |s: &str| -> Result<(String, Vec<Variable>), Diagnostic> {
        let Some((what, vars)) = s.split_once(';') else {
            return Err(at.diag(value_at, "expected `rule;VARIABLE`", None));
        };
        let vars_at = value_at + what.len() + 1;
        Ok((what.to_owned(), variables(at, vars, vars_at)?))
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "ruleengine" => {
            Ctl::RuleEngine(engine_mode(value).ok_or_else(|| {
                at.diag(value_at, "expected `On`, `Off` or `DetectionOnly`", None)
            })?)
        }
        "ruleremovebyid" => Ctl::RuleRemoveById(id_ranges(at, value, value_at)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_owned()),
        "ruleremovetargetbyid" => {
            let (ids, vars) = target(value)?;
            Ctl::RuleRemoveTargetById(id_ranges(at, &ids, value_at)?, vars)
        }
        "ruleremovetargetbytag" => {
            let (tag, vars) = target(value)?;
            Ctl::RuleRemoveTargetByTag(tag, vars)
        }
        "requestbodyprocessor" => {
            let p = value.to_ascii_uppercase();
            if !["URLENCODED", "MULTIPART", "JSON", "XML"].contains(&p.as_str()) {
                return Err(at.diag(
                    value_at,
                    "a body processor is URLENCODED, MULTIPART, JSON or XML",
                    None,
                ));
            }
            Ctl::RequestBodyProcessor(p)
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(value)?),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(value)?),
        "auditengine" => Ctl::AuditEngine(value.to_owned()),
        "auditlogparts" => Ctl::AuditLogParts(value.to_owned()),
        _ => {
            return Err(at.diag(
                offset,
                format!("unknown `ctl` setting `{name}`"),
                hint(
                    name,
                    [
                        "ruleEngine",
                        "ruleRemoveById",
                        "ruleRemoveByTag",
                        "ruleRemoveTargetById",
                        "ruleRemoveTargetByTag",
                        "requestBodyProcessor",
                        "requestBodyAccess",
                        "forceRequestBodyVariable",
                        "auditEngine",
                        "auditLogParts",
                    ],
                ),
            ))
        }
    })
}

/// The files a path matches: `*` and `?` in its last component, sorted by name.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| wildcard(name.as_bytes(), n.to_string_lossy().as_bytes()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `*` and `?` over bytes.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}
