//! The syntax tree of a SecLang rule set: what the parser produces and the compiler reads.

use std::sync::Arc;

/// Where something was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The file (as given to the parser, or as resolved from an `Include`).
    pub file: Arc<str>,
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1, in characters.
    pub col: u32,
}

/// One directive of a rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct Directive {
    /// Where it starts.
    pub span: Span,
    /// What it says.
    pub kind: DirectiveKind,
}

/// The directives Rampart reads (those CRS v4 and typical exclusion files use).
#[derive(Clone, Debug, PartialEq)]
pub enum DirectiveKind {
    /// `SecRule` (with its chained rules) or `SecAction` (a rule without variables that always
    /// matches).
    Rule(Rule),
    /// `SecMarker`: a target for `skipAfter`.
    Marker(String),
    /// `SecDefaultAction`: the actions every rule of a phase starts from.
    DefaultAction(Vec<Action>),
    /// `SecRuleEngine`.
    RuleEngine(EngineMode),
    /// `SecRequestBodyAccess`.
    RequestBodyAccess(bool),
    /// `SecResponseBodyAccess`.
    ResponseBodyAccess(bool),
    /// `SecResponseBodyMimeType`: the media types whose response bodies are inspected.
    ResponseBodyMimeType(Vec<String>),
    /// `SecRequestBodyLimit`.
    RequestBodyLimit(u64),
    /// `SecRequestBodyNoFilesLimit`.
    RequestBodyNoFilesLimit(u64),
    /// `SecRequestBodyLimitAction`.
    RequestBodyLimitAction(LimitAction),
    /// `SecResponseBodyLimit`.
    ResponseBodyLimit(u64),
    /// `SecResponseBodyLimitAction`.
    ResponseBodyLimitAction(LimitAction),
    /// `SecRuleRemoveById`: ids and ranges.
    RuleRemoveById(Vec<IdRange>),
    /// `SecRuleRemoveByTag`: a tag (a regular expression in ModSecurity; matched as Coraza does).
    RuleRemoveByTag(String),
    /// `SecRuleRemoveByMsg`.
    RuleRemoveByMsg(String),
    /// `SecRuleUpdateTargetById`: variables added to (or, negated, removed from) rules.
    RuleUpdateTargetById(Vec<IdRange>, Vec<Variable>),
    /// `SecRuleUpdateTargetByTag`.
    RuleUpdateTargetByTag(String, Vec<Variable>),
    /// `SecRuleUpdateActionById`.
    RuleUpdateActionById(Vec<IdRange>, Vec<Action>),
    /// `SecComponentSignature`.
    ComponentSignature(String),
    /// `SecCollectionTimeout`, in seconds.
    CollectionTimeout(u64),
    /// A directive about logging or storage that does not change verdicts (`SecAuditEngine`,
    /// `SecAuditLog…`, `SecDebugLog…`, `SecTmpDir`, `SecDataDir`, `SecArgumentSeparator`,
    /// `SecUnicodeMapFile`, `SecPcreMatchLimit…`, `SecServerSignature`, `SecStatusEngine`…):
    /// kept, named, so that reports can say what was read and not applied.
    Informational(String, Vec<String>),
}

/// `SecRuleEngine` and `ctl:ruleEngine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineMode {
    /// Rules run and disruptive actions apply.
    On,
    /// Rules do not run.
    Off,
    /// Rules run; disruptive actions are only recorded.
    DetectionOnly,
}

/// What happens to a body over its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitAction {
    /// Refused.
    Reject,
    /// Inspected up to the limit.
    ProcessPartial,
}

/// A rule id or an inclusive range of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// The first id.
    pub from: u32,
    /// The last id.
    pub to: u32,
}

impl IdRange {
    /// Whether `id` is in the range.
    pub fn contains(&self, id: u32) -> bool {
        (self.from..=self.to).contains(&id)
    }
}

/// A rule: variables, an operator, actions, and the rule chained to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Where the rule starts.
    pub span: Span,
    /// What it inspects (empty for `SecAction`).
    pub variables: Vec<Variable>,
    /// How it tests each value.
    pub operator: Operator,
    /// What it does.
    pub actions: Vec<Action>,
    /// The next rule of a chain (`chain` in the actions).
    pub chain: Option<Box<Rule>>,
}

impl Rule {
    /// The rule's `id`, if it has one (chained rules do not).
    pub fn id(&self) -> Option<u32> {
        self.actions.iter().find_map(|a| match a {
            Action::Id(id) => Some(*id),
            _ => None,
        })
    }

    /// The rule's tags.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match a {
            Action::Tag(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

/// One element of a rule's variable list: `ARGS`, `!ARGS:foo`, `&ARGS`, `ARGS:/^id_/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// `!`: an exclusion from the list.
    pub exclude: bool,
    /// `&`: the number of values rather than the values.
    pub count: bool,
    /// The collection or single variable.
    pub collection: Collection,
    /// The key, or the regular expression keys must match.
    pub selector: Option<Selector>,
}

/// The part after the colon of `ARGS:foo` or `ARGS:/^foo/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// A key, compared without case for headers (as ModSecurity does).
    Key(String),
    /// A regular expression over keys.
    Regex(String),
}

/// An operator: `@rx …`, `!@eq 0`; a rule without `@` means `@rx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// `!@…`: the match is inverted.
    pub negated: bool,
    /// Which operator.
    pub kind: OperatorKind,
    /// Its parameter, macros (`%{TX.x}`) unexpanded.
    pub param: String,
}

macro_rules! names {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }

        impl $name {
            /// Every name, as written in rules.
            pub const ALL: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),*];

            /// The name as written in rules.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// The value of a name (any case).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| *v)
            }
        }
    };
}

names! {
    /// The collections and single variables of a transaction.
    Collection {
        /// Every argument: query string and body.
        Args = "ARGS",
        /// Query string arguments.
        ArgsGet = "ARGS_GET",
        /// Body arguments.
        ArgsPost = "ARGS_POST",
        /// Argument names.
        ArgsNames = "ARGS_NAMES",
        /// Query string argument names.
        ArgsGetNames = "ARGS_GET_NAMES",
        /// Body argument names.
        ArgsPostNames = "ARGS_POST_NAMES",
        /// The total length of arguments.
        ArgsCombinedSize = "ARGS_COMBINED_SIZE",
        /// Request headers.
        RequestHeaders = "REQUEST_HEADERS",
        /// Request header names.
        RequestHeadersNames = "REQUEST_HEADERS_NAMES",
        /// Request cookies.
        RequestCookies = "REQUEST_COOKIES",
        /// Request cookie names.
        RequestCookiesNames = "REQUEST_COOKIES_NAMES",
        /// The request URI, decoded.
        RequestUri = "REQUEST_URI",
        /// The request URI as sent.
        RequestUriRaw = "REQUEST_URI_RAW",
        /// The path.
        RequestFilename = "REQUEST_FILENAME",
        /// The last segment of the path.
        RequestBasename = "REQUEST_BASENAME",
        /// The request line.
        RequestLine = "REQUEST_LINE",
        /// The method.
        RequestMethod = "REQUEST_METHOD",
        /// The protocol (`HTTP/1.1`).
        RequestProtocol = "REQUEST_PROTOCOL",
        /// The query string.
        QueryString = "QUERY_STRING",
        /// The request body.
        RequestBody = "REQUEST_BODY",
        /// The request body's length.
        RequestBodyLength = "REQUEST_BODY_LENGTH",
        /// Uploaded files' names.
        Files = "FILES",
        /// Uploaded files' field names.
        FilesNames = "FILES_NAMES",
        /// Uploaded files' sizes.
        FilesSizes = "FILES_SIZES",
        /// The total size of uploaded files.
        FilesCombinedSize = "FILES_COMBINED_SIZE",
        /// Uploaded files' temporary names (never on disk here: empty).
        FilesTmpNames = "FILES_TMPNAMES",
        /// Multipart part headers.
        MultipartPartHeaders = "MULTIPART_PART_HEADERS",
        /// Any multipart parsing anomaly.
        MultipartStrictError = "MULTIPART_STRICT_ERROR",
        /// A boundary seen where it should not be.
        MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY",
        /// Multipart filename.
        MultipartFilename = "MULTIPART_FILENAME",
        /// Multipart name.
        MultipartName = "MULTIPART_NAME",
        /// Multipart: a boundary with quotes.
        MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED",
        /// Multipart: whitespace in the boundary.
        MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE",
        /// Multipart: data before the first part.
        MultipartDataBefore = "MULTIPART_DATA_BEFORE",
        /// Multipart: data after the last part.
        MultipartDataAfter = "MULTIPART_DATA_AFTER",
        /// Multipart: a header folded.
        MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING",
        /// Multipart: a line ended by LF only.
        MultipartLfLine = "MULTIPART_LF_LINE",
        /// Multipart: a missing semicolon.
        MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON",
        /// Multipart: an invalid quoting.
        MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING",
        /// Multipart: an invalid part.
        MultipartInvalidPart = "MULTIPART_INVALID_PART",
        /// Multipart: an invalid header folding.
        MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING",
        /// Multipart: file limit exceeded.
        MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED",
        /// Multipart: CRLF/LF line ends mixed.
        MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES",
        /// XML by XPath (`XML:/*`).
        Xml = "XML",
        /// Whether the request body failed to parse.
        ReqbodyError = "REQBODY_ERROR",
        /// The body parser's message.
        ReqbodyErrorMsg = "REQBODY_ERROR_MSG",
        /// The body processor in use.
        ReqbodyProcessor = "REQBODY_PROCESSOR",
        /// The transaction's variables.
        Tx = "TX",
        /// Per-address persistent variables.
        Ip = "IP",
        /// Global persistent variables.
        Global = "GLOBAL",
        /// What `@geoLookup` found (always empty in Rampart: no GeoIP database).
        Geo = "GEO",
        /// Session variables.
        Session = "SESSION",
        /// User variables.
        User = "USER",
        /// Resource variables.
        Resource = "RESOURCE",
        /// Response headers.
        ResponseHeaders = "RESPONSE_HEADERS",
        /// Response header names.
        ResponseHeadersNames = "RESPONSE_HEADERS_NAMES",
        /// The response body.
        ResponseBody = "RESPONSE_BODY",
        /// The response status.
        ResponseStatus = "RESPONSE_STATUS",
        /// The response protocol.
        ResponseProtocol = "RESPONSE_PROTOCOL",
        /// The response content type.
        ResponseContentType = "RESPONSE_CONTENT_TYPE",
        /// The response content length.
        ResponseContentLength = "RESPONSE_CONTENT_LENGTH",
        /// The status line.
        StatusLine = "STATUS_LINE",
        /// The client address.
        RemoteAddr = "REMOTE_ADDR",
        /// The client port.
        RemotePort = "REMOTE_PORT",
        /// The client's host name (its address here).
        RemoteHost = "REMOTE_HOST",
        /// The server address.
        ServerAddr = "SERVER_ADDR",
        /// The server name.
        ServerName = "SERVER_NAME",
        /// The server port.
        ServerPort = "SERVER_PORT",
        /// The request id.
        UniqueId = "UNIQUE_ID",
        /// Milliseconds since the transaction began.
        Duration = "DURATION",
        /// The time, `hh:mm:ss`.
        Time = "TIME",
        /// Day of month.
        TimeDay = "TIME_DAY",
        /// Seconds since the epoch.
        TimeEpoch = "TIME_EPOCH",
        /// Hour.
        TimeHour = "TIME_HOUR",
        /// Minute.
        TimeMin = "TIME_MIN",
        /// Month.
        TimeMon = "TIME_MON",
        /// Second.
        TimeSec = "TIME_SEC",
        /// Day of week.
        TimeWday = "TIME_WDAY",
        /// Year.
        TimeYear = "TIME_YEAR",
        /// The value of the last match.
        MatchedVar = "MATCHED_VAR",
        /// The name of the last match.
        MatchedVarName = "MATCHED_VAR_NAME",
        /// Every value matched by the rule so far.
        MatchedVars = "MATCHED_VARS",
        /// Every name matched by the rule so far.
        MatchedVarsNames = "MATCHED_VARS_NAMES",
        /// The rule's own metadata (`RULE.id`, `RULE.msg`).
        Rule = "RULE",
        /// Environment variables set by `setenv`.
        Env = "ENV",
        /// The authentication type.
        AuthType = "AUTH_TYPE",
        /// The full request's length.
        FullRequestLength = "FULL_REQUEST_LENGTH",
        /// The web application id.
        Webappid = "WEBAPPID",
        /// Whether the highest severity so far.
        HighestSeverity = "HIGHEST_SEVERITY",
        /// Inbound data error (body over the limit).
        InboundDataError = "INBOUND_DATA_ERROR",
        /// Outbound data error.
        OutboundDataError = "OUTBOUND_DATA_ERROR",
        /// URL-encoding errors in the request.
        UrlencodedError = "URLENCODED_ERROR",
        /// Body processor error (alias of `REQBODY_ERROR`).
        ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR",
    }
}

names! {
    /// The operators.
    OperatorKind {
        /// A regular expression.
        Rx = "rx",
        /// Any of a list of phrases.
        Pm = "pm",
        /// Any of the phrases of files.
        PmFromFile = "pmFromFile",
        /// `pmf`: short for `pmFromFile`.
        Pmf = "pmf",
        /// SQL injection (libinjection's algorithm).
        DetectSqli = "detectSQLi",
        /// Cross-site scripting (libinjection's algorithm).
        DetectXss = "detectXSS",
        /// An address in a list of addresses and networks.
        IpMatch = "ipMatch",
        /// `ipMatchF`: short for `ipMatchFromFile`.
        IpMatchF = "ipMatchF",
        /// An address in the networks of a file.
        IpMatchFromFile = "ipMatchFromFile",
        /// String equality.
        StrEq = "streq",
        /// A prefix.
        BeginsWith = "beginsWith",
        /// A suffix.
        EndsWith = "endsWith",
        /// A substring.
        Contains = "contains",
        /// A whole word.
        ContainsWord = "containsWord",
        /// The value is a substring of the parameter.
        Within = "within",
        /// Numeric equality.
        Eq = "eq",
        /// Greater or equal.
        Ge = "ge",
        /// Greater.
        Gt = "gt",
        /// Less or equal.
        Le = "le",
        /// Less.
        Lt = "lt",
        /// Bytes outside the ranges.
        ValidateByteRange = "validateByteRange",
        /// Invalid URL encoding.
        ValidateUrlEncoding = "validateUrlEncoding",
        /// Invalid UTF-8.
        ValidateUtf8Encoding = "validateUtf8Encoding",
        /// Always.
        UnconditionalMatch = "unconditionalMatch",
        /// Never.
        NoMatch = "noMatch",
        /// A substring (Boyer-Moore in ModSecurity).
        StrMatch = "strmatch",
        /// The address's country into `GEO` (needs a GeoIP database: Rampart has none, so it
        /// never matches; the rule set's load names the rules).
        GeoLookup = "geoLookup",
        /// A DNS blocklist lookup (never on the request path in Rampart: it never matches; the
        /// rule set's load names the rules).
        Rbl = "rbl",
    }
}

names! {
    /// The transformations.
    Transform {
        /// Resets the chain.
        None = "none",
        /// ASCII lower case.
        Lowercase = "lowercase",
        /// ASCII upper case.
        Uppercase = "uppercase",
        /// `%xx` and `+`.
        UrlDecode = "urlDecode",
        /// `%xx`, `%uxxxx` and `+`.
        UrlDecodeUni = "urlDecodeUni",
        /// Percent-encoding.
        UrlEncode = "urlEncode",
        /// HTML entities.
        HtmlEntityDecode = "htmlEntityDecode",
        /// JavaScript escapes.
        JsDecode = "jsDecode",
        /// CSS escapes.
        CssDecode = "cssDecode",
        /// Shell command-line normalisation.
        CmdLine = "cmdLine",
        /// Runs of whitespace to one space.
        CompressWhitespace = "compressWhitespace",
        /// Whitespace removed.
        RemoveWhitespace = "removeWhitespace",
        /// NUL bytes removed.
        RemoveNulls = "removeNulls",
        /// NUL bytes to spaces.
        ReplaceNulls = "replaceNulls",
        /// Comments removed.
        RemoveComments = "removeComments",
        /// Comment characters removed.
        RemoveCommentsChar = "removeCommentsChar",
        /// Comments to a space.
        ReplaceComments = "replaceComments",
        /// `.` and `..` segments resolved.
        NormalisePath = "normalisePath",
        /// The American spelling.
        NormalizePath = "normalizePath",
        /// The same, with backslashes as slashes.
        NormalisePathWin = "normalisePathWin",
        /// The American spelling.
        NormalizePathWin = "normalizePathWin",
        /// UTF-8 to `%uxxxx`.
        Utf8ToUnicode = "utf8toUnicode",
        /// Base64.
        Base64Decode = "base64Decode",
        /// Base64, forgiving.
        Base64DecodeExt = "base64DecodeExt",
        /// Base64 encoding.
        Base64Encode = "base64Encode",
        /// Hex.
        HexDecode = "hexDecode",
        /// Hex encoding.
        HexEncode = "hexEncode",
        /// SQL hex literals.
        SqlHexDecode = "sqlHexDecode",
        /// C escapes.
        EscapeSeqDecode = "escapeSeqDecode",
        /// The length.
        Length = "length",
        /// SHA-1.
        Sha1 = "sha1",
        /// MD5.
        Md5 = "md5",
        /// Whitespace trimmed at both ends.
        Trim = "trim",
        /// At the start.
        TrimLeft = "trimLeft",
        /// At the end.
        TrimRight = "trimRight",
    }
}

/// `allow`'s scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowScope {
    /// The rest of the transaction.
    All,
    /// The rest of the phase.
    Phase,
    /// The request phases.
    Request,
}

/// `setvar`'s operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetVarOp {
    /// `=value`
    Set(String),
    /// `=+value`
    Add(String),
    /// `=-value`
    Sub(String),
    /// `!name`
    Delete,
}

/// A `setvar`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetVar {
    /// The collection (`tx`, `ip`, …).
    pub collection: Collection,
    /// The key, macros unexpanded.
    pub key: String,
    /// What is done.
    pub op: SetVarOp,
}

/// A `ctl` action: a change to the transaction's configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum Ctl {
    /// `ruleEngine=On|Off|DetectionOnly`
    RuleEngine(EngineMode),
    /// `ruleRemoveById=…`
    RuleRemoveById(Vec<IdRange>),
    /// `ruleRemoveByTag=…`
    RuleRemoveByTag(String),
    /// `ruleRemoveTargetById=id;VAR`
    RuleRemoveTargetById(Vec<IdRange>, Vec<Variable>),
    /// `ruleRemoveTargetByTag=tag;VAR`
    RuleRemoveTargetByTag(String, Vec<Variable>),
    /// `requestBodyProcessor=URLENCODED|MULTIPART|JSON|XML`
    RequestBodyProcessor(String),
    /// `requestBodyAccess=On|Off`
    RequestBodyAccess(bool),
    /// `forceRequestBodyVariable=On|Off`
    ForceRequestBodyVariable(bool),
    /// `auditEngine=…` (logging only)
    AuditEngine(String),
    /// `auditLogParts=…` (logging only)
    AuditLogParts(String),
}

/// A rule's action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `id`
    Id(u32),
    /// `phase` (1 to 5; `request` is 2, `response` 4, `logging` 5)
    Phase(u8),
    /// `chain`
    Chain,
    /// `block`: the disruptive action of `SecDefaultAction`.
    Block,
    /// `deny`
    Deny,
    /// `drop`
    Drop,
    /// `pass`
    Pass,
    /// `allow`
    Allow(AllowScope),
    /// `redirect` (treated as `deny` with its status)
    Redirect(String),
    /// `status`
    Status(u16),
    /// `msg`
    Msg(String),
    /// `logdata`
    LogData(String),
    /// `tag`
    Tag(String),
    /// `severity`, 0 (emergency) to 7 (debug)
    Severity(u8),
    /// `ver`
    Ver(String),
    /// `rev`
    Rev(String),
    /// `maturity`
    Maturity(u8),
    /// `accuracy`
    Accuracy(u8),
    /// `capture`
    Capture,
    /// `setvar`
    SetVar(SetVar),
    /// `expirevar`
    ExpireVar(String, String),
    /// `initcol`
    InitCol(Collection, String),
    /// `setenv`
    SetEnv(String),
    /// `skip`
    Skip(u32),
    /// `skipAfter`
    SkipAfter(String),
    /// `ctl`
    Ctl(Ctl),
    /// `t:`
    T(Transform),
    /// `multiMatch`
    MultiMatch,
    /// `log`
    Log,
    /// `nolog`
    NoLog,
    /// `auditlog`
    AuditLog,
    /// `noauditlog`
    NoAuditLog,
}
