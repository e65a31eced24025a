//! Path rules from the `PATH_RULES` variable: an ordered list of patterns that exclude a
//! path from the filter or protect it with options (gateway, renew, attribute
//! requirements). The first rule whose pattern matches decides; a path no rule matches is
//! protected with no options.

use std::collections::BTreeMap;

use cas_core::validation::Attributes;
use percent_encoding::percent_decode_str;
use regex::Regex;
use serde::Deserialize;

/// Maximum number of rules, so a typo cannot make every request walk a huge list.
pub const MAX_RULES: usize = 200;

/// What a matching rule does with the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Action {
    /// Require a session, with these options.
    #[default]
    Protect,
    /// Pass the request through untouched, except that filter headers and cookies are removed.
    Exclude,
}

/// The options that apply to one request: from the first matching rule, or the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePolicy {
    pub action: Action,
    /// Anonymous users pass through; users with a CAS session are identified once.
    pub gateway: bool,
    /// Send `renew=true` to CAS, and accept only sessions started by such a login.
    pub renew: bool,
    /// For each attribute name, the values of which the user needs at least one.
    pub require: BTreeMap<String, Vec<String>>,
}

impl RulePolicy {
    /// Returns whether `attributes` meet every requirement: for each required attribute,
    /// at least one of the listed values is among the user's values.
    pub fn allows(&self, attributes: &Attributes) -> bool {
        self.require.iter().all(|(name, wanted)| {
            let held = attributes.get(name).map(Vec::as_slice).unwrap_or_default();
            wanted.iter().any(|value| held.contains(value))
        })
    }
}

/// One parsed rule.
#[derive(Debug, Clone)]
pub struct PathRule {
    pattern: Pattern,
    policy: RulePolicy,
}

/// Matcher of a rule against the decoded path. Exact and prefix rules compare strings. The
/// regex crate is built without its optional search engines to keep the wasm bundle
/// small, so it runs every search in its PikeVM, which cost about 7 µs per request for
/// one prefix rule in workerd.
#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    /// A glob or regex rule, compiled as `(?s)^(?:…)$`.
    Regex {
        regex: Regex,
        /// The glob with ASCII letters lowercased, compiled the same way, for a glob that
        /// contains uppercase letters.
        lowercase: Option<Regex>,
    },
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self {
            Pattern::Exact(exact) => path == exact,
            Pattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Pattern::Regex { regex, .. } => regex.is_match(path),
        }
    }

    /// Returns whether the pattern matches `path` with ASCII letters compared
    /// case-insensitively, where `lowercase` is `path` with ASCII letters lowercased.
    /// The regex crate is built without `unicode-case`, so `(?i)` is not available.
    fn matches_ignoring_case(&self, path: &str, lowercase: &str) -> bool {
        match self {
            Pattern::Exact(exact) => path.eq_ignore_ascii_case(exact),
            Pattern::Prefix(prefix) => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes())),
            Pattern::Regex {
                lowercase: Some(folded),
                ..
            } => folded.is_match(lowercase),
            // NOTE: a regex rule is tried on the path as sent and in lowercase only, so
            // uppercase literals in a regex pattern miss some case variants.
            Pattern::Regex {
                regex,
                lowercase: None,
            } => regex.is_match(path) || regex.is_match(lowercase),
        }
    }

    fn has_uppercase(&self) -> bool {
        match self {
            Pattern::Exact(text) | Pattern::Prefix(text) => {
                text.bytes().any(|byte| byte.is_ascii_uppercase())
            }
            Pattern::Regex { lowercase, .. } => lowercase.is_some(),
        }
    }
}

/// The ordered rules of `PATH_RULES`.
#[derive(Debug, Clone, Default)]
pub struct PathRules {
    rules: Vec<PathRule>,
    /// Whether an exact, prefix or glob pattern contains ASCII uppercase letters, so
    /// that a path without them can still match it in another case.
    has_uppercase: bool,
}

/// A rule as written in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(rename = "match", default = "default_kind")]
    kind: String,
    pattern: String,
    #[serde(default = "default_action")]
    action: String,
    #[serde(default)]
    gateway: bool,
    #[serde(default)]
    renew: bool,
    #[serde(default)]
    require: BTreeMap<String, Vec<String>>,
}

fn default_kind() -> String {
    "prefix".to_owned()
}

fn default_action() -> String {
    "protect".to_owned()
}

impl PathRules {
    /// Parses the JSON array of `PATH_RULES`. An empty text means no rules.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }

        let specs: Vec<RuleSpec> =
            serde_json::from_str(text).map_err(|e| format!("is not a valid rule list ({e})"))?;
        if specs.len() > MAX_RULES {
            return Err(format!("has more than {MAX_RULES} rules"));
        }

        let rules = specs
            .into_iter()
            .enumerate()
            .map(|(index, spec)| rule(spec).map_err(|e| format!("rule {}: {e}", index + 1)))
            .collect::<Result<Vec<PathRule>, _>>()?;
        let has_uppercase = rules.iter().any(|rule| rule.pattern.has_uppercase());
        Ok(Self {
            rules,
            has_uppercase,
        })
    }

    /// Returns the policy for `raw_path`, the percent-encoded request path.
    pub fn policy(&self, raw_path: &str) -> RulePolicy {
        let path = percent_decode_str(raw_path).decode_utf8_lossy();
        self.decoded_policy(&path)
    }

    /// Returns whether the policy of `raw_path` changes in a form of the decoded path
    /// that some origins serve. Tomcat and Spring remove `;` path parameters from each
    /// segment. nginx merges runs of `/` (`merge_slashes on`, the default), and some
    /// servers read `\` as `/`. Windows removes the dots and spaces at the end of a file
    /// name, so IIS serves `/staff./x` as `/staff/x`. A proxy that puts the decoded path
    /// into its upstream URL ends the path at a decoded `?` or `#`. Express and ASP.NET Core route
    /// without regard to ASCII case by default, and so do IIS and other servers on
    /// case-insensitive file systems. The filter cannot know which path the origin will
    /// serve, so a path whose forms fall under different rules cannot be checked against
    /// any.
    pub fn depends_on_normalization(&self, raw_path: &str) -> bool {
        let path = percent_decode_str(raw_path).decode_utf8_lossy();
        let marks = FormMarks::of(&path);
        let has_uppercase = self.has_uppercase || marks.uppercase;
        let has_other_forms =
            marks.parameters || marks.slash_forms || marks.trailing_dots || marks.query_marks;
        if !has_uppercase && !has_other_forms {
            return false;
        }

        let policy = self.decoded_policy(&path);
        if has_uppercase && self.policy_ignoring_case(&path) != policy {
            return true;
        }
        if !has_other_forms {
            return false;
        }

        normalized_forms(&path, marks).iter().any(|form| {
            self.decoded_policy(form) != policy
                || (has_uppercase && self.policy_ignoring_case(form) != policy)
        })
    }

    fn decoded_policy(&self, path: &str) -> RulePolicy {
        let found = self.rules.iter().find(|rule| rule.pattern.matches(path));
        policy_of(found, path)
    }

    fn policy_ignoring_case(&self, path: &str) -> RulePolicy {
        let lowercase = path.to_ascii_lowercase();
        let found = self
            .rules
            .iter()
            .find(|rule| rule.pattern.matches_ignoring_case(path, &lowercase));
        policy_of(found, path)
    }
}

/// Returns the policy of `found`, the first rule that matched the decoded `path`.
fn policy_of(found: Option<&PathRule>, path: &str) -> RulePolicy {
    let Some(rule) = found else {
        return RulePolicy::default();
    };

    // A decoded `..` segment could make the origin resolve the path outside the
    // rule's prefix. So such a path is never excluded and never let through
    // anonymously by a gateway rule.
    let skips_sign_in = rule.policy.action == Action::Exclude || rule.policy.gateway;
    if skips_sign_in && has_dot_segment(path) {
        return RulePolicy::default();
    }
    rule.policy.clone()
}

fn rule(spec: RuleSpec) -> Result<PathRule, String> {
    if !spec.pattern.starts_with('/') && spec.kind != "regex" {
        return Err(format!("pattern {:?} must start with /", spec.pattern));
    }
    let pattern = match spec.kind.as_str() {
        "exact" => Pattern::Exact(spec.pattern.clone()),
        "prefix" => Pattern::Prefix(spec.pattern.clone()),
        "glob" => {
            let regex = compile(&glob_to_regex(&spec.pattern), &spec.pattern)?;
            let lowercase = spec.pattern.to_ascii_lowercase();
            let lowercase = (lowercase != spec.pattern)
                .then(|| compile(&glob_to_regex(&lowercase), &spec.pattern))
                .transpose()?;
            Pattern::Regex { regex, lowercase }
        }
        "regex" => Pattern::Regex {
            regex: compile(&spec.pattern, &spec.pattern)?,
            lowercase: None,
        },
        other => {
            return Err(format!(
                "unknown match {other:?}; use exact, prefix, glob or regex"
            ))
        }
    };

    let action = match spec.action.as_str() {
        "protect" => Action::Protect,
        "exclude" => Action::Exclude,
        other => return Err(format!("unknown action {other:?}; use protect or exclude")),
    };
    if action == Action::Exclude && (spec.gateway || spec.renew || !spec.require.is_empty()) {
        return Err("an exclude rule takes no gateway, renew or require".to_owned());
    }
    if spec.gateway && spec.renew {
        return Err("gateway and renew cannot both be set".to_owned());
    }

    let policy = RulePolicy {
        action,
        gateway: spec.gateway,
        renew: spec.renew,
        require: spec.require,
    };
    Ok(PathRule { pattern, policy })
}

/// Compiles `source` anchored at both ends. A decoded path may contain `\n` (from
/// `%0A`). With `s`, `.` matches it too, so such a path cannot slip past a rule to a
/// later exclude rule.
fn compile(source: &str, written: &str) -> Result<Regex, String> {
    Regex::new(&format!("(?s)^(?:{source})$"))
        .map_err(|e| format!("pattern {written:?} is not a valid regex ({e})"))
}

/// Translates a glob: `**` matches any text, `*` any text without `/`, `?` one character
/// other than `/`. Every other character matches itself.
fn glob_to_regex(glob: &str) -> String {
    let mut source = String::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                source.push_str(".*");
            }
            '*' => source.push_str("[^/]*"),
            '?' => source.push_str("[^/]"),
            other => source.push_str(&regex::escape(&other.to_string())),
        }
    }
    source
}

/// Returns whether a segment of `path` is `..`, also with `;` path parameters after it
/// (`..;x`), which servlet containers such as Tomcat remove before they resolve it.
fn has_dot_segment(path: &str) -> bool {
    segment_names(path).any(|name| name == "..")
}

/// Returns whether origins may read the percent-decoded `raw_path` in ways that the
/// rules cannot follow, so that no rule can be applied to it. That is the case when the
/// decoded path:
///
/// - has a segment made only of dots and spaces, also with `;` path parameters after it
///   (`..`, `.;x`, `.. `). Browsers resolve `.` and `..` before they send a request,
///   and the runtime resolves them in the undecoded path, so only an encoded `/` or `\`
///   or a `;` parameter leaves one. Servlet containers remove the parameters first, and
///   Windows removes trailing dots and spaces, so `.. ` is `..` there.
/// - contains a control character (U+0000 to U+001F or U+007F), at which some origins
///   end the path and which others remove.
/// - contains `\`, which IIS and some Node.js and Java servers read as `/`.
/// - still contains a percent escape, `%` with two hex digits or `%u` with four. An
///   origin that decodes twice reads `%252e` as `.`, and so does Http.sys, the HTTP
///   layer of IIS, with `%u002e` (its `PercentUAllowed` setting, on by default).
/// - is not valid UTF-8, which lenient decoders read in other ways, such as the overlong
///   `%C0%AE` as `.`.
///
/// Reads each byte of `raw_path` once, and allocates only when an escape decodes to a
/// byte outside ASCII, to check the UTF-8 of the decoded path.
pub fn is_ambiguous_path(raw_path: &str) -> bool {
    let raw = raw_path.as_bytes();
    let mut segment = SegmentName::default();
    let mut escape = Escape::Outside;
    let mut decoded_non_ascii = false;
    let mut index = 0;
    while let Some((byte, width)) = decoded_byte(raw, index) {
        index += width;
        decoded_non_ascii |= width > 1 && !byte.is_ascii();
        if byte.is_ascii_control() || byte == b'\\' {
            return true;
        }
        let Some(next) = escape.after(byte) else {
            return true;
        };
        escape = next;
        if byte == b'/' {
            if segment.is_dots_and_spaces() {
                return true;
            }
            segment = SegmentName::default();
        } else {
            segment.push(byte);
        }
    }

    segment.is_dots_and_spaces()
        || (decoded_non_ascii && percent_decode_str(raw_path).decode_utf8().is_err())
}

/// Returns the byte that `raw` decodes to at `index`, and how many bytes of `raw` it
/// takes: three for `%` and two hex digits, otherwise one. A `%` without two hex digits
/// stays itself, as in `percent_decode`. Returns `None` at the end of `raw`.
fn decoded_byte(raw: &[u8], index: usize) -> Option<(u8, usize)> {
    let byte = *raw.get(index)?;
    if byte == b'%' {
        let high = raw.get(index + 1).and_then(hex_value);
        let low = raw.get(index + 2).and_then(hex_value);
        if let (Some(high), Some(low)) = (high, low) {
            return Some((high << 4 | low, 3));
        }
    }
    Some((byte, 1))
}

fn hex_value(digit: &u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Progress through a percent escape in the decoded path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    Outside,
    /// After `%`.
    Percent,
    /// After `%` and one hex digit, or after `%u`, with `remaining` hex digits to go.
    HexDigits {
        remaining: u8,
    },
}

impl Escape {
    /// Returns the state after `byte`, or `None` when `byte` completes an escape.
    fn after(self, byte: u8) -> Option<Self> {
        let next = match (self, byte) {
            (Escape::Percent, b'u' | b'U') => Escape::HexDigits { remaining: 4 },
            (Escape::Percent, digit) if digit.is_ascii_hexdigit() => {
                Escape::HexDigits { remaining: 1 }
            }
            (Escape::HexDigits { remaining: 1 }, digit) if digit.is_ascii_hexdigit() => {
                return None;
            }
            (Escape::HexDigits { remaining }, digit) if digit.is_ascii_hexdigit() => {
                Escape::HexDigits {
                    remaining: remaining - 1,
                }
            }
            (_, b'%') => Escape::Percent,
            _ => Escape::Outside,
        };
        Some(next)
    }
}

/// The name of the current segment, before any `;` path parameters, as far as
/// [`is_ambiguous_path`] needs it.
#[derive(Debug, Clone, Copy)]
struct SegmentName {
    empty: bool,
    only_dots_and_spaces: bool,
    in_parameters: bool,
}

impl Default for SegmentName {
    fn default() -> Self {
        Self {
            empty: true,
            only_dots_and_spaces: true,
            in_parameters: false,
        }
    }
}

impl SegmentName {
    fn push(&mut self, byte: u8) {
        if self.in_parameters {
            return;
        }
        if byte == b';' {
            self.in_parameters = true;
            return;
        }
        self.empty = false;
        self.only_dots_and_spaces &= byte == b'.' || byte == b' ';
    }

    fn is_dots_and_spaces(&self) -> bool {
        !self.empty && self.only_dots_and_spaces
    }
}

/// Signs that an origin may read a decoded path in another form.
#[derive(Debug, Clone, Copy, Default)]
struct FormMarks {
    /// An ASCII uppercase letter.
    uppercase: bool,
    /// A `;`, which starts path parameters.
    parameters: bool,
    /// A `\` or a run of `/`.
    slash_forms: bool,
    /// A `.` or space before `/`, `\`, `;`, `?`, `#` or the end of the path.
    trailing_dots: bool,
    /// A `?` or `#`, at which an origin that reads the decoded path as a URL ends it.
    query_marks: bool,
}

impl FormMarks {
    /// Finds the marks of `path` in one pass over its bytes.
    fn of(path: &str) -> Self {
        let mut marks = Self::default();
        let mut previous = 0;
        for byte in path.bytes() {
            let ends_name = matches!(byte, b'/' | b'\\' | b';' | b'?' | b'#');
            marks.uppercase |= byte.is_ascii_uppercase();
            marks.parameters |= byte == b';';
            marks.query_marks |= matches!(byte, b'?' | b'#');
            marks.slash_forms |= byte == b'\\' || (byte == b'/' && previous == b'/');
            marks.trailing_dots |= ends_name && matches!(previous, b'.' | b' ');
            previous = byte;
        }
        marks.trailing_dots |= matches!(previous, b'.' | b' ');
        marks
    }
}

/// Returns the forms of the decoded `path` that an origin may serve in its place, as
/// far as `marks` calls for them.
fn normalized_forms(path: &str, marks: FormMarks) -> Vec<String> {
    let mut forms = Vec::new();
    if marks.parameters || marks.slash_forms {
        // An origin may read `\` as `/` before or after it removes parameters, so
        // `/a;x\b` can become `/a` or `/a/b`. Both orders are tried.
        let merged = merge_slashes(path);
        let without_parameters = strip_parameters(path);
        forms.extend([
            merge_slashes(&without_parameters),
            merge_slashes(&strip_parameters(&merged)),
            merged,
            without_parameters,
        ]);
    }
    if marks.query_marks {
        // nginx puts the decoded path into a `proxy_pass` URL built from `$uri` or a
        // regex capture, and so did mod_rewrite substitutions up to Apache httpd 2.4.59.
        // The upstream then reads `/staff/x?.js`, decoded from `/staff/x%3F.js`, as the
        // path `/staff/x`. The upstream may normalize the path further, so `/admin;#/`
        // becomes `/admin` by way of `/admin;`.
        let truncated: Vec<String> = std::iter::once(path)
            .chain(forms.iter().map(String::as_str))
            .map(|form| before_query_marks(form).to_owned())
            .collect();
        let before = before_query_marks(path);
        let normalized_before = normalized_forms(before, FormMarks::of(before));
        forms.extend(truncated);
        forms.extend(normalized_before);
    }
    if marks.trailing_dots {
        // Stripped last, so that `/staff.;x/y` becomes `/staff/y` by way of `/staff./y`.
        let stripped: Vec<String> = std::iter::once(path)
            .chain(forms.iter().map(String::as_str))
            .map(strip_trailing_dots)
            .collect();
        forms.extend(stripped);
    }
    forms
}

/// Returns the part of `path` before its first `?` or `#`.
fn before_query_marks(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or_default()
}

/// Returns `path` with the dots and spaces at the end of each `/`-separated segment
/// removed, so `/staff./x` becomes `/staff/x`.
fn strip_trailing_dots(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| segment.trim_end_matches(['.', ' ']))
        .collect();
    segments.join("/")
}

/// Returns `path` with each `\` read as `/` and each run of `/` merged into one.
fn merge_slashes(path: &str) -> String {
    let mut merged = String::with_capacity(path.len());
    for c in path.chars() {
        let c = if c == '\\' { '/' } else { c };
        if c == '/' && merged.ends_with('/') {
            continue;
        }
        merged.push(c);
    }
    merged
}

/// Returns `path` with the `;` path parameters of each segment removed, so
/// `/admin;x/page;v=1` becomes `/admin/page`. Segments are split at `/` only, and the
/// caller reads `\` as `/` for the forms that need it.
fn strip_parameters(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .collect();
    segments.join("/")
}

/// Yields each segment of `path`, split at `/` and `\`, without its `;` path parameters.
fn segment_names(path: &str) -> impl Iterator<Item = &str> {
    path.split(['/', '\\'])
        .map(|segment| segment.split(';').next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> PathRules {
        PathRules::parse(json).expect("valid rules")
    }

    #[test]
    fn no_rules_protect_everything() {
        let rules = rules("");

        assert_eq!(rules.policy("/anything"), RulePolicy::default());
    }

    #[test]
    fn match_kinds_are_anchored() {
        let rules = rules(
            r#"[
            {"match": "exact", "pattern": "/health", "action": "exclude"},
            {"match": "prefix", "pattern": "/static/", "action": "exclude"},
            {"match": "glob", "pattern": "/img/*.png", "action": "exclude"},
            {"match": "glob", "pattern": "/pub/**", "action": "exclude"},
            {"match": "regex", "pattern": "/v[0-9]+/status", "action": "exclude"}
        ]"#,
        );

        for path in [
            "/health",
            "/static/a.css",
            "/img/a.png",
            "/pub/a/b/c",
            "/v2/status",
        ] {
            assert_eq!(rules.policy(path).action, Action::Exclude, "{path}");
        }
        for path in [
            "/health/x",
            "/x/health",
            "/static",
            "/img/a/b.png",
            "/img/a.pngx",
            "/v2/status/x",
            "/a/v2/status",
        ] {
            assert_eq!(rules.policy(path).action, Action::Protect, "{path}");
        }
    }

    #[test]
    fn exact_and_prefix_are_literal() {
        let rules = rules(
            r#"[
            {"match": "exact", "pattern": "/a.b", "action": "exclude"},
            {"match": "prefix", "pattern": "/v1+(x)/", "action": "exclude"}
        ]"#,
        );

        assert_eq!(rules.policy("/a.b").action, Action::Exclude);
        assert_eq!(rules.policy("/v1+(x)/y").action, Action::Exclude);
        assert_eq!(rules.policy("/aXb").action, Action::Protect);
        assert_eq!(rules.policy("/v11x/y").action, Action::Protect);
        assert_eq!(rules.policy("/v1+(x)").action, Action::Protect);
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = rules(
            r#"[
            {"pattern": "/public/secret", "action": "protect", "renew": true},
            {"pattern": "/public/", "action": "exclude"}
        ]"#,
        );

        assert!(rules.policy("/public/secret/x").renew);
        assert_eq!(rules.policy("/public/x").action, Action::Exclude);
    }

    #[test]
    fn encoded_newline_cannot_skip_a_rule() {
        let rules = rules(
            r#"[
            {"pattern": "/admin/", "require": {"memberOf": ["admin"]}},
            {"match": "glob", "pattern": "/docs/*", "renew": true},
            {"pattern": "/", "action": "exclude"}
        ]"#,
        );

        for path in ["/admin/%0A", "/admin/x%0Ay", "/admin/%0D%0A"] {
            let policy = rules.policy(path);
            assert_eq!(policy.action, Action::Protect, "{path}");
            assert!(policy.require.contains_key("memberOf"), "{path}");
        }
        assert!(rules.policy("/docs/a%0Ab").renew);
    }

    #[test]
    fn paths_match_decoded() {
        let rules = rules(r#"[{"match": "exact", "pattern": "/文档", "action": "exclude"}]"#);

        assert_eq!(rules.policy("/%E6%96%87%E6%A1%A3").action, Action::Exclude);
    }

    #[test]
    fn dot_segments_are_never_excluded() {
        let rules = rules(r#"[{"pattern": "/public/", "action": "exclude"}]"#);

        assert_eq!(rules.policy("/public/..%2Fadmin").action, Action::Protect);
        assert_eq!(rules.policy("/public/%2e%2e/admin").action, Action::Protect);
    }

    #[test]
    fn dot_segment_with_parameters_is_never_excluded() {
        let rules = rules(r#"[{"pattern": "/public/", "action": "exclude"}]"#);

        // Tomcat removes `;` path parameters before it resolves `..`, so these two reach
        // `/admin` there.
        assert_eq!(rules.policy("/public/..;/admin").action, Action::Protect);
        assert_eq!(
            rules.policy("/public/..;jsessionid=x/admin").action,
            Action::Protect
        );
        // The rules see the decoded path, so an encoded `;` counts as well.
        assert_eq!(
            rules.policy("/public/%2e%2e%3B/admin").action,
            Action::Protect
        );
        assert_eq!(rules.policy("/public/a;b/c").action, Action::Exclude);
        assert_eq!(rules.policy("/public/..a;/c").action, Action::Exclude);
    }

    #[test]
    fn slash_forms_with_other_rules_are_found() {
        let rules = rules(
            r#"[
                {"pattern": "/public/admin/", "require": {"memberOf": ["staff"]}},
                {"pattern": "/public/", "action": "exclude"},
                {"match": "exact", "pattern": "/status", "action": "exclude"},
                {"pattern": "/admin/", "require": {"memberOf": ["staff"]}}
            ]"#,
        );

        for path in [
            "/public//admin/x",
            "//status",
            "//admin/x",
            "/admin%5Cx",
            "/public%2F%2Fadmin/x",
        ] {
            assert!(rules.depends_on_normalization(path), "{path}");
        }
        for path in [
            "/public//page",
            "/public/admin//x",
            "/status//",
            "/public/a//b",
            "/x//y",
            "/admin//x",
            "/public/admin/x",
            "/a\\b",
        ] {
            assert!(!rules.depends_on_normalization(path), "{path}");
        }
    }

    #[test]
    fn parameter_forms_with_other_rules_are_found() {
        let rules = rules(
            r#"[
                {"pattern": "/admin/", "require": {"memberOf": ["staff"]}},
                {"match": "glob", "pattern": "/**/*.css", "action": "exclude"},
                {"match": "exact", "pattern": "/status", "action": "exclude"},
                {"pattern": "/public/", "gateway": true}
            ]"#,
        );

        // Tomcat and Spring serve each of these from a path under another rule.
        for path in [
            "/admin;x/secret",
            "/admin;jsessionid=1/secret",
            "/admin%3Bx/secret",
            "/a/private;.css",
            "/status;x",
            "/public;x/page",
            "/;x/admin/secret",
            "/admin;x%5Csecret",
            "/admin;x//secret",
            "/app/style.css;v=2",
        ] {
            assert!(rules.depends_on_normalization(path), "{path}");
        }
        for path in [
            "/admin/x;y",
            "/admin;x",
            "/public/a;b/c",
            "/app/x;v=2/style.css",
            "/x;y/z",
        ] {
            assert!(!rules.depends_on_normalization(path), "{path}");
        }
    }

    #[test]
    fn case_forms_with_other_rules_are_found() {
        let rules = rules(
            r#"[
                {"pattern": "/admin/", "require": {"memberOf": ["staff"]}},
                {"match": "glob", "pattern": "/Docs/**", "renew": true},
                {"match": "exact", "pattern": "/status", "action": "exclude"},
                {"match": "regex", "pattern": "/v[0-9]+/private", "require": {"memberOf": ["staff"]}}
            ]"#,
        );

        // Express and IIS serve each of these from a path under another rule.
        for path in [
            "/ADMIN/x",
            "/Admin/x",
            "/docs/a",
            "/DOCS/a",
            "/STATUS",
            "/V1/private",
            "/Admin;x/y",
        ] {
            assert!(rules.depends_on_normalization(path), "{path}");
        }
        for path in [
            "/admin/X",
            "/Docs/A",
            "/Other/Path",
            "/status",
            "/v1/private",
            "/文档/X",
            "/public/README",
        ] {
            assert!(!rules.depends_on_normalization(path), "{path}");
        }
    }

    #[test]
    fn lowercase_rules_skip_lowercase_paths() {
        let rules = rules(r#"[{"pattern": "/admin/", "require": {"memberOf": ["staff"]}}]"#);

        assert!(!rules.has_uppercase);
        assert!(rules.depends_on_normalization("/Admin/x"));
        assert!(!rules.depends_on_normalization("/other/x"));
    }

    #[test]
    fn stripped_parameters_keep_segments() {
        assert_eq!(strip_parameters("/admin;x/page;v=1"), "/admin/page");
        assert_eq!(strip_parameters("/;x/a"), "//a");
        assert_eq!(strip_parameters("/a;x\\b/c"), "/a/c");
        assert_eq!(strip_parameters("/文档;x/页"), "/文档/页");
    }

    #[test]
    fn merged_slashes_keep_other_characters() {
        assert_eq!(merge_slashes("//a///b\\c/\\d"), "/a/b/c/d");
        assert_eq!(merge_slashes("/文档//页"), "/文档/页");
        assert_eq!(merge_slashes("/a/b/"), "/a/b/");
    }

    #[test]
    fn ambiguous_paths_are_found() {
        for path in [
            // Segments made of dots and spaces, also with parameters.
            "/x/..%2Fstaff/a",
            "/x/.%2Fstaff/a",
            "/x/%2e%2e%2Fstaff",
            "/x/..;a=b/staff",
            "/x/.;/staff",
            "/x/..%5Cstaff",
            "/..",
            "/x/...%2Fstaff",
            "/x/..%20%2Fstaff",
            "/x/.%20;a/staff",
            "/x/%20/staff",
            // Escapes left after one decoding.
            "/public/%252e%252e/staff/x",
            "/public/..%252Fstaff/x",
            "/public/..%255Cstaff/x",
            "/%2561dmin/x",
            "/public/%25%32%65%25%32%65/staff",
            "/a%2500b",
            "/a%25252e",
            "/a%25u002e%25u002e/b",
            "/a/%u002e%u002e/b",
            "/a/%U002E",
            // Control characters, raw or encoded.
            "/a%00.html",
            "/a%00",
            "/staff%0a/x",
            "/staff%0D%0A",
            "/a%09b",
            "/a%1Fb",
            "/a%7Fb",
            "/a\u{0}b",
            "/a\nb",
            "/a\u{7f}b",
            // Backslashes, raw or encoded.
            "/public\\..\\staff",
            "/a\\b",
            "/staff%5Cx",
            "/staff%5cx",
            // Bytes that are not UTF-8, such as an overlong `.`.
            "/public/%C0%AE%C0%AE/staff",
            "/a%FF",
            "/a%E6%96",
            "/a%E6%96/b",
            "/文%E6",
        ] {
            assert!(is_ambiguous_path(path), "{path}");
        }
        for path in [
            "/",
            "",
            "/a/b",
            "/a/..b/c",
            "/a/b../c",
            "/a/.well-known/x",
            "/a/%2E%2Ex/c",
            "/a%2ejs",
            "/app/a%2Ejs/b",
            "/my%20file.pdf",
            "/a%20b/c%20d",
            "/a/%20b",
            "/100%25",
            "/100%25.html",
            "/50%25off",
            "/a%25zz",
            "/a%25u00",
            "/a%25uzzzz",
            "/a%",
            "/a%zz",
            "/a%2",
            "/%E6%96%87%E6%A1%A3",
            "/%E6%96%87/%F0%9F%98%80",
            "/文档/页",
            "/wiki/Washington,_D.C.",
            "/a/b.",
            "/a;x/b;y",
            "/;x/a",
            "/a//b",
            "/%3B/a",
        ] {
            assert!(!is_ambiguous_path(path), "{path}");
        }
    }

    #[test]
    fn percent_decoding_matches_crate() {
        for path in [
            "/a%2",
            "/a%zz1",
            "/%%41",
            "/%41%",
            "/a%2f%2F",
            "/%E6%96%87x",
        ] {
            let mut decoded = Vec::new();
            let mut index = 0;
            while let Some((byte, width)) = decoded_byte(path.as_bytes(), index) {
                decoded.push(byte);
                index += width;
            }
            let expected: Vec<u8> = percent_decode_str(path).collect();
            assert_eq!(decoded, expected, "{path}");
        }
    }

    #[test]
    fn trailing_dot_forms_with_other_rules_are_found() {
        let rules = rules(
            r#"[
                {"match": "glob", "pattern": "/staff/**", "require": {"memberOf": ["staff"]}},
                {"match": "glob", "pattern": "/**/*.pdf", "renew": true},
                {"match": "exact", "pattern": "/public/health", "action": "exclude"},
                {"pattern": "/public/", "gateway": true}
            ]"#,
        );

        // IIS serves each of these from a path under another rule.
        for path in [
            "/staff./x",
            "/staff%20/x",
            "/staff.%20./x",
            "/staff.;x/y",
            "/STAFF./x",
            "/staff.%5Cx",
            "/docs/report.pdf.",
            "/docs/report.pdf%20",
            "/public/health.",
        ] {
            assert!(rules.depends_on_normalization(path), "{path}");
        }
        for path in [
            "/wiki/Washington,_D.C.",
            "/staff/x.",
            "/staff/report.pdf.",
            "/public/news.",
            "/public/a%20/b",
            "/a./b",
            "/a.b/c",
        ] {
            assert!(!rules.depends_on_normalization(path), "{path}");
        }
    }

    #[test]
    fn query_and_fragment_forms_are_found() {
        let rules = rules(
            r#"[
                {"match": "exact", "pattern": "/admin", "require": {"memberOf": ["staff"]}},
                {"match": "glob", "pattern": "/**/*.js", "action": "exclude"},
                {"match": "glob", "pattern": "/**/*.pdf", "renew": true},
                {"pattern": "/news/", "gateway": true}
            ]"#,
        );

        // An origin that reads the decoded path as a URL, such as nginx with `$uri` in
        // `proxy_pass`, ends the path at a decoded `?` or `#`.
        for path in [
            "/staff/report%3F.js",
            "/staff/report%23.js",
            "/staff/report%3f.js",
            "/admin%3F",
            "/admin%3Fv=1",
            "/admin%23top",
            "/docs/report.pdf%3F",
            "/docs/report.pdf%23page=2",
            "/admin%3F./x",
            "/admin.%3F",
            "/ADMIN%23",
            "/admin%3B%23/",
            "/admin;x%23%20%2F",
        ] {
            assert!(rules.depends_on_normalization(path), "{path}");
        }
        for path in [
            "/wiki/What%3F",
            "/news/what%3F",
            "/news/a%23b/c",
            "/app/x.js%3F.js",
            "/admin/x%3F",
        ] {
            assert!(!rules.depends_on_normalization(path), "{path}");
        }
    }

    #[test]
    fn stripped_trailing_dots_keep_segments() {
        assert_eq!(strip_trailing_dots("/staff./x. /y"), "/staff/x/y");
        assert_eq!(strip_trailing_dots("/a.b/c..d"), "/a.b/c..d");
        assert_eq!(strip_trailing_dots("/文档./页 "), "/文档/页");
        assert_eq!(strip_trailing_dots("/a/"), "/a/");
    }

    #[test]
    fn dot_segments_never_get_gateway() {
        let rules = rules(r#"[{"pattern": "/public/", "gateway": true}]"#);

        // A gateway rule lets anonymous users through, like an exclude rule.
        assert_eq!(rules.policy("/public/..%2Fadmin"), RulePolicy::default());
        assert_eq!(rules.policy("/public/..;/admin"), RulePolicy::default());
        assert!(rules.policy("/public/news").gateway);
    }

    #[test]
    fn requirements_need_one_value_each() {
        let rules = rules(
            r#"[{"pattern": "/staff/", "require": {"memberOf": ["staff", "admin"], "active": ["true"]}}]"#,
        );
        let policy = rules.policy("/staff/x");
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["users".into(), "admin".into()]);

        assert!(!policy.allows(&attributes));
        attributes.insert("active".into(), vec!["true".into()]);
        assert!(policy.allows(&attributes));
        attributes.insert("memberOf".into(), vec!["users".into()]);
        assert!(!policy.allows(&attributes));
    }

    #[test]
    fn invalid_rules_are_named() {
        for (json, expected) in [
            ("{", "not a valid rule list"),
            (
                r#"[{"pattern": "x"}]"#,
                "rule 1: pattern \"x\" must start with /",
            ),
            (r#"[{"pattern": "/", "match": "fuzzy"}]"#, "unknown match"),
            (r#"[{"pattern": "/", "action": "allow"}]"#, "unknown action"),
            (
                r#"[{"pattern": "(", "match": "regex"}]"#,
                "not a valid regex",
            ),
            (
                r#"[{"pattern": "/", "gateway": true, "renew": true}]"#,
                "cannot both",
            ),
            (
                r#"[{"pattern": "/", "action": "exclude", "renew": true}]"#,
                "takes no",
            ),
            (r#"[{"pattern": "/", "gatway": true}]"#, "unknown field"),
        ] {
            let error = PathRules::parse(json).expect_err(json);
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
