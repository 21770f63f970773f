//! Decoding a spanned TOML document by hand, collecting every problem.
//!
//! serde stops at the first error and loses positions for semantic checks, so
//! job and config files are parsed into toml's spanned tree ([`DeTable`]) and
//! walked with a [`TableReader`]: each typed getter checks the value, records
//! a [`Diagnostic`](crate::diag::Diagnostic) with the key and its position when
//! it is wrong, and lets decoding carry on. Keys that nobody asked for are
//! reported as unknown, with a "did you mean" suggestion.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::Diagnostics;
use crate::duration::Timespan;
use crate::size::ByteSize;

/// A decoded value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Sp { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sp<U> {
        Sp {
            value: f(self.value),
            span: self.span,
        }
    }
}

/// Parses a whole document, reporting a syntax error as a diagnostic.
pub fn parse_document<'i>(
    text: &'i str,
    diags: &mut Diagnostics<'_>,
) -> Option<Spanned<DeTable<'i>>> {
    match DeTable::parse(text) {
        Ok(table) => Some(table),
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            let message = err.message().trim().to_string();
            diags.push(
                crate::diag::Severity::Error,
                Some(span),
                None,
                format!("not valid TOML: {message}"),
                Some(toml_hint(&message).to_string()),
            );
            None
        }
    }
}

/// What to do about a TOML syntax error, by the parser's message.
fn toml_hint(message: &str) -> &'static str {
    if message.contains("must be quoted") || message.contains("invalid string") {
        "write text in quotes: \"…\" or '…'"
    } else if message.contains("literal string") || message.contains("basic string") {
        "a string ends on its own line with the quote it starts with: \"…\" or '…' \
         (\"\"\"…\"\"\" or '''…''' for text over several lines)"
    } else {
        "see https://toml.io for the syntax"
    }
}

/// The name of a TOML value's type, for messages.
pub fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Reads the keys of one table, checking each against what is allowed.
pub struct TableReader<'t, 'i> {
    prefix: String,
    table: &'t DeTable<'i>,
}

impl<'t, 'i> TableReader<'t, 'i> {
    /// A reader for a table at `prefix` (empty for the document root). Reports
    /// every key not in `known` as unknown (with a suggestion from `known` and
    /// from `aliases`, pairs of a common wrong name and the hint for it).
    pub fn new(
        prefix: &str,
        table: &'t DeTable<'i>,
        known: &[&str],
        aliases: &[(&str, &str)],
        diags: &mut Diagnostics<'_>,
    ) -> Self {
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                let hint = aliases
                    .iter()
                    .find(|(alias, _)| *alias == name)
                    .map(|(_, hint)| hint.to_string())
                    .or_else(|| suggest(name, known).map(|s| format!("did you mean `{s}`?")))
                    .or_else(|| {
                        Some(format!(
                            "remove it; the allowed keys here are: {}",
                            known.join(", ")
                        ))
                    });
                diags.error(key.span(), &join_key(prefix, name), "unknown key", hint);
            }
        }
        TableReader {
            prefix: prefix.to_string(),
            table,
        }
    }

    /// The dotted path of a key in this table.
    pub fn path(&self, key: &str) -> String {
        join_key(&self.prefix, key)
    }

    /// The raw value of a key, if present.
    pub fn raw(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    /// The span of a key's name, for messages about the key as a whole.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    fn wrong_type(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        expected: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) {
        diags.error(
            value.span(),
            &self.path(key),
            format!("expected {expected}, found {}", type_name(value.get_ref())),
            Some(format!("write it like: {key} = {example}")),
        );
    }

    pub fn string(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<String>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), value.span())),
            _ => {
                self.wrong_type(key, value, "a string", example, diags);
                None
            }
        }
    }

    pub fn bool(&self, key: &str, diags: &mut Diagnostics<'_>) -> Option<Sp<bool>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, value.span())),
            _ => {
                self.wrong_type(key, value, "true or false", "true", diags);
                None
            }
        }
    }

    pub fn integer(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<i64>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Integer(i) => match parse_integer(i.as_str(), i.radix()) {
                Some(n) => Some(Sp::new(n, value.span())),
                None => {
                    diags.error(
                        value.span(),
                        &self.path(key),
                        "integer is out of range",
                        None,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(key, value, "an integer", example, diags);
                None
            }
        }
    }

    /// A number; integers are accepted where a float is expected.
    pub fn float(&self, key: &str, example: &str, diags: &mut Diagnostics<'_>) -> Option<Sp<f64>> {
        let value = self.raw(key)?;
        let parsed = match value.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => parse_integer(i.as_str(), i.radix()).map(|n| n as f64),
            _ => {
                self.wrong_type(key, value, "a number", example, diags);
                return None;
            }
        };
        match parsed {
            Some(f) if f.is_finite() => Some(Sp::new(f, value.span())),
            _ => {
                diags.error(
                    value.span(),
                    &self.path(key),
                    "expected a finite number",
                    Some(format!("write it like: {key} = {example}")),
                );
                None
            }
        }
    }

    /// A string or an array of strings; always returns a list.
    pub fn string_list(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Vec<Sp<String>> {
        let Some(value) = self.raw(key) else {
            return Vec::new();
        };
        match value.get_ref() {
            DeValue::String(s) => vec![Sp::new(s.to_string(), value.span())],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Sp::new(s.to_string(), item.span())),
                        other => diags.error(
                            item.span(),
                            &format!("{}[{index}]", self.path(key)),
                            format!("expected a string, found {}", type_name(other)),
                            Some(format!("quote every element: {key} = {example}")),
                        ),
                    }
                }
                out
            }
            _ => {
                self.wrong_type(
                    key,
                    value,
                    "a string or an array of strings",
                    example,
                    diags,
                );
                Vec::new()
            }
        }
    }

    /// An array of strings (a lone string is a type error: used for argv).
    pub fn string_array(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<Vec<Sp<String>>>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Array(_) => Some(Sp::new(self.string_list(key, example, diags), value.span())),
            _ => {
                self.wrong_type(key, value, "an array of strings", example, diags);
                None
            }
        }
    }

    pub fn duration(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<Timespan>> {
        if let Some(value) = self.raw(key)
            && let DeValue::Integer(n) = value.get_ref()
        {
            // A bare number: say which unit to write rather than guess it.
            diags.error(
                value.span(),
                &self.path(key),
                "expected a duration string, found an integer",
                Some(format!(
                    "durations carry their unit: {key} = \"{}s\" for seconds, or e.g. {key} = {example}",
                    n.as_str()
                )),
            );
            return None;
        }
        let text = self.string(key, example, diags)?;
        match Timespan::parse(&text.value) {
            Ok(span) => Some(Sp::new(span, text.span)),
            Err(err) => {
                diags.error(
                    text.span,
                    &self.path(key),
                    format!("invalid duration \"{}\": {err}", text.value),
                    Some(format!("use systemd's style, e.g. {key} = {example}")),
                );
                None
            }
        }
    }

    pub fn size(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<ByteSize>> {
        let text = self.string(key, example, diags)?;
        match ByteSize::parse(&text.value) {
            Ok(size) => Some(Sp::new(size, text.span)),
            Err(err) => {
                diags.error(
                    text.span,
                    &self.path(key),
                    format!("invalid size \"{}\": {err}", text.value),
                    Some(format!("e.g. {key} = {example}")),
                );
                None
            }
        }
    }

    /// A sub-table; reports a type error for anything else.
    pub fn table(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> Option<Sp<&'t DeTable<'i>>> {
        let value = self.raw(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(Sp::new(t, value.span())),
            _ => {
                self.wrong_type(key, value, "a table", example, diags);
                None
            }
        }
    }

    /// A table of scalar values as strings (strings, integers, floats and
    /// booleans are accepted and written as they appear), e.g. `environment`.
    pub fn scalar_map(
        &self,
        key: &str,
        example: &str,
        diags: &mut Diagnostics<'_>,
    ) -> BTreeMap<String, Sp<String>> {
        let mut out = BTreeMap::new();
        let Some(table) = self.table(key, example, diags) else {
            return out;
        };
        for (name, value) in table.value.iter() {
            let path = format!("{}.{}", self.path(key), name.get_ref());
            let text = match value.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => match parse_integer(i.as_str(), i.radix()) {
                    Some(n) => n.to_string(),
                    None => {
                        diags.error(value.span(), &path, "integer is out of range", None);
                        continue;
                    }
                },
                DeValue::Float(f) => f.as_str().to_string(),
                DeValue::Boolean(b) => b.to_string(),
                other => {
                    diags.error(
                        value.span(),
                        &path,
                        format!("expected a string, found {}", type_name(other)),
                        Some(format!("values of `{key}` are strings, e.g. {example}")),
                    );
                    continue;
                }
            };
            out.insert(name.get_ref().to_string(), Sp::new(text, value.span()));
        }
        out
    }

    /// A calendar date: a TOML local date (`2027-03-31`) or a string holding one.
    pub fn date(&self, key: &str, diags: &mut Diagnostics<'_>) -> Option<Sp<jiff::civil::Date>> {
        let value = self.raw(key)?;
        let hint = || Some(format!("write a date: {key} = 2027-03-31"));
        let parsed = match value.get_ref() {
            DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                dt.date.and_then(|d| {
                    jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8).ok()
                })
            }
            DeValue::Datetime(_) => {
                diags.error(
                    value.span(),
                    &self.path(key),
                    "expected a date without a time",
                    hint(),
                );
                return None;
            }
            DeValue::String(s) => s.parse::<jiff::civil::Date>().ok(),
            other => {
                diags.error(
                    value.span(),
                    &self.path(key),
                    format!("expected a date, found {}", type_name(other)),
                    hint(),
                );
                return None;
            }
        };
        match parsed {
            Some(date) => Some(Sp::new(date, value.span())),
            None => {
                diags.error(
                    value.span(),
                    &self.path(key),
                    "not a valid calendar date",
                    hint(),
                );
                None
            }
        }
    }
}

fn parse_integer(digits: &str, radix: u32) -> Option<i64> {
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    let (negative, body) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, cleaned.trim_start_matches('+').to_string()),
    };
    let body = match radix {
        16 => body.trim_start_matches("0x").to_string(),
        8 => body.trim_start_matches("0o").to_string(),
        2 => body.trim_start_matches("0b").to_string(),
        _ => body,
    };
    let magnitude = i64::from_str_radix(&body, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `prefix.key`, or `key` at the root.
pub fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The known name closest to `name`, if it is close enough to be a typo.
pub fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lowered = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (*k, strsim::jaro_winkler(&lowered, k)))
        .filter(|(_, score)| *score >= 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_syntax_hints_fit_the_mistake() {
        let hint = |text: &str| {
            let mut diags = crate::diag::Diagnostics::new("x.toml", text);
            assert!(
                parse_document(text, &mut diags).is_none(),
                "{text:?} parsed"
            );
            diags.into_vec()[0].hint.clone().unwrap()
        };
        // Single quotes are TOML: the hint never says they are not.
        let single = hint("shell = 'echo hi\n");
        assert!(!single.contains("double quotes"), "{single}");
        assert!(
            single.contains("'…'") && single.contains("ends on its own line"),
            "{single}"
        );
        assert!(hint("shell = \"echo hi\n").contains("ends on its own line"));
        assert_eq!(
            hint("shell = echo hi\n"),
            "write text in quotes: \"…\" or '…'"
        );
        assert_eq!(hint("[a\n"), "see https://toml.io for the syntax");
    }

    #[test]
    fn suggests_close_keys_only() {
        let known = ["command", "shell", "description", "working_directory"];
        assert_eq!(suggest("comand", &known), Some("command"));
        assert_eq!(suggest("Description", &known), Some("description"));
        assert_eq!(
            suggest("working-directory", &known),
            Some("working_directory")
        );
        assert_eq!(suggest("zzz", &known), None);
    }

    #[test]
    fn integers_in_every_radix() {
        assert_eq!(parse_integer("1_000", 10), Some(1000));
        assert_eq!(parse_integer("-5", 10), Some(-5));
        assert_eq!(parse_integer("0xff", 16), Some(255));
        assert_eq!(parse_integer("0o17", 8), Some(15));
        assert_eq!(parse_integer("0b101", 2), Some(5));
        assert_eq!(parse_integer("99999999999999999999", 10), None);
    }
}
