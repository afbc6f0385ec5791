//! `docs/configuration.md`, rendered from the configuration structs
//! themselves: their JSON schema (`schemars`) gives each key's type and doc
//! comment, and each component's `Default`, serialized, gives its defaults.
//! The test fails when the checked-in page differs from what the structs say;
//! `PLUMBLINE_BLESS=1` rewrites it.

use std::{collections::HashMap, fmt::Write, path::Path};

use serde_json::{Map, Value};

/// The command that rewrites the page, as the failing test prints it.
const BLESS: &str = "PLUMBLINE_BLESS=1 cargo test -p plumbline --bin plumbline configuration_reference";

struct Component {
    title: &'static str,
    file: &'static str,
    command: &'static str,
    env_prefix: &'static str,
    schema: Value,
    defaults: Value,
}

fn component<T: schemars::JsonSchema + serde::Serialize + Default>(
    title: &'static str,
    file: &'static str,
    command: &'static str,
    env_prefix: &'static str,
) -> Component {
    Component {
        title,
        file,
        command,
        env_prefix,
        schema: serde_json::to_value(schemars::schema_for!(T)).unwrap(),
        defaults: serde_json::to_value(T::default()).unwrap(),
    }
}

fn components() -> Vec<Component> {
    vec![
        component::<plumbline_node_agent::AgentConfig>(
            "Node agent",
            "agent.toml",
            "plumbline agent run",
            plumbline_node_agent::config::ENV_PREFIX,
        ),
        component::<plumbline_aggregator::AggregatorConfig>(
            "Aggregator",
            "aggregator.toml",
            "plumbline aggregator run",
            plumbline_aggregator::config::ENV_PREFIX,
        ),
        component::<plumbline_query::QueryConfig>(
            "Query service",
            "query.toml",
            "plumbline query run",
            plumbline_query::config::ENV_PREFIX,
        ),
        component::<crate::embedded::EmbeddedConfig>(
            "Single host",
            "plumbline.toml",
            "plumbline run",
            crate::embedded::ENV_PREFIX,
        ),
    ]
}

/// The whole page.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str(
        "# Configuration reference\n\n\
         <!-- Generated from the configuration structs (`*/src/config.rs`); do not edit.\n     \
         Regenerate: ",
    );
    out.push_str(BLESS);
    out.push_str(
        " -->\n\n\
         Every component reads a TOML file (`--config FILE`, optional: defaults alone are valid), then environment\n\
         variables with its prefix, the key's path in capitals with tables joined by `__`\n\
         (`PLUMBLINE_AGGREGATOR_PIPELINE__GPU__HANG_AFTER_MS=60000`). An unknown key, in the file or the environment,\n\
         is an error that names it. `plumbline <component> validate --config FILE` (`plumbline validate` for\n\
         `plumbline run`) checks a file and prints it with every default filled in.\n\n",
    );
    let components = components();
    for c in &components {
        let anchor = c.file.trim_end_matches(".toml");
        writeln!(out, "- [{}: `{}`](#{anchor})", c.title, c.file).unwrap();
    }
    out.push('\n');
    let mut rendered = HashMap::new();
    for c in &components {
        let anchor = c.file.trim_end_matches(".toml");
        writeln!(out, "<a id=\"{anchor}\"></a>\n\n## {}: `{}`\n", c.title, c.file).unwrap();
        writeln!(out, "`{} --config {}`; environment prefix `{}`.\n", c.command, c.file, c.env_prefix).unwrap();
        let mut page = Page { defs: defs(&c.schema), out: &mut out, rendered: &mut rendered, file: c.file };
        page.table("", "", &c.schema, Some(&c.defaults));
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn defs(schema: &Value) -> Map<String, Value> {
    schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default()
}

struct Page<'a> {
    defs: Map<String, Value>,
    out: &'a mut String,
    /// (type, defaults) already rendered → where, so a section shared by two
    /// components is described once.
    rendered: &'a mut HashMap<String, (String, String)>,
    file: &'static str,
}

impl Page<'_> {
    /// The schema a `$ref` points to (or the schema itself).
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => &self.defs[r.trim_start_matches("#/$defs/")],
            None => schema,
        }
    }

    fn is_table(&self, schema: &Value) -> bool {
        let schema = self.resolve(schema);
        schema.get("properties").is_some() || variants(schema).is_some()
    }

    /// `[[key]]`: an array of tables.
    fn table_items<'s>(&'s self, schema: &'s Value) -> Option<&'s Value> {
        let items = self.resolve(schema).get("items")?;
        self.resolve(items).get("properties").map(|_| items)
    }

    /// One table: its own keys in a Markdown table, then its sub-tables.
    fn table(&mut self, path: &str, description: &str, schema: &Value, defaults: Option<&Value>) {
        // Two sections are the same when their type is (its `$ref`) and so
        // are their defaults: sections whose defaults are all unset differ
        // only there.
        let type_ref = schema.get("$ref").and_then(Value::as_str).unwrap_or_default().to_string();
        let schema = self.resolve(schema).clone();
        let heading = if path.is_empty() { "Top level".to_string() } else { format!("`[{path}]`") };
        if !path.is_empty() {
            let defaults_text = defaults.map(Value::to_string).unwrap_or_default();
            let key = format!("{type_ref}{}{defaults_text}", schema_name(&schema));
            if let Some((file, seen)) = self.rendered.get(&key) {
                let anchor = anchor(file, seen);
                writeln!(
                    self.out,
                    "### {heading}\n\nThe same keys and defaults as [`[{seen}]` of {file}](#{anchor}).\n"
                )
                .unwrap();
                return;
            }
            self.rendered.insert(key, (self.file.to_string(), path.to_string()));
            writeln!(self.out, "<a id=\"{}\"></a>\n\n### {heading}\n", anchor(self.file, path)).unwrap();
        }
        let description = if description.is_empty() { text(&schema) } else { one_line(description) };
        let description = without_heading(&description, path);
        if !description.is_empty() {
            writeln!(self.out, "{description}\n").unwrap();
        }
        if let Some(variants) = variants(&schema) {
            let chosen = defaults.and_then(|d| d.get("kind")).and_then(Value::as_str);
            for (kind, variant) in variants {
                let default = if Some(kind) == chosen { " (the default)" } else { "" };
                let text = text(variant);
                let text = if text.is_empty() { String::new() } else { format!(": {text}") };
                writeln!(self.out, "`kind = \"{kind}\"`{default}{text}\n").unwrap();
                let defaults = if Some(kind) == chosen { defaults } else { None };
                self.rows(variant, defaults, &["kind"]);
            }
            return;
        }
        let nested = self.rows(&schema, defaults, &[]);
        for (key, property) in nested {
            let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            let defaults = defaults.and_then(|d| d.get(&key));
            let description = text(&property);
            if let Some(items) = self.table_items(&property) {
                let items = items.clone();
                self.array_of_tables(&path, &description, &items);
            } else {
                self.table(&path, &description, &property, defaults);
            }
        }
    }

    fn array_of_tables(&mut self, path: &str, description: &str, items: &Value) {
        writeln!(self.out, "<a id=\"{}\"></a>\n\n### `[[{path}]]`\n", anchor(self.file, path)).unwrap();
        if !description.is_empty() {
            writeln!(self.out, "{description} Each entry:\n").unwrap();
        }
        let items = self.resolve(items).clone();
        let nested = self.rows(&items, None, &[]);
        assert!(nested.is_empty(), "{path}: tables inside an array of tables are not rendered");
    }

    /// The Markdown table of a table's plain keys; returns its sub-tables.
    fn rows(&mut self, schema: &Value, defaults: Option<&Value>, skip: &[&str]) -> Vec<(String, Value)> {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
        let required: Vec<&str> =
            schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut nested = Vec::new();
        let mut rows = String::new();
        for (key, property) in properties {
            if skip.contains(&key.as_str()) {
                continue;
            }
            if self.is_table(property) || self.table_items(property).is_some() {
                nested.push((key.clone(), property.clone()));
                continue;
            }
            let default = match defaults.and_then(|d| d.get(key)).or_else(|| property.get("default")) {
                Some(value) => value_text(value),
                None if required.contains(&key.as_str()) => "required".to_string(),
                None => "unset".to_string(),
            };
            let description = text(property);
            let description = if description.is_empty() { text(self.resolve(property)) } else { description };
            writeln!(rows, "| `{key}` | {} | {default} | {} |", self.type_text(property), cell(&description)).unwrap();
        }
        if !rows.is_empty() {
            writeln!(self.out, "| key | type | default | description |\n|---|---|---|---|\n{rows}").unwrap();
        }
        nested
    }

    fn type_text(&self, schema: &Value) -> String {
        let resolved = self.resolve(schema);
        if let Some(values) = resolved.get("enum").and_then(Value::as_array) {
            return values.iter().map(value_text).collect::<Vec<_>>().join(" \\| ");
        }
        if let Some(one_of) = resolved.get("oneOf").and_then(Value::as_array) {
            let consts: Option<Vec<String>> = one_of.iter().map(|v| v.get("const").map(value_text)).collect();
            if let Some(consts) = consts {
                return consts.join(" \\| ");
            }
        }
        let types: Vec<&str> = match resolved.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let optional = types.contains(&"null");
        let base = match types.iter().find(|t| **t != "null") {
            Some(&"array") => format!("array of {}", self.type_text(resolved.get("items").unwrap_or(&Value::Null))),
            Some(&"object") => match resolved.get("additionalProperties") {
                Some(value @ Value::Object(_)) => format!("table of {}", self.type_text(value)),
                _ => "table".to_string(),
            },
            Some(t) => t.to_string(),
            None => "any".to_string(),
        };
        if optional {
            format!("{base}, optional")
        } else {
            base
        }
    }
}

/// The variants of an internally tagged enum (`kind = "..."`).
fn variants(schema: &Value) -> Option<Vec<(&str, &Value)>> {
    let one_of = schema.get("oneOf")?.as_array()?;
    one_of.iter().map(|v| Some((v.pointer("/properties/kind/const")?.as_str()?, v))).collect::<Option<Vec<_>>>()
}

fn schema_name(schema: &Value) -> String {
    schema.get("title").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn anchor(file: &str, path: &str) -> String {
    format!("{}-{}", file.trim_end_matches(".toml"), path.replace(['.', '_'], "-"))
}

fn text(schema: &Value) -> String {
    one_line(schema.get("description").and_then(Value::as_str).unwrap_or_default())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "`[batch]`: how events are grouped" under the heading `[batch]` reads
/// "How events are grouped".
fn without_heading(text: &str, path: &str) -> String {
    match text.strip_prefix(&format!("`[{path}]`: ")) {
        Some(rest) => {
            let mut chars = rest.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
        None => text.to_string(),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A default as TOML would write it.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_string(),
        Value::String(s) if s.is_empty() => "`\"\"`".to_string(),
        Value::Array(a) if a.is_empty() => "`[]`".to_string(),
        Value::Object(o) if o.is_empty() => "`{}`".to_string(),
        Value::String(s) => format!("`\"{s}\"`"),
        Value::Array(a) => {
            format!("`[{}]`", a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "))
        }
        other => format!("`{other}`"),
    }
}

#[test]
fn configuration_reference_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let rendered = render();
    if std::env::var_os("PLUMBLINE_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != rendered {
        let line = checked_in
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| checked_in.lines().count().min(rendered.lines().count()) + 1, |i| i + 1);
        panic!(
            "docs/configuration.md differs from the configuration structs (first at line {line}).\n\
             Regenerate it with:\n    {BLESS}"
        );
    }
}
