//! The README's commands and configuration examples stay true: every `plumb`
//! and `plumbline` command in it parses, every script it names exists, and
//! every TOML example validates with the component it is for.

use std::{path::Path, process::Command};

use clap::Parser;

const README: &str = include_str!("../../README.md");

/// (language, body) of every fenced block.
fn code_blocks() -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in README.lines() {
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

fn shell_commands() -> Vec<Vec<String>> {
    code_blocks()
        .into_iter()
        .filter(|(lang, _)| lang == "sh")
        .flat_map(|(_, body)| body.lines().map(words).filter(|w| !w.is_empty()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn every_plumb_command_in_the_readme_parses() {
    let commands: Vec<Vec<String>> =
        shell_commands().into_iter().filter(|w| w[0] == "plumb" || w[0].ends_with("/plumb")).collect();
    assert!(commands.len() >= 6, "the README shows plumb: {commands:?}");
    for words in commands {
        if let Err(err) = plumbline_query::cli::Cli::try_parse_from(&words) {
            panic!("README command {words:?} does not parse: {err}");
        }
    }
}

#[test]
fn every_plumbline_command_and_script_in_the_readme_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    for words in shell_commands() {
        if words[0] == "plumbline" {
            let output =
                Command::new(env!("CARGO_BIN_EXE_plumbline")).args(&words[1..]).arg("--help").output().unwrap();
            assert!(output.status.success(), "README command {words:?}: {}", String::from_utf8_lossy(&output.stderr));
            checked += 1;
        } else if words[0].starts_with("scripts/") {
            let script = root.join(&words[0]);
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
            assert!(mode & 0o111 != 0, "{} is executable", script.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "the README's run, test and component commands were found ({checked})");
}

#[test]
fn every_toml_example_in_the_readme_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut validated = Vec::new();
    for (lang, body) in code_blocks().into_iter().filter(|(lang, _)| lang == "toml") {
        let name = body.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap_or_default();
        let name = name.split(':').next().unwrap().trim().to_string();
        let command: &[&str] = match name.as_str() {
            "agent.toml" => &["agent", "validate"],
            "aggregator.toml" => &["aggregator", "validate"],
            "query.toml" => &["query", "validate"],
            "plumbline.toml" => &["validate"],
            other => panic!("a {lang} block must start with `# <component>.toml`, not {other:?}"),
        };
        let path = dir.path().join(&name);
        std::fs::write(&path, &body).unwrap();
        let output =
            Command::new(env!("CARGO_BIN_EXE_plumbline")).args(command).arg("--config").arg(&path).output().unwrap();
        assert!(output.status.success(), "README's {name} is invalid: {}", String::from_utf8_lossy(&output.stderr));
        validated.push(name);
    }
    validated.sort();
    assert_eq!(validated, ["agent.toml", "aggregator.toml", "plumbline.toml", "query.toml"]);
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(
        words(r#"plumb ps --argv "tests/unit" -o json   # note"#),
        ["plumb", "ps", "--argv", "tests/unit", "-o", "json"]
    );
}
