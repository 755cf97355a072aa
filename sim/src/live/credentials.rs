//! Live mode's credentials: the merchants' API keys, their webhook signing secrets, the
//! operator's admin key and the carrier's webhook secret, from the environment or a keys
//! file, never only from a command-line flag (which every user of the machine can read in
//! the process list). Seed 002: "Never hardcode credentials", "Use environment variables or
//! secure configuration management", "Rotate credentials regularly".
//!
//! - Environment: [`ENV_MERCHANT_KEYS`] and [`ENV_WEBHOOK_SECRETS`] hold one entry per
//!   merchant, merchant-0 first, separated by commas (read by the same code as a target
//!   description's `secrets_env`, `crate::described::secret_list`); a merchant in a
//!   rotation gives `NEW|OLD`. [`ENV_ADMIN_KEY`] and [`ENV_CARRIER_WEBHOOK_SECRET`] hold one
//!   secret each.
//! - A keys file (`--keys-file PATH`), strict TOML with file:line:column errors:
//!
//!   ```toml
//!   admin_key = "sk_admin_..."
//!   carrier_webhook_secret = "whsec_..."
//!   [[merchant]]                                  # merchant-0
//!   api_keys = ["sk_live_new", "sk_live_old"]     # 1 or 2: during a rotation, both
//!   webhook_secrets = ["whsec_new", "whsec_old"]  # 1 or 2: deliveries signed with both
//!   ```
//!
//! Rotation without downtime: a merchant may hold two active API keys, both authenticating
//! as that merchant, so clients move to the new key one by one before the old one is
//! removed; a merchant with two webhook secrets gets every delivery signed with both (two
//! `v1=` signatures, which [`shipsim_system::webhook::verify`] accepts either of), so its
//! receiver can switch secrets at any moment of the overlap.
//!
//! What is not given falls back to the simulation's well-known demo credentials
//! (`sk_sim_merchant_N`, `whsec_sim_<caller>`, `whsec_sim_carrier`), fine for a loopback
//! demo and refused on any other address ([`refuse_demo_off_loopback`]).

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::described::{printable_secret, read_text, secret_list, toml_error};
use crate::scenario::ScenarioError;

/// The merchants' API keys, `NEW|OLD` for a merchant in a rotation.
pub const ENV_MERCHANT_KEYS: &str = "SHIPSIM_MERCHANT_KEYS";
/// The merchants' webhook signing secrets, `NEW|OLD` for a merchant in a rotation.
pub const ENV_WEBHOOK_SECRETS: &str = "SHIPSIM_WEBHOOK_SECRETS";
/// The operator's key for the admin endpoints.
pub const ENV_ADMIN_KEY: &str = "SHIPSIM_ADMIN_KEY";
/// The secret the carrier signs its tracking events with.
pub const ENV_CARRIER_WEBHOOK_SECRET: &str = "SHIPSIM_CARRIER_WEBHOOK_SECRET";

/// Every variable [`Credentials::load`] reads.
pub const ENV_ALL: [&str; 4] = [
    ENV_MERCHANT_KEYS,
    ENV_WEBHOOK_SECRETS,
    ENV_ADMIN_KEY,
    ENV_CARRIER_WEBHOOK_SECRET,
];

/// Active secrets of one merchant: during a rotation two, both accepted (and, for webhook
/// secrets, both signing); otherwise one.
#[derive(Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The secret in use (new clients use it; it signs first).
    pub current: String,
    /// The secret being retired, still accepted (still signing) until it is removed.
    pub previous: Option<String>,
}

impl Rotation {
    /// The active secrets, current first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.previous.as_deref())
    }
}

/// Live mode's credentials; `None` where the demo's well-known ones apply.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Per merchant, merchant-0 first.
    pub merchant_keys: Option<Vec<Rotation>>,
    /// Per merchant, merchant-0 first.
    pub webhook_secrets: Option<Vec<Rotation>>,
    /// The admin key.
    pub admin_key: Option<String>,
    /// The carrier's webhook secret.
    pub carrier_webhook_secret: Option<String>,
    /// Where they came from, for messages (`environment`, `keys file x.toml`).
    pub source: String,
}

// Secrets never reach logs or panic messages.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |v: &Option<Vec<Rotation>>| v.as_ref().map(Vec::len);
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .field("merchant_keys", &count(&self.merchant_keys))
            .field("webhook_secrets", &count(&self.webhook_secrets))
            .field("admin_key", &self.admin_key.is_some())
            .field(
                "carrier_webhook_secret",
                &self.carrier_webhook_secret.is_some(),
            )
            .finish()
    }
}

impl fmt::Debug for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("rotating", &self.previous.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeysFile {
    admin_key: Option<Spanned<String>>,
    carrier_webhook_secret: Option<Spanned<String>>,
    #[serde(default)]
    merchant: Vec<Spanned<RawMerchant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMerchant {
    api_keys: Spanned<Vec<String>>,
    webhook_secrets: Option<Spanned<Vec<String>>>,
}

impl Credentials {
    /// Reads the keys file when given, else the environment through `env` (the process's
    /// own is `|name| std::env::var(name).ok()`; tests pass a map).
    ///
    /// # Errors
    /// A located error for a bad keys file; a sentence naming the variable for a bad one;
    /// both a keys file and one of the variables (which would win is not obvious).
    pub fn load(
        keys_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Credentials, String> {
        let set: Vec<&str> = ENV_ALL
            .into_iter()
            .filter(|name| env(name).is_some())
            .collect();
        match keys_file {
            Some(path) if !set.is_empty() => Err(format!(
                "both --keys-file {} and environment variable(s) {} give credentials: use one source",
                path.display(),
                set.join(", ")
            )),
            Some(path) => {
                let text = read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Credentials::parse_file(&path.display().to_string(), &text)
                    .map_err(|e| e.to_string())
            }
            None => Credentials::from_env(env),
        }
    }

    /// Credentials from the environment variables.
    ///
    /// # Errors
    /// A sentence naming the variable (never a secret).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Credentials, String> {
        let rotations = |name: &str| {
            env(name)
                .map(|text| rotations(&format!("environment variable {name}"), &text))
                .transpose()
        };
        let single = |name: &str| {
            env(name)
                .map(|text| {
                    let text = text.trim().to_string();
                    if printable_secret(&text) {
                        Ok(text)
                    } else {
                        Err(format!(
                            "environment variable {name} is not 1 to 256 printable ASCII characters without spaces"
                        ))
                    }
                })
                .transpose()
        };
        Ok(Credentials {
            merchant_keys: rotations(ENV_MERCHANT_KEYS)?,
            webhook_secrets: rotations(ENV_WEBHOOK_SECRETS)?,
            admin_key: single(ENV_ADMIN_KEY)?,
            carrier_webhook_secret: single(ENV_CARRIER_WEBHOOK_SECRET)?,
            source: "environment".to_string(),
        })
    }

    /// Parses a keys file.
    ///
    /// # Errors
    /// [`ScenarioError`] located at the offending value: unknown keys, wrong types, no
    /// merchant, a merchant with no or more than two keys or secrets, a secret that is not
    /// printable, or webhook secrets given for some merchants only.
    pub fn parse_file(file: &str, source: &str) -> Result<Credentials, ScenarioError> {
        let raw: RawKeysFile = toml::from_str(source).map_err(|e| toml_error(file, source, &e))?;
        let at =
            |span: Range<usize>, message: String| ScenarioError::at(file, source, span, message);
        let single = |value: &Option<Spanned<String>>, key: &str| {
            value
                .as_ref()
                .map(|v| {
                    if printable_secret(v.get_ref()) {
                        Ok(v.get_ref().clone())
                    } else {
                        Err(at(
                            v.span(),
                            format!(
                                "{key} is not 1 to 256 printable ASCII characters without spaces"
                            ),
                        ))
                    }
                })
                .transpose()
        };
        let list = |value: &Spanned<Vec<String>>, key: &str| -> Result<Rotation, ScenarioError> {
            let secrets = value.get_ref();
            if secrets.is_empty() || secrets.len() > 2 {
                return Err(at(
                    value.span(),
                    format!(
                        "{key} holds {} secret(s): give 1, or 2 during a rotation (the new one first)",
                        secrets.len()
                    ),
                ));
            }
            if let Some(index) = secrets.iter().position(|s| !printable_secret(s)) {
                return Err(at(
                    value.span(),
                    format!(
                        "{key}: secret number {} is not 1 to 256 printable ASCII characters without spaces",
                        index + 1
                    ),
                ));
            }
            if secrets.len() == 2 && secrets[0] == secrets[1] {
                return Err(at(
                    value.span(),
                    format!("{key} holds the same secret twice"),
                ));
            }
            Ok(Rotation {
                current: secrets[0].clone(),
                previous: secrets.get(1).cloned(),
            })
        };
        if raw.merchant.is_empty() {
            return Err(at(
                0..0,
                "no [[merchant]]: give one per merchant, merchant-0 first".to_string(),
            ));
        }
        let mut merchant_keys = Vec::new();
        let mut webhook_secrets = Vec::new();
        for merchant in &raw.merchant {
            let merchant_ref = merchant.get_ref();
            merchant_keys.push(list(&merchant_ref.api_keys, "api_keys")?);
            if let Some(secrets) = &merchant_ref.webhook_secrets {
                webhook_secrets.push(list(secrets, "webhook_secrets")?);
            }
        }
        let webhook_secrets = match webhook_secrets.len() {
            0 => None,
            n if n == merchant_keys.len() => Some(webhook_secrets),
            _ => {
                let missing = raw
                    .merchant
                    .iter()
                    .find(|m| m.get_ref().webhook_secrets.is_none())
                    .map_or(0..0, Spanned::span);
                return Err(at(
                    missing,
                    "this merchant has no webhook_secrets while others do: give every merchant its own".to_string(),
                ));
            }
        };
        Ok(Credentials {
            merchant_keys: Some(merchant_keys),
            webhook_secrets,
            admin_key: single(&raw.admin_key, "admin_key")?,
            carrier_webhook_secret: single(&raw.carrier_webhook_secret, "carrier_webhook_secret")?,
            source: format!("keys file {file}"),
        })
    }

    /// What still uses the demo's well-known credentials: merchant keys always when none
    /// were given; merchant webhook secrets when webhooks are sent and none were given;
    /// the carrier's webhook secret when none was given.
    #[must_use]
    pub fn demo_in_use(&self, sends_webhooks: bool) -> Vec<&'static str> {
        let mut demo = Vec::new();
        if self.merchant_keys.is_none() {
            demo.push("merchant API keys sk_sim_merchant_N");
        }
        if sends_webhooks && self.webhook_secrets.is_none() {
            demo.push("merchant webhook secrets whsec_sim_<caller>");
        }
        if self.carrier_webhook_secret.is_none() {
            demo.push("carrier webhook secret whsec_sim_carrier");
        }
        demo
    }
}

/// One entry per merchant, `NEW|OLD` during a rotation.
fn rotations(source: &str, text: &str) -> Result<Vec<Rotation>, String> {
    secret_list(source, text)?
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let mut parts = entry.split('|');
            let current = parts.next().unwrap_or_default().to_string();
            let previous = parts.next().map(str::to_string);
            let bad = current.is_empty()
                || previous.as_deref().is_some_and(str::is_empty)
                || parts.next().is_some()
                || previous.as_deref() == Some(current.as_str());
            if bad {
                return Err(format!(
                    "{source}: merchant-{index}'s entry is not KEY or NEW|OLD (two different secrets)"
                ));
            }
            Ok(Rotation { current, previous })
        })
        .collect()
}

/// Whether every address `listen` names is a loopback address. A name that does not
/// resolve counts as not loopback.
#[must_use]
pub fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs as _;
    match listen.to_socket_addrs() {
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Refuses to listen on `listen` while `demo` names well-known credentials in use, unless
/// it is a loopback address: the demo keys are printed in this repository, so on any other
/// address anyone who can reach the port could act as a merchant or forge webhooks.
///
/// # Errors
/// A sentence naming the address, what is demo and how to give real credentials.
pub fn refuse_demo_off_loopback(listen: &str, demo: &[&str]) -> Result<(), String> {
    if demo.is_empty() || is_loopback(listen) {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {listen}, which is not a loopback address, with the well-known demo credentials ({}): anyone who can reach it could use them. Give real ones in {} or a --keys-file, or listen on 127.0.0.1",
        demo.join(", "),
        ENV_ALL.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn credentials_come_from_the_environment_with_rotations() {
        // Proves each variable is read, `NEW|OLD` makes a rotation, unset variables leave
        // the demo defaults, and a malformed entry is refused naming the variable and the
        // merchant but not the secret.
        let creds = Credentials::load(
            None,
            &env_of(&[
                (ENV_MERCHANT_KEYS, "sk_a_new|sk_a_old, sk_b"),
                (ENV_ADMIN_KEY, "sk_admin_x"),
            ]),
        )
        .unwrap();
        let keys = creds.merchant_keys.as_ref().unwrap();
        assert_eq!(keys[0].all().collect::<Vec<_>>(), ["sk_a_new", "sk_a_old"]);
        assert_eq!(keys[1].all().collect::<Vec<_>>(), ["sk_b"]);
        assert_eq!(creds.admin_key.as_deref(), Some("sk_admin_x"));
        assert_eq!(creds.webhook_secrets, None);
        assert_eq!(
            creds.demo_in_use(true),
            [
                "merchant webhook secrets whsec_sim_<caller>",
                "carrier webhook secret whsec_sim_carrier"
            ]
        );
        assert!(!format!("{creds:?}").contains("sk_a_new"));
        for bad in ["sk_a|", "a|b|c", "same|same", "|x"] {
            let error = Credentials::load(None, &env_of(&[(ENV_MERCHANT_KEYS, bad)])).unwrap_err();
            assert!(
                error.contains("environment variable SHIPSIM_MERCHANT_KEYS: merchant-0's entry"),
                "{error}"
            );
        }
        let error = Credentials::load(None, &env_of(&[(ENV_ADMIN_KEY, "has space")])).unwrap_err();
        assert!(
            error.contains("SHIPSIM_ADMIN_KEY is not 1 to 256"),
            "{error}"
        );
        assert!(!error.contains("has space"));
    }

    #[test]
    fn a_keys_file_is_strict_and_located() {
        // Proves a keys file gives every credential with rotations, and that unknown keys,
        // three keys, a missing list and webhook secrets for some merchants only are each
        // refused at their line and column; a keys file with the variables set is refused.
        let good = r#"admin_key = "sk_admin"
carrier_webhook_secret = "whsec_carrier"

[[merchant]]
api_keys = ["sk_0_new", "sk_0_old"]
webhook_secrets = ["whsec_0_new", "whsec_0_old"]

[[merchant]]
api_keys = ["sk_1"]
webhook_secrets = ["whsec_1"]
"#;
        let creds = Credentials::parse_file("keys.toml", good).unwrap();
        assert_eq!(creds.merchant_keys.as_ref().unwrap().len(), 2);
        assert_eq!(
            creds.webhook_secrets.as_ref().unwrap()[0]
                .previous
                .as_deref(),
            Some("whsec_0_old")
        );
        assert_eq!(
            creds.carrier_webhook_secret.as_deref(),
            Some("whsec_carrier")
        );
        assert_eq!(creds.demo_in_use(true), Vec::<&str>::new());
        for (text, expected) in [
            (
                "[[merchant]]\napi_keys = [\"a\"]\nsecret = \"x\"\n",
                "keys.toml:3:1",
            ),
            (
                "[[merchant]]\napi_keys = [\"a\", \"b\", \"c\"]\n",
                "keys.toml:2:12: api_keys holds 3 secret(s)",
            ),
            ("[[merchant]]\n", "keys.toml:1:1"),
            (
                "[[merchant]]\napi_keys = [\"a\"]\nwebhook_secrets = [\"w\"]\n[[merchant]]\napi_keys = [\"b\"]\n",
                "this merchant has no webhook_secrets",
            ),
            ("admin_key = \"x\"\n", "no [[merchant]]"),
            (
                "[[merchant]]\napi_keys = [\"a b\"]\n",
                "keys.toml:2:12: api_keys: secret number 1 is not",
            ),
        ] {
            let error = Credentials::parse_file("keys.toml", text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}\n=> {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, good).unwrap();
        let from_file = Credentials::load(Some(&path), &env_of(&[])).unwrap();
        assert_eq!(from_file.merchant_keys, creds.merchant_keys);
        let both = Credentials::load(Some(&path), &env_of(&[(ENV_ADMIN_KEY, "k")])).unwrap_err();
        assert!(both.contains("use one source"), "{both}");
    }

    #[test]
    fn demo_credentials_are_refused_off_loopback() {
        // Proves the decision: demo credentials on 0.0.0.0 or a routable address are refused
        // naming what is demo; on 127.0.0.1, [::1] or localhost they are fine; with real
        // credentials any address is fine.
        let demo = Credentials::default().demo_in_use(false);
        assert_eq!(demo.len(), 2);
        for listen in ["127.0.0.1:0", "[::1]:8080", "localhost:8080"] {
            assert_eq!(refuse_demo_off_loopback(listen, &demo), Ok(()), "{listen}");
        }
        for listen in ["0.0.0.0:8080", "[::]:0", "192.0.2.7:80"] {
            let error = refuse_demo_off_loopback(listen, &demo).unwrap_err();
            assert!(
                error.contains(&format!("refusing to listen on {listen}")),
                "{error}"
            );
            assert!(
                error.contains("merchant API keys sk_sim_merchant_N"),
                "{error}"
            );
        }
        assert_eq!(refuse_demo_off_loopback("0.0.0.0:8080", &[]), Ok(()));
    }
}
