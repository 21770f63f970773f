//! The manifest as an ordered tree, written as JSON or YAML by hand.
//!
//! Both writers quote every string and escape everything that is not
//! printable, so that no value a job file holds (a command line, an
//! environment value, a description) can change the document's structure
//! or reach a terminal raw, and so that the JSON is also valid YAML:
//!
//! - JSON: `"` and `\` escaped, and `\uXXXX` for C0 and C1 control
//!   characters, DEL, U+2028/U+2029 (line breaks to YAML 1.1 and to
//!   JavaScript), U+FEFF and noncharacters; everything else as it is.
//! - YAML: block style, every string a double-quoted scalar (so `no`, `on`,
//!   `1e3`, `~` or `0o17` stay strings under YAML 1.1 and 1.2 alike) with
//!   the same escapes (`\xNN`, `\uXXXX`, `\L`, `\P`, `\N` for U+0085), and
//!   map keys bare only when they are plain words of letters and digits.
//!
//! The tests read both back with independent parsers (serde_json, PyYAML)
//! and compare them (tests/export_k8s.rs).

use std::fmt::Write as _;

/// One value of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Node>),
    /// Keys in the order written.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A string node.
    pub fn str(value: impl Into<String>) -> Node {
        Node::Str(value.into())
    }

    /// A map node from `(key, value)` pairs, in order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Node)>) -> Node {
        Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value at `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// JSON, two spaces per level, ending with a line break.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        json(self, 0, &mut out);
        out.push('\n');
        out
    }

    /// A YAML document (block style), ending with a line break.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Node::Map(entries) if !entries.is_empty() => yaml_map(entries, 0, &mut out),
            Node::List(items) if !items.is_empty() => yaml_list(items, 0, &mut out),
            scalar => {
                yaml_inline(scalar, &mut out);
                out.push('\n');
            }
        }
        out
    }
}

/// Whether a character is written as an escape rather than as itself: it
/// is not printable (YAML's `c-printable`), or some reader treats it as a
/// line break or a byte-order mark.
fn must_escape(c: char) -> bool {
    let code = u32::from(c);
    code < 0x20
        || (0x7f..=0x9f).contains(&code)
        || c == '\u{2028}'
        || c == '\u{2029}'
        || c == '\u{feff}'
        || (0xfffe..=0xffff).contains(&code)
        || (0xfdd0..=0xfdef).contains(&code)
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if must_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn json(node: &Node, level: usize, out: &mut String) {
    match node {
        Node::Str(s) => json_string(s, out),
        Node::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::List(items) if items.is_empty() => out.push_str("[]"),
        Node::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Node::List(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(level + 1, out);
                json(item, level + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(level, out);
            out.push(']');
        }
        Node::Map(entries) => {
            out.push_str("{\n");
            for (i, (key, value)) in entries.iter().enumerate() {
                indent(level + 1, out);
                json_string(key, out);
                out.push_str(": ");
                json(value, level + 1, out);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            indent(level, out);
            out.push('}');
        }
    }
}

fn yaml_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if must_escape(c) && u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if must_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A key written bare: a word of ASCII letters and digits that YAML 1.1
/// does not read as anything but a string.
fn yaml_key(key: &str, out: &mut String) {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric())
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        out.push_str(key);
    } else {
        yaml_string(key, out);
    }
}

/// A value that fits on its key's line: a scalar or an empty collection.
fn yaml_inline(node: &Node, out: &mut String) -> bool {
    match node {
        Node::Str(s) => yaml_string(s, out),
        Node::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::List(items) if items.is_empty() => out.push_str("[]"),
        Node::Map(entries) if entries.is_empty() => out.push_str("{}"),
        _ => return false,
    }
    true
}

fn yaml_map(entries: &[(String, Node)], level: usize, out: &mut String) {
    for (key, value) in entries {
        indent(level, out);
        yaml_key(key, out);
        out.push(':');
        yaml_value(value, level, out);
    }
}

/// Writes what follows `key:` or `- `: an inline value and a line break,
/// or a line break and a nested block.
fn yaml_value(value: &Node, level: usize, out: &mut String) {
    let mut inline = String::new();
    if yaml_inline(value, &mut inline) {
        out.push(' ');
        out.push_str(&inline);
        out.push('\n');
        return;
    }
    out.push('\n');
    match value {
        Node::Map(entries) => yaml_map(entries, level + 1, out),
        Node::List(items) => yaml_list(items, level + 1, out),
        _ => {}
    }
}

fn yaml_list(items: &[Node], level: usize, out: &mut String) {
    for item in items {
        indent(level, out);
        out.push('-');
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                // The first entry on the dash's line, the rest under it.
                out.push(' ');
                let (key, value) = &entries[0];
                yaml_key(key, out);
                out.push(':');
                yaml_value(value, level + 1, out);
                yaml_map(&entries[1..], level + 1, out);
            }
            other => yaml_value(other, level, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Node {
        Node::map([
            ("apiVersion", Node::str("batch/v1")),
            ("count", Node::Int(3)),
            ("on", Node::Bool(true)),
            ("empty", Node::map(Vec::<(String, Node)>::new())),
            ("none", Node::List(vec![])),
            (
                "items",
                Node::List(vec![
                    Node::map([
                        ("name", Node::str("a")),
                        ("args", Node::List(vec![Node::str("x"), Node::str("no")])),
                        ("deep", Node::map([("k", Node::Int(-1))])),
                    ]),
                    Node::str("plain"),
                    Node::List(vec![Node::str("nested")]),
                ]),
            ),
            ("tag.jobctl/x", Node::str("")),
        ])
    }

    #[test]
    fn yaml_is_block_style_with_every_string_quoted() {
        assert_eq!(
            sample().to_yaml(),
            "apiVersion: \"batch/v1\"\n\
             count: 3\n\
             \"on\": true\n\
             empty: {}\n\
             none: []\n\
             items:\n  \
               - name: \"a\"\n    \
                 args:\n      \
                   - \"x\"\n      \
                   - \"no\"\n    \
                 deep:\n      \
                   k: -1\n  \
               - \"plain\"\n  \
               -\n    \
                 - \"nested\"\n\
             \"tag.jobctl/x\": \"\"\n"
        );
    }

    #[test]
    fn json_keeps_the_order() {
        assert_eq!(
            Node::map([
                ("b", Node::Int(1)),
                ("a", Node::List(vec![Node::Bool(false)]))
            ])
            .to_json(),
            "{\n  \"b\": 1,\n  \"a\": [\n    false\n  ]\n}\n"
        );
        assert_eq!(Node::List(vec![]).to_json(), "[]\n");
    }

    #[test]
    fn strings_are_escaped_for_both_readers() {
        let hostile = "a\"b\\c\nd\te\r\u{1b}[31m\u{7f}\u{85}\u{9b}\u{2028}\u{2029}\u{feff}\u{ffff} é 🚀 $x #y: z";
        let mut json = String::new();
        json_string(hostile, &mut json);
        assert_eq!(
            json,
            "\"a\\\"b\\\\c\\nd\\te\\r\\u001b[31m\\u007f\\u0085\\u009b\\u2028\\u2029\\ufeff\\uffff é 🚀 $x #y: z\""
        );
        let mut yaml = String::new();
        yaml_string(hostile, &mut yaml);
        assert_eq!(
            yaml,
            "\"a\\\"b\\\\c\\nd\\te\\r\\x1b[31m\\x7f\\N\\x9b\\L\\P\\ufeff\\uffff é 🚀 $x #y: z\""
        );
        // Nothing but printable characters is left raw.
        assert!(!json.chars().chain(yaml.chars()).any(must_escape));
    }

    #[test]
    fn keys_are_bare_only_when_plain_words() {
        let key = |k: &str| {
            let mut out = String::new();
            yaml_key(k, &mut out);
            out
        };
        assert_eq!(key("apiVersion"), "apiVersion");
        assert_eq!(key("no"), "\"no\"");
        assert_eq!(key("Y"), "\"Y\"");
        assert_eq!(key("jobctl/team"), "\"jobctl/team\"");
        assert_eq!(key("1a"), "\"1a\"");
        assert_eq!(key(""), "\"\"");
    }

    #[test]
    fn scalars_alone() {
        assert_eq!(Node::str("x").to_yaml(), "\"x\"\n");
        assert_eq!(Node::map(Vec::<(String, Node)>::new()).to_yaml(), "{}\n");
    }
}
