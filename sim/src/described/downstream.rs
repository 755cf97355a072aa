//! `[[downstream]]`: the simulated third parties a described target calls, each a
//! `shipsim downstream` spec file, and reading those spec files.

use std::path::{Path, PathBuf};

use shipsim_system::downstream::DownstreamSpec;

use toml::Spanned;

use super::raw::RawDownstream;
use super::{Ctx, locate, read_text, toml_error};
use crate::scenario::ScenarioError;

/// Most downstreams one description names.
const DOWNSTREAMS_MAX: usize = 16;

/// A downstream the target calls: a `shipsim downstream` spec, and where it is served.
#[derive(Clone, Debug, PartialEq)]
pub struct DownstreamRef {
    /// Its host name (the spec's name): scenario faults name it (`target = "carrier"`).
    pub name: String,
    /// The spec.
    pub spec: DownstreamSpec,
    /// The spec file, as resolved.
    pub spec_file: PathBuf,
    /// The spec file as written.
    pub(super) spec_written: String,
    /// Where it is served (or a fault proxy in front of it); the command line may say
    /// instead.
    pub url: Option<String>,
}

/// Every `[[downstream]]`, in order, each with a name of its own.
pub(super) fn downstreams(
    ctx: &Ctx<'_>,
    base: &Path,
    raw: &[Spanned<RawDownstream>],
) -> Result<Vec<DownstreamRef>, ScenarioError> {
    if raw.len() > DOWNSTREAMS_MAX {
        return Err(ctx.error(
            &raw[DOWNSTREAMS_MAX],
            format!("a description names at most {DOWNSTREAMS_MAX} downstreams"),
        ));
    }
    let mut downstreams: Vec<DownstreamRef> = Vec::with_capacity(raw.len());
    for entry in raw {
        let downstream = downstream(ctx, base, entry.get_ref())?;
        if downstreams.iter().any(|d| d.name == downstream.name) {
            return Err(ctx.error(
                &entry.get_ref().spec,
                format!("two downstreams are named `{}`", downstream.name),
            ));
        }
        downstreams.push(downstream);
    }
    Ok(downstreams)
}

/// One `[[downstream]]`: its spec file, read and checked, and where it is served.
fn downstream(
    ctx: &Ctx<'_>,
    base: &Path,
    raw: &RawDownstream,
) -> Result<DownstreamRef, ScenarioError> {
    let spec_file = base.join(raw.spec.get_ref());
    let spec = load_spec(&spec_file).map_err(|error| {
        ctx.error(
            &raw.spec,
            format!("downstream spec {} cannot be used", spec_file.display()),
        )
        .with_hint(error.to_string())
    })?;
    let name = spec.name.clone();
    let host_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with("client")
        && ![
            crate::run::hosts::SERVICE,
            crate::run::hosts::SETTLER,
            crate::run::hosts::DOWNSTREAMS,
        ]
        .contains(&name.as_str());
    if !host_ok {
        return Err(ctx
            .error(&raw.spec, format!("downstream `{name}` cannot be a host name"))
            .with_hint("a downstream's `name` is lowercase letters, digits and `-`, and not `service`, `settler`, `downstreams` or `client*`: scenario faults name it"));
    }
    let url = raw
        .url
        .as_ref()
        .map(|url| {
            let text = url.get_ref();
            let valid = (text.starts_with("http://") || text.starts_with("https://"))
                && text.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
            if valid {
                Ok(text.trim_end_matches('/').to_string())
            } else {
                Err(ctx
                    .error(url, format!("`{text}` is not an http:// or https:// URL"))
                    .with_hint("e.g. url = \"http://127.0.0.1:9100\""))
            }
        })
        .transpose()?;
    Ok(DownstreamRef {
        name,
        spec,
        spec_file,
        spec_written: raw.spec.get_ref().clone(),
        url,
    })
}

/// Reads and checks a downstream spec file (`shipsim downstream --spec`): the
/// [`DownstreamSpec`] as TOML, strict, every problem located, including those its
/// compilation finds.
///
/// # Errors
/// [`ScenarioError`] naming the file, and the line and column where there is one.
pub fn load_spec(path: &Path) -> Result<DownstreamSpec, ScenarioError> {
    let file = path.display().to_string();
    let source = read_text(path).map_err(|e| ScenarioError::whole_file(&file, e))?;
    parse_spec(&file, &source)
}

/// [`load_spec`] for text.
///
/// # Errors
/// As [`load_spec`].
pub fn parse_spec(file: &str, source: &str) -> Result<DownstreamSpec, ScenarioError> {
    let spec: DownstreamSpec = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
    if let Err(error) = spec.compile() {
        let message = format!("{}: {}", error.field, error.problem);
        return Err(
            match locate::span_of(source, &locate::parse_field(&error.field)) {
                Some(span) => ScenarioError::at(file, source, span, message),
                None => ScenarioError::whole_file(file, message),
            },
        );
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_are_located_even_for_what_compiling_finds() {
        // Proves a downstream spec's problems found after parsing (a bad template, a bad
        // status) are located at their line, not only serde's.
        let text = "name = \"bank\"\n\n[[effects]]\nmethod = \"POST\"\npath = \"/v1/charges\"\neffect = \"charge\"\nresponse = { id = \"{{nope}}\" }\n";
        let error = parse_spec("bank.toml", text).unwrap_err();
        assert_eq!(error.line, Some(7), "{error}");
        assert!(error.to_string().contains("effects[0].response"), "{error}");
        let text = "name = \"bank\"\nidempotency_header = \"bad header\"\n";
        let error = parse_spec("bank.toml", text).unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        let error = parse_spec("bank.toml", "name = \"bank\"\neffect = []\n").unwrap_err();
        assert!(
            error.to_string().contains("did you mean `effects`?"),
            "{error}"
        );
    }
}
