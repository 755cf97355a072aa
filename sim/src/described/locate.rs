//! Where a value sits in a TOML file, by its path (`kind[1].body.weight`,
//! `effects[0].response/data/id`): so that problems found after deserialising (a template's
//! placeholder, a downstream spec's field) are reported at their line and column too.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathStep {
    Key(String),
    Index(usize),
}

/// The span of the value at `path` in TOML `source`, or of the deepest part of the path
/// that exists; `None` when the source does not parse or the path's first step is absent.
pub(crate) fn span_of(source: &str, path: &[PathStep]) -> Option<Range<usize>> {
    let document = DeValue::Table(DeTable::parse(source).ok()?.into_inner());
    let mut span: Option<Range<usize>> = None;
    let mut value: &DeValue<'_> = &document;
    for step in path {
        let next = match step {
            PathStep::Key(key) => value.get(key.as_str()),
            PathStep::Index(i) => value.get(*i),
        };
        let Some(found) = next else { break };
        span = Some(found.span());
        value = found.get_ref();
    }
    span
}

/// Parses a field path as a downstream spec's errors name it: dotted keys with `[index]`,
/// optionally followed by a JSON pointer into a template (`effects[0].response/data/id`).
pub(crate) fn parse_field(field: &str) -> Vec<PathStep> {
    let (head, pointer) = match field.find('/') {
        Some(at) => (&field[..at], Some(&field[at + 1..])),
        None => (field, None),
    };
    let mut steps = Vec::new();
    for part in head.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        if name_end > 0 {
            steps.push(PathStep::Key(rest[..name_end].to_string()));
        }
        rest = &rest[name_end..];
        while let Some(open) = rest.strip_prefix('[') {
            let Some(close) = open.find(']') else { break };
            if let Ok(index) = open[..close].parse() {
                steps.push(PathStep::Index(index));
            }
            rest = &open[close + 1..];
        }
    }
    if let Some(pointer) = pointer {
        for token in pointer.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            steps.push(match token.parse::<usize>() {
                Ok(index) => PathStep::Index(index),
                Err(_) => PathStep::Key(token),
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_values() {
        // Proves a dotted, indexed path with a pointer tail finds the value's span, and a
        // path that leaves the document stops at the deepest part that exists.
        let source = "name = \"bank\"\n[[effects]]\npath = \"/a\"\n[[effects]]\npath = \"/b\"\nresponse = { data = { id = \"{{nope}}\" } }\n";
        let span = span_of(source, &parse_field("effects[1].response/data/id")).unwrap();
        assert_eq!(&source[span], "\"{{nope}}\"");
        let span = span_of(source, &parse_field("effects[1].path")).unwrap();
        assert_eq!(&source[span], "\"/b\"");
        let span = span_of(source, &parse_field("effects[1].missing")).unwrap();
        let line = source[..span.start].matches('\n').count() + 1;
        assert!(
            (4..=5).contains(&line),
            "falls back to the second table: {span:?}"
        );
        assert_eq!(span_of(source, &parse_field("auth.header")), None);
        assert_eq!(span_of("not toml = = =", &parse_field("name")), None);
    }
}
