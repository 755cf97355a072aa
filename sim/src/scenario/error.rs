//! [`ScenarioError`]: what is wrong with a scenario file, where, and what to do about it.

use std::fmt;
use std::ops::Range;

/// A scenario file that cannot be run, with the position of the problem. Boxed: it travels
/// through every parse function's `Result`, and the happy path should stay small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError(Box<ErrorDetail>);

/// What a [`ScenarioError`] says (reach it through `Deref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The file, as given.
    pub file: String,
    /// 1-based line, when the problem has a position.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the problem has a position.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// The offending source line, for the caret display.
    pub snippet: Option<String>,
}

impl std::ops::Deref for ScenarioError {
    type Target = ErrorDetail;

    fn deref(&self) -> &ErrorDetail {
        &self.0
    }
}

impl ScenarioError {
    /// An error about the file as a whole (unreadable, not found).
    #[must_use]
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        ScenarioError(Box::new(ErrorDetail {
            file: file.to_string(),
            line: None,
            column: None,
            message: message.into(),
            hint: None,
            snippet: None,
        }))
    }

    /// An error at byte range `span` of `source`.
    #[must_use]
    pub fn at(file: &str, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        ScenarioError(Box::new(ErrorDetail {
            file: file.to_string(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
            hint: None,
            snippet: Some(
                source[line_start..line_end]
                    .trim_end_matches('\r')
                    .to_string(),
            ),
        }))
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.file, self.message)?;
            }
            _ => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let (Some(snippet), Some(column)) = (&self.snippet, self.column) {
            let line = self.line.unwrap_or(0).to_string();
            write!(f, "\n {line} | {snippet}")?;
            write!(
                f,
                "\n {} | {}^",
                " ".repeat(line.len()),
                " ".repeat(column.saturating_sub(1))
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// The closest candidate to `word` by edit distance, if it is close enough to be a typo.
#[must_use]
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_is_line_and_character_column() {
        // Proves byte spans become 1-based line/column and the snippet is the right line.
        let source = "a = 1\nbé = 2\nc = x\n";
        let at = source.find('x').unwrap();
        let error = ScenarioError::at("f.toml", source, at..at + 1, "bad");
        assert_eq!((error.line, error.column), (Some(3), Some(5)));
        assert_eq!(error.snippet.as_deref(), Some("c = x"));
        let text = error.to_string();
        assert!(text.starts_with("f.toml:3:5: bad"), "{text}");
        assert!(text.contains("    ^"), "{text}");
    }

    #[test]
    fn closest_finds_typos_only() {
        // Proves the hint finder suggests near misses and stays quiet for unrelated words.
        let candidates = ["probability", "period_ms", "point"];
        assert_eq!(closest("probabilty", candidates), Some("probability"));
        assert_eq!(closest("colour", candidates), None);
    }
}
