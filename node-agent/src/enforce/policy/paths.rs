//! Exec and file rules: absolute paths as the kernel resolves them, each
//! covering itself and everything below it; exec rules may be globs.
//!
//! `~` is refused, not expanded: the kernel sees resolved paths and no home
//! directory, and a process's `HOME` is its own to change, so there is no
//! one place `~` could mean. Expanding `~user` from the agent's
//! `/etc/passwd` would be wrong inside containers, whose users are their
//! own. Write the absolute path (`/home/alice/.ssh/`, `/root/.ssh/`).

use globset::{GlobBuilder, GlobMatcher};

use super::{invalid, Decision, FilesSpec, Mode, PolicyError};

/// `path` as a rule names it: absolute, without `.` or `..`, repeated or
/// trailing `/` (the root stays `/`).
fn normalize(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("an empty path".into());
    }
    if path.starts_with('~') {
        return Err("`~` is not expanded: the kernel knows no home directory; write the absolute path \
                    (/home/NAME/..., /root/...)"
            .into());
    }
    if !path.starts_with('/') {
        return Err("a relative path: rules name absolute paths, as the kernel resolves them".into());
    }
    if path.contains('\0') {
        return Err("a path holds no NUL byte".into());
    }
    let mut normal = String::with_capacity(path.len());
    for part in path.split('/').filter(|part| !part.is_empty()) {
        if part == "." || part == ".." {
            return Err("`.` and `..` are not allowed: the kernel reports resolved paths".into());
        }
        normal.push('/');
        normal.push_str(part);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    Ok(normal)
}

/// A path being decided, without a trailing `/`.
fn trimmed(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        path => path,
    }
}

/// The rule `prefix` (normalized) covers `path`: it is `path` or a
/// directory above it. `/repo` covers `/repo/x`, not `/repository`.
pub fn covers(prefix: &str, path: &str) -> bool {
    prefix == "/" || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '[', '{'])
}

/// What an exec rule matches.
#[derive(Debug, Clone)]
pub enum ExecPattern {
    /// A normalized path: itself and everything below it.
    Prefix(String),
    /// A normalized glob (`*` within a segment, `**` across): what it
    /// matches and everything below that.
    Glob { glob: String, matcher: GlobMatcher },
}

impl ExecPattern {
    pub fn matches(&self, path: &str) -> bool {
        let path = trimmed(path);
        match self {
            ExecPattern::Prefix(prefix) => covers(prefix, path),
            ExecPattern::Glob { matcher, .. } => {
                // The path itself, then each directory above it.
                let mut candidate = path;
                loop {
                    if matcher.is_match(candidate) {
                        return true;
                    }
                    match candidate.rfind('/') {
                        Some(0) | None => return false,
                        Some(at) => candidate = &candidate[..at],
                    }
                }
            }
        }
    }
}

/// One `exec.allow` entry.
#[derive(Debug, Clone)]
pub struct ExecRule {
    pub pattern: ExecPattern,
    pub mode: Mode,
    /// As written.
    pub text: String,
    /// Its key in the role: `exec.allow[2]`.
    pub key: String,
}

/// A role's `[roles.exec]`: what is not allowed is denied.
#[derive(Debug, Clone)]
pub struct ExecRules {
    pub mode: Mode,
    pub rules: Vec<ExecRule>,
}

impl ExecRules {
    /// `key` is the family's (`roles[0].exec`).
    pub(super) fn compile(key: &str, allow: &[String], mode: Mode) -> Result<Self, PolicyError> {
        let mut rules = Vec::with_capacity(allow.len());
        for (i, text) in allow.iter().enumerate() {
            let bad = |reason: String| invalid(format!("{key}.allow[{i}]"), text, reason);
            let path = normalize(text).map_err(bad)?;
            let pattern = if is_glob(&path) {
                let glob =
                    GlobBuilder::new(&path).literal_separator(true).build().map_err(|e| bad(e.kind().to_string()))?;
                ExecPattern::Glob { matcher: glob.compile_matcher(), glob: path }
            } else {
                ExecPattern::Prefix(path)
            };
            rules.push(ExecRule { pattern, mode, text: text.clone(), key: format!("exec.allow[{i}]") });
        }
        Ok(Self { mode, rules })
    }

    pub fn decide(&self, path: &str) -> Decision {
        if self.rules.iter().any(|rule| rule.pattern.matches(path)) {
            return Decision::Allow;
        }
        Decision::Deny { rule: None, mode: self.mode, text: "exec: no exec.allow entry covers it".into() }
    }
}

/// Which list a file rule is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileAccess {
    ReadOnly,
    ReadWrite,
    Deny,
}

impl FileAccess {
    pub fn list(self) -> &'static str {
        match self {
            FileAccess::ReadOnly => "read_only",
            FileAccess::ReadWrite => "read_write",
            FileAccess::Deny => "deny",
        }
    }
}

/// One `files.read_only`, `files.read_write` or `files.deny` entry.
#[derive(Debug, Clone)]
pub struct FileRule {
    pub access: FileAccess,
    /// Normalized: absolute, no trailing `/`.
    pub prefix: String,
    pub mode: Mode,
    /// As written.
    pub text: String,
    /// Its key in the role: `files.deny[0]`.
    pub key: String,
}

impl FileRule {
    fn denial(&self, index: usize) -> Decision {
        Decision::Deny { rule: Some(index), mode: self.mode, text: format!("{} {:?}", self.key, self.text) }
    }
}

/// A role's `[roles.files]`: a deny covering the path wins; else the
/// longest entry covering it decides; a path no entry covers is denied.
#[derive(Debug, Clone)]
pub struct FileRules {
    pub mode: Mode,
    /// `read_only`, then `read_write`, then `deny` entries, each in file
    /// order. No two entries of different lists have the same prefix.
    pub rules: Vec<FileRule>,
}

impl FileRules {
    /// `key` is the family's (`roles[0].files`).
    pub(super) fn compile(key: &str, spec: &FilesSpec, mode: Mode) -> Result<Self, PolicyError> {
        let mut rules: Vec<FileRule> = Vec::new();
        let lists = [
            (FileAccess::ReadOnly, &spec.read_only),
            (FileAccess::ReadWrite, &spec.read_write),
            (FileAccess::Deny, &spec.deny),
        ];
        for (access, list) in lists {
            for (i, text) in list.iter().enumerate() {
                let entry = format!("files.{}[{i}]", access.list());
                let bad = |reason: String| invalid(format!("{key}.{}[{i}]", access.list()), text, reason);
                let prefix = normalize(text).map_err(bad)?;
                if is_glob(&prefix) {
                    return Err(bad("file rules are paths, not globs: a path covers everything below it".into()));
                }
                if let Some(other) = rules.iter().find(|r| r.prefix == prefix && r.access != access) {
                    return Err(bad(format!(
                        "the same path as {} ({:?}); a path belongs in one list",
                        other.key, other.text
                    )));
                }
                rules.push(FileRule { access, prefix, mode, text: text.clone(), key: entry });
            }
        }
        Ok(Self { mode, rules })
    }

    /// May `path` (absolute, resolved) be opened, for writing when `write`?
    pub fn decide(&self, path: &str, write: bool) -> Decision {
        let path = trimmed(path);
        let longest = |deny: bool| {
            self.rules
                .iter()
                .enumerate()
                .filter(|(_, r)| (r.access == FileAccess::Deny) == deny && covers(&r.prefix, path))
                .max_by_key(|(_, r)| r.prefix.len())
        };
        if let Some((index, rule)) = longest(true) {
            return rule.denial(index);
        }
        match longest(false) {
            Some((index, rule)) if write && rule.access == FileAccess::ReadOnly => rule.denial(index),
            Some(_) => Decision::Allow,
            None => Decision::Deny { rule: None, mode: self.mode, text: "files: no files entry covers it".into() },
        }
    }
}
