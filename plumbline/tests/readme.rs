//! The README's and docs/'s commands and configuration examples stay true:
//! every `plumb` and `plumbline` command in them parses, every script they
//! name exists, and every TOML example validates with the component it is for
//! (an enforcement policy, `# policy.toml`, with the policy parser).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use clap::Parser;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// README.md and every docs/*.md, read when the test runs so a new page is
/// checked without being named here.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.strip_prefix(root()).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// (language, body) of every fenced block of one page.
fn code_blocks(page: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in page.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Splits a shell line into words, honouring double quotes; drops a trailing
/// `# comment`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '#' if !quoted && !in_word => break,
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// (page, words) of every line of every `sh` block.
fn shell_commands() -> Vec<(PathBuf, Vec<String>)> {
    let mut commands = Vec::new();
    for (page, text) in pages() {
        for (_, body) in code_blocks(&text).into_iter().filter(|(lang, _)| lang == "sh") {
            commands.extend(body.lines().map(words).filter(|w| !w.is_empty()).map(|w| (page.clone(), w)));
        }
    }
    commands
}

fn is_plumb(words: &[String]) -> bool {
    words[0] == "plumb" || words[0].ends_with("/plumb")
}

#[test]
fn every_plumb_command_in_the_readme_and_docs_parses() {
    let commands: Vec<_> = shell_commands().into_iter().filter(|(_, w)| is_plumb(w)).collect();
    let in_readme = commands.iter().filter(|(page, _)| page == Path::new("README.md")).count();
    assert!(in_readme >= 6, "the README shows plumb: {commands:?}");
    assert!(commands.len() > in_readme, "docs/ shows plumb too: {commands:?}");
    for (page, words) in commands {
        if let Err(err) = plumbline_query::cli::Cli::try_parse_from(&words) {
            panic!("{} command {words:?} does not parse: {err}", page.display());
        }
    }
}

#[test]
fn every_plumbline_command_and_script_in_the_readme_and_docs_exists() {
    let mut checked = 0;
    for (page, words) in shell_commands() {
        if words[0] == "plumbline" {
            let output =
                Command::new(env!("CARGO_BIN_EXE_plumbline")).args(&words[1..]).arg("--help").output().unwrap();
            assert!(
                output.status.success(),
                "{} command {words:?}: {}",
                page.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        } else if words[0].starts_with("scripts/") {
            let script = root().join(&words[0]);
            let metadata = std::fs::metadata(&script)
                .unwrap_or_else(|err| panic!("{} names {}: {err}", page.display(), script.display()));
            let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
            assert!(mode & 0o111 != 0, "{} is executable", script.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "the run, test and component commands were found ({checked})");
}

#[test]
fn every_toml_example_in_the_readme_and_docs_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut validated = Vec::new();
    for (page, text) in pages() {
        for (lang, body) in code_blocks(&text).into_iter().filter(|(lang, _)| lang == "toml") {
            let name = body.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap_or_default();
            let name = name.split(':').next().unwrap().trim().to_string();
            if name == "policy.toml" {
                if let Err(err) = plumbline_node_agent::enforce::policy::Policy::parse(&body) {
                    panic!("{}'s policy.toml is invalid: {err}", page.display());
                }
                validated.push(name);
                continue;
            }
            let command: &[&str] = match name.as_str() {
                "agent.toml" => &["agent", "validate"],
                "aggregator.toml" => &["aggregator", "validate"],
                "query.toml" => &["query", "validate"],
                "plumbline.toml" => &["validate"],
                other => {
                    panic!("{}: a {lang} block must start with `# <component>.toml`, not {other:?}", page.display())
                }
            };
            let path = dir.path().join(&name);
            std::fs::write(&path, &body).unwrap();
            let output = Command::new(env!("CARGO_BIN_EXE_plumbline"))
                .args(command)
                .arg("--config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}'s {name} is invalid: {}",
                page.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            validated.push(name);
        }
    }
    validated.sort();
    validated.dedup();
    assert_eq!(validated, ["agent.toml", "aggregator.toml", "plumbline.toml", "policy.toml", "query.toml"]);
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        words(r#"plumb ps --argv "tests/unit" -o json   # note"#),
        ["plumb", "ps", "--argv", "tests/unit", "-o", "json"]
    );
}
