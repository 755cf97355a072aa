//! Routes: `METHOD /path` with at most one `{placeholder}` for an id, parsed from a
//! description and filled with a percent-encoded id when a request is built.

use toml::Spanned;

use super::Ctx;
use crate::scenario::ScenarioError;

/// Longest route (method, space, path).
const ROUTE_LEN_MAX: usize = 512;

/// A route of the target: method and path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `POST`.
    pub method: http::Method,
    /// The path, with its placeholders as written.
    pub path: String,
    pieces: Vec<PathPiece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PathPiece {
    Text(String),
    /// `{parent}` or `{id}`.
    Id,
}

impl Route {
    /// `METHOD /path` as written.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path with `id` (percent-encoded) in its placeholder.
    pub(super) fn fill(&self, id: Option<&str>) -> String {
        let mut path = String::with_capacity(self.path.len() + 16);
        for piece in &self.pieces {
            match piece {
                PathPiece::Text(text) => path.push_str(text),
                PathPiece::Id => path.push_str(&percent_encode(id.unwrap_or_default())),
            }
        }
        path
    }

    pub(super) fn has_id(&self) -> bool {
        self.pieces.contains(&PathPiece::Id)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Parses `METHOD /path`. With `placeholder`, the path may hold one `{name}` standing for
/// that id (the parent's in a create, the resource's own in a read); without, none.
pub(super) fn route(
    ctx: &Ctx<'_>,
    text: &Spanned<String>,
    placeholder: Option<&str>,
) -> Result<Route, ScenarioError> {
    let value = text.get_ref();
    let usage = "write the method and the path: \"POST /v1/orders\"";
    if value.len() > ROUTE_LEN_MAX {
        return Err(ctx.error(text, format!("a route is at most {ROUTE_LEN_MAX} bytes")));
    }
    let Some((method, path)) = value.split_once(' ') else {
        return Err(ctx
            .error(text, format!("`{value}` is not a route"))
            .with_hint(usage));
    };
    let method = method_of(ctx, text, method)?;
    let path = path.trim();
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ctx
            .error(
                text,
                format!("`{path}` is not a path: it starts with `/` and has no spaces"),
            )
            .with_hint(usage));
    }
    let pieces = pieces(ctx, text, path, placeholder)?;
    let check = path.replace(['{', '}'], "");
    if check.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(ctx.error(text, format!("`{path}` is not a valid request path")));
    }
    Ok(Route {
        method,
        path: path.to_string(),
        pieces,
    })
}

/// The method of a route, one of those a description may use.
fn method_of(
    ctx: &Ctx<'_>,
    text: &Spanned<String>,
    method: &str,
) -> Result<http::Method, ScenarioError> {
    Ok(match method {
        "GET" => http::Method::GET,
        "HEAD" => http::Method::HEAD,
        "POST" => http::Method::POST,
        "PUT" => http::Method::PUT,
        "PATCH" => http::Method::PATCH,
        "DELETE" => http::Method::DELETE,
        other => {
            return Err(ctx
                .error(text, format!("unknown method `{other}`"))
                .with_hint("GET, HEAD, POST, PUT, PATCH or DELETE, in capitals"));
        }
    })
}

/// `path` as text and at most one id placeholder (only with `placeholder`, which says what
/// the id stands for).
fn pieces(
    ctx: &Ctx<'_>,
    text: &Spanned<String>,
    path: &str,
    placeholder: Option<&str>,
) -> Result<Vec<PathPiece>, ScenarioError> {
    let mut pieces = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(PathPiece::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(ctx.error(text, format!("`{{` without `}}` in `{path}`")));
        };
        let name = &rest[open + 1..open + close];
        let Some(meaning) = placeholder else {
            return Err(ctx
                .error(text, format!("`{path}` holds a placeholder `{{{name}}}`"))
                .with_hint(
                    "this route takes no id: a kind without a parent is created at a fixed path",
                ));
        };
        let named = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !named {
            return Err(ctx
                .error(
                    text,
                    format!("`{{{name}}}` in `{path}` is not a placeholder name"),
                )
                .with_hint(format!(
                    "one placeholder, like `{{id}}`, stands for {meaning}"
                )));
        }
        if pieces.contains(&PathPiece::Id) {
            return Err(ctx
                .error(text, format!("`{path}` holds two placeholders"))
                .with_hint(format!("one placeholder stands for {meaning}")));
        }
        pieces.push(PathPiece::Id);
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(ctx.error(text, format!("`}}` without `{{` in `{path}`")));
    }
    if !rest.is_empty() {
        pieces.push(PathPiece::Text(rest.to_string()));
    }
    Ok(pieces)
}
