//! `[auth]`: how merchants authenticate, and their secrets, read from an environment
//! variable or a file (never from the command line) and never shown.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::RawAuth;
use super::{Ctx, header_name, read_text};
use crate::scenario::ScenarioError;
use crate::target::Caller;

/// Most secrets an `[auth]` source may hold (one per merchant; scenarios have at most this
/// many callers).
pub const SECRETS_MAX: usize = crate::scenario::CLIENTS_MAX as usize;

/// Longest secret.
const SECRET_LEN_MAX: usize = 256;

/// Where the secrets of `[auth]` come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Secrets {
    /// No secrets: `value` names the caller by its index only (a test deployment's keys).
    None,
    /// Read: one per merchant, merchant-0 first.
    Read {
        /// Where they came from, for messages (`environment variable SHOP_API_KEYS`).
        source: String,
        /// The secrets.
        secrets: Vec<String>,
    },
    /// Named but not read yet ([`Description::parse`](super::Description::parse) reads nothing).
    Unread,
}

// Secrets never reach logs or panic messages.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secrets::None => f.write_str("None"),
            Secrets::Unread => f.write_str("Unread"),
            Secrets::Read { source, secrets } => f
                .debug_struct("Read")
                .field("source", source)
                .field("count", &secrets.len())
                .finish(),
        }
    }
}

/// `[auth]`: how a merchant authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The header (`Authorization`).
    pub header: http::HeaderName,
    /// Its value, with `{secret}` and `{caller}` (the merchant's index) to fill.
    pub value: String,
    /// `secrets_env`, if given.
    pub secrets_env: Option<String>,
    /// `secrets_file`, resolved against the description's directory, if given.
    pub secrets_file: Option<PathBuf>,
    /// The secrets.
    pub secrets: Secrets,
    /// `secrets_file` as written.
    pub(super) secrets_file_written: Option<String>,
}

impl Auth {
    pub(super) fn header_value(&self, caller: &Caller) -> String {
        self.value
            .replace("{secret}", &caller.api_key)
            .replace("{caller}", &caller.index.to_string())
    }
}

pub(super) fn auth(
    ctx: &Ctx<'_>,
    base: &Path,
    table: &Spanned<RawAuth>,
) -> Result<Auth, ScenarioError> {
    let raw = table.get_ref();
    let header = header_name(ctx, &raw.header)?;
    let value = raw
        .value
        .as_ref()
        .map_or_else(|| "{secret}".to_string(), |v| v.get_ref().clone());
    let value_span = raw.value.as_ref().map_or(raw.header.span(), Spanned::span);
    let mut rest = value.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(ctx.at(value_span, "`{` without `}` in `value`"));
        };
        let name = &rest[open + 1..open + close];
        if name != "secret" && name != "caller" {
            return Err(ctx
                .at(
                    value_span.clone(),
                    format!("unknown placeholder `{{{name}}}` in `value`"),
                )
                .with_hint(
                    "`{secret}` (the merchant's secret) and `{caller}` (its index: 0, 1, ...)",
                ));
        }
        rest = &rest[open + close + 1..];
    }
    let uses_secret = value.contains("{secret}");
    let probe = value.replace("{secret}", "s").replace("{caller}", "0");
    if http::HeaderValue::from_str(&probe).is_err() {
        return Err(ctx.at(value_span, "`value` is not a valid header value"));
    }
    let has_source = raw.secrets_env.is_some() || raw.secrets_file.is_some();
    if uses_secret && !has_source {
        return Err(ctx
            .error(table, "`value` uses `{secret}`, but `[auth]` says nowhere to read secrets from")
            .with_hint("secrets_env = \"MY_API_KEYS\" (comma-separated, merchant-0 first) or secrets_file = \"keys.txt\" (one per line); never on the command line"));
    }
    if !uses_secret && has_source {
        return Err(ctx
            .at(
                value_span,
                "`[auth]` names secrets, but `value` does not use `{secret}`",
            )
            .with_hint(
                "value = \"Bearer {secret}\", or leave `value` out to send the secret as it is",
            ));
    }
    if let Some(env) = &raw.secrets_env {
        env_name(ctx, env)?;
    }
    let secrets_file = raw.secrets_file.as_ref().map(|f| base.join(f.get_ref()));
    Ok(Auth {
        header,
        value,
        secrets_env: raw.secrets_env.as_ref().map(|e| e.get_ref().clone()),
        secrets_file,
        secrets: if has_source {
            Secrets::Unread
        } else {
            Secrets::None
        },
        secrets_file_written: raw.secrets_file.as_ref().map(|f| f.get_ref().clone()),
    })
}

/// The text of a secret source, where it came from (for messages) and where it is named.
pub(super) struct SourceText {
    pub(super) source: String,
    pub(super) text: String,
    pub(super) span: Range<usize>,
}

/// Reads a secret source: the environment variable `env` when it is set, else `file`
/// (named at `file_span`, called `noun` in messages); `None` when the variable is unset
/// and there is no file.
pub(super) fn read_source(
    ctx: &Ctx<'_>,
    env: Option<&Spanned<String>>,
    file: Option<&Path>,
    file_span: Range<usize>,
    noun: &str,
) -> Result<Option<SourceText>, ScenarioError> {
    if let Some(env) = env
        && std::env::var_os(env.get_ref()).is_some()
    {
        let text = std::env::var(env.get_ref()).map_err(|_| {
            ctx.error(
                env,
                format!("environment variable {} is not UTF-8", env.get_ref()),
            )
        })?;
        return Ok(Some(SourceText {
            source: format!("environment variable {}", env.get_ref()),
            text,
            span: env.span(),
        }));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = read_text(path)
        .map_err(|e| ctx.at(file_span.clone(), format!("{noun} {}: {e}", path.display())))?;
    Ok(Some(SourceText {
        source: format!("{noun} {}", path.display()),
        text,
        span: file_span,
    }))
}

/// Checks that `env` names an environment variable.
pub(super) fn env_name(ctx: &Ctx<'_>, env: &Spanned<String>) -> Result<(), ScenarioError> {
    let name = env.get_ref();
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(ctx
            .error(env, format!("`{name}` is not an environment variable name"))
            .with_hint("letters, digits and `_`, not starting with a digit"))
    }
}

/// Reads the secrets of `[auth]`: the environment variable when it is set, else the file.
pub(super) fn read_secrets(
    ctx: &Ctx<'_>,
    auth: &Auth,
    raw: &RawAuth,
) -> Result<Secrets, ScenarioError> {
    let file_span = raw.secrets_file.as_ref().map_or(0..0, Spanned::span);
    let read = read_source(
        ctx,
        raw.secrets_env.as_ref(),
        auth.secrets_file.as_deref(),
        file_span,
        "secrets file",
    )?;
    let SourceText { source, text, span } = match (read, &raw.secrets_env) {
        (Some(read), _) => read,
        (None, Some(env)) => {
            return Err(ctx
                .error(env, format!("environment variable {} is not set", env.get_ref()))
                .with_hint(format!(
                    "export {}=SECRET_0,SECRET_1 (one per merchant, merchant-0 first), or add secrets_file",
                    env.get_ref()
                )));
        }
        (None, None) => return Ok(Secrets::None),
    };
    let secrets = secret_list(&source, &text).map_err(|e| ctx.at(span.clone(), e))?;
    for (index, secret) in secrets.iter().enumerate() {
        let value = auth.header_value(&Caller {
            api_key: secret.clone(),
            ..Caller::new(0)
        });
        if http::HeaderValue::from_str(&value).is_err() {
            // The secret itself is never printed.
            return Err(ctx.at(
                span,
                format!(
                    "{source}: secret number {} does not make a valid header value",
                    index + 1
                ),
            ));
        }
    }
    Ok(Secrets::Read { source, secrets })
}

/// Secrets as a source holds them (an environment variable's value or a file's text): lines
/// that start with `#` are comments, the rest hold secrets separated by commas, one per
/// merchant, merchant-0 first; each is 1 to 256 printable ASCII characters without spaces.
/// Live mode's credentials ([`crate::live::credentials`]) read theirs with it too.
///
/// # Errors
/// A sentence naming `source` (never a secret): none, too many, or one not printable.
pub(crate) fn secret_list(source: &str, text: &str) -> Result<Vec<String>, String> {
    let secrets: Vec<String> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if secrets.is_empty() {
        return Err(format!("{source} holds no secret"));
    }
    if secrets.len() > SECRETS_MAX {
        return Err(format!("{source} holds more than {SECRETS_MAX} secrets"));
    }
    for (index, secret) in secrets.iter().enumerate() {
        if !printable_secret(secret) {
            // The secret itself is never printed.
            return Err(format!(
                "{source}: secret number {} is not 1 to {SECRET_LEN_MAX} printable ASCII characters without spaces",
                index + 1
            ));
        }
    }
    Ok(secrets)
}

/// Whether `secret` is 1 to [`SECRET_LEN_MAX`] printable ASCII characters without spaces.
pub(crate) fn printable_secret(secret: &str) -> bool {
    !secret.is_empty()
        && secret.len() <= SECRET_LEN_MAX
        && secret.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::super::Description;
    use super::super::tests::SHOP;

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
        // Proves `load` reads the secrets file (the variable being unset), gives each merchant
        // its own, refuses a scenario with more merchants than secrets, and that neither
        // errors nor Debug output show a secret; a missing variable without a file is a
        // located error naming the variable.
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::write(dir.join("keys.txt"), "# merchants 0, 1\nsk_zero\nsk_one\n").unwrap();
        let text = SHOP.replace(
            "secrets_env = \"SHIPSIM_TEST_UNSET_VARIABLE\"",
            "secrets_env = \"SHIPSIM_TEST_UNSET_VARIABLE\"\nsecrets_file = \"keys.txt\"",
        );
        std::fs::write(dir.join("shop.toml"), &text).unwrap();
        let description = Description::load(&dir.join("shop.toml")).unwrap();
        assert_eq!(description.caller(1).unwrap().api_key, "sk_one");
        let problem = description.caller(2).unwrap_err();
        assert!(problem.contains("holds 2 secret(s)"), "{problem}");
        assert!(!format!("{description:?}").contains("sk_zero"));
        std::fs::write(dir.join("bare.toml"), SHOP).unwrap();
        let error = Description::load(&dir.join("bare.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SHIPSIM_TEST_UNSET_VARIABLE is not set"),
            "{error}"
        );
        assert!(
            error.contains(":8:"),
            "located at the secrets_env line: {error}"
        );
        std::fs::write(dir.join("keys.txt"), "sk zero\n").unwrap();
        let error = Description::load(&dir.join("shop.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("secret number 1"), "{error}");
        assert!(!error.contains("sk zero"), "{error}");
    }
}
