//! Route path templates in axum syntax (`/v1/charges/{id}`), checked strictly enough that a
//! validated set of routes can never make axum's router panic: whole-segment parameters only,
//! no catch-alls, no braces or percent signs in literal segments, no two routes that would put
//! differently named parameters at one position, the `/__shipsim` prefix reserved.

use std::collections::BTreeSet;

/// Longest path template, in bytes.
pub(crate) const PATH_LEN_MAX: usize = 256;
/// Most segments in a path template.
pub(crate) const PATH_SEGMENTS_MAX: usize = 16;
/// Longest path parameter name.
const PARAM_LEN_MAX: usize = 64;
/// The first segment of the downstream's own admin routes, which user routes may not use.
pub(crate) const RESERVED_SEGMENT: &str = "__shipsim";

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Matches itself.
    Literal(String),
    /// Matches any one segment and binds it to this name.
    Param(String),
}

/// A validated path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses and checks `text`.
    ///
    /// # Errors
    /// A sentence saying what is wrong with the template.
    pub(crate) fn parse(text: &str) -> Result<PathTemplate, String> {
        if text.len() > PATH_LEN_MAX {
            return Err(format!("is longer than {PATH_LEN_MAX} bytes"));
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with `/`".into());
        };
        if rest.is_empty() {
            return Ok(PathTemplate {
                segments: Vec::new(),
            });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() > PATH_SEGMENTS_MAX {
            return Err(format!("has more than {PATH_SEGMENTS_MAX} segments"));
        }
        let mut segments = Vec::with_capacity(parts.len());
        let mut names = BTreeSet::new();
        for part in parts {
            let segment = parse_segment(part)?;
            if let Segment::Param(name) = &segment
                && !names.insert(name.clone())
            {
                return Err(format!("names the parameter `{{{name}}}` twice"));
            }
            segments.push(segment);
        }
        if segments.first() == Some(&Segment::Literal(RESERVED_SEGMENT.into())) {
            return Err(format!(
                "starts with `/{RESERVED_SEGMENT}`, which is reserved for the downstream's admin routes"
            ));
        }
        Ok(PathTemplate { segments })
    }

    /// The names of the template's parameters, in order.
    pub(crate) fn params(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Param(name) => Some(name.clone()),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Why `self` and `other` cannot be routed side by side, if they cannot: axum's router
    /// refuses two differently named parameters at the same position under the same prefix
    /// (`/v1/{a}` and `/v1/{b}/x`).
    pub(crate) fn conflict(&self, other: &PathTemplate) -> Option<String> {
        for (mine, theirs) in self.segments.iter().zip(&other.segments) {
            match (mine, theirs) {
                (Segment::Literal(a), Segment::Literal(b)) if a == b => {}
                (Segment::Param(a), Segment::Param(b)) if a == b => {}
                (Segment::Param(a), Segment::Param(b)) => {
                    return Some(format!(
                        "puts the parameter `{{{a}}}` where another route has `{{{b}}}`; \
                         name them the same"
                    ));
                }
                // Different literals, or a literal beside a parameter: separate branches.
                _ => return None,
            }
        }
        None
    }
}

fn parse_segment(part: &str) -> Result<Segment, String> {
    if part.is_empty() {
        return Err("has an empty segment (`//` or a trailing `/`)".into());
    }
    if let Some(inner) = part.strip_prefix('{') {
        let Some(name) = inner.strip_suffix('}') else {
            return Err(format!(
                "segment `{part}`: a parameter is a whole segment, `{{name}}`"
            ));
        };
        if name.starts_with('*') {
            return Err(format!(
                "segment `{part}`: catch-all parameters are not supported"
            ));
        }
        let valid = !name.is_empty()
            && name.len() <= PARAM_LEN_MAX
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "segment `{part}`: a parameter name is 1 to {PARAM_LEN_MAX} letters, digits \
                 or `_`, not starting with a digit"
            ));
        }
        return Ok(Segment::Param(name.to_string()));
    }
    let valid = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@".contains(c));
    if !valid {
        return Err(format!(
            "segment `{part}`: literal segments take letters, digits and -._~!$&'()+,;=:@ \
             (no braces, `*`, `%`, spaces or non-ASCII)"
        ));
    }
    Ok(Segment::Literal(part.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_into_literals_and_params() {
        // Proves the accepted shapes: the root, literals, and whole-segment parameters, whose
        // names come back in order.
        assert_eq!(
            PathTemplate::parse("/").unwrap().params(),
            Vec::<String>::new()
        );
        let template = PathTemplate::parse("/v1/accounts/{account}/charges/{id}").unwrap();
        assert_eq!(template.params(), vec!["account", "id"]);
    }

    #[test]
    fn malformed_templates_are_refused_with_a_reason() {
        // Proves every shape that could make axum panic or route surprisingly is refused,
        // each with a message naming the problem.
        let cases = [
            ("v1/charges", "must start with `/`"),
            ("/v1//charges", "empty segment"),
            ("/v1/charges/", "empty segment"),
            ("/v1/{id", "whole segment"),
            ("/v1/x{id}", "literal segments"),
            ("/v1/{*rest}", "catch-all"),
            ("/v1/{}", "parameter name"),
            ("/v1/{9a}", "parameter name"),
            ("/v1/{a-b}", "parameter name"),
            ("/v1/{id}/x/{id}", "twice"),
            ("/v1/ch arges", "literal segments"),
            ("/v1/%41", "literal segments"),
            ("/__shipsim/ledger", "reserved"),
        ];
        for (text, expected) in cases {
            let error = PathTemplate::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let long = format!("/{}", "a".repeat(PATH_LEN_MAX));
        assert!(PathTemplate::parse(&long).unwrap_err().contains("longer"));
        let deep = "/a".repeat(PATH_SEGMENTS_MAX + 1);
        assert!(PathTemplate::parse(&deep).unwrap_err().contains("segments"));
    }

    #[test]
    fn differently_named_params_at_one_position_conflict() {
        // Proves the conflict rule: same-named parameters and literal/parameter siblings may
        // share a prefix; differently named parameters at one position may not.
        let parse = |t| PathTemplate::parse(t).unwrap();
        assert!(parse("/v1/{a}").conflict(&parse("/v1/{b}/x")).is_some());
        assert!(
            parse("/v1/{id}")
                .conflict(&parse("/v1/{id}/refunds"))
                .is_none()
        );
        assert!(parse("/v1/{id}").conflict(&parse("/v1/special")).is_none());
        assert!(parse("/v1/x/{a}").conflict(&parse("/v1/y/{b}")).is_none());
    }
}
