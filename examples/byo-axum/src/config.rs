//! The service's configuration: who may call it, where its bank is, how long a payment may
//! hold its idempotency key, and, because this crate is shipsim's example, which realistic
//! mistake to make (`BYO_MISTAKE`).
//!
//! The binary reads it from the environment ([`Config::from_vars`] over `std::env::var`);
//! tests build it in code and set [`Config::mistake`] directly, so tests running in parallel
//! threads never share a process-wide variable.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::bank::BankPolicy;

/// The variable that selects a mistake: one of [`Mistake::name`], or empty for none.
pub const MISTAKE_ENV: &str = "BYO_MISTAKE";
/// The bank's base URL (`http://127.0.0.1:9090`).
pub const BANK_URL_ENV: &str = "BYO_BANK_URL";
/// The whole `Authorization` value the bank accepts from this service.
pub const BANK_AUTHORIZATION_ENV: &str = "BYO_BANK_AUTHORIZATION";
/// The merchants' API keys: `sk_live_a=merchant-a,sk_live_b=merchant-b`.
pub const API_KEYS_ENV: &str = "BYO_API_KEYS";

/// How long a request may hold an idempotency key before another may take it over (30 s):
/// far longer than the bank client's worst case (three attempts of 400 ms and two waits),
/// so only a wedged handler ever loses its key this way.
pub const LOCK_LEASE_MS_DEFAULT: u64 = 30_000;

/// A realistic mistake the service can be told to make, each one a branch at the place the
/// real mistake would be. shipsim's tests show that each is caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mistake {
    /// The key is looked up in one transaction and the payment inserted in another, with
    /// an await in between: two concurrent requests with one key both find it free.
    CheckThenInsert,
    /// Nothing is stored before the bank is called; the payment and its key are written
    /// after the charge: a crash (or a concurrent twin) in between charges again.
    RecordAfterCharge,
    /// The bank is called without an idempotency key, and the bank client retries a lost
    /// answer: the bank charges twice.
    BankWithoutKey,
    /// Commits are acknowledged before they are durable (`synchronous_commit = off`): a
    /// crash loses payments the clients were told succeeded.
    AsyncCommit,
    /// Idempotency keys are global instead of per merchant: one merchant's key replays or
    /// blocks another's request.
    GlobalKeys,
    /// A key held by a request of a crashed process is never taken over: every retry gets
    /// 409 for ever.
    StuckLock,
}

impl Mistake {
    /// Every mistake.
    pub const ALL: [Mistake; 6] = [
        Mistake::CheckThenInsert,
        Mistake::RecordAfterCharge,
        Mistake::BankWithoutKey,
        Mistake::AsyncCommit,
        Mistake::GlobalKeys,
        Mistake::StuckLock,
    ];

    /// The name `BYO_MISTAKE` takes.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mistake::CheckThenInsert => "check_then_insert",
            Mistake::RecordAfterCharge => "record_after_charge",
            Mistake::BankWithoutKey => "bank_without_key",
            Mistake::AsyncCommit => "async_commit",
            Mistake::GlobalKeys => "global_keys",
            Mistake::StuckLock => "stuck_lock",
        }
    }
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mistake {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mistake::ALL
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| ConfigError {
                variable: MISTAKE_ENV,
                problem: format!(
                    "unknown mistake `{text}`; expected one of: {}",
                    Mistake::ALL.map(Mistake::name).join(", ")
                ),
            })
    }
}

/// Where the bank is and how to call it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankConfig {
    /// Base URL, without a trailing slash (`http://bank:80`).
    pub base_url: String,
    /// The whole `Authorization` header value (`Bearer bk_test_...`).
    pub authorization: String,
    /// Timeouts and retries.
    pub policy: BankPolicy,
}

/// Everything the service is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// API key -> the merchant it authenticates.
    pub merchants: BTreeMap<String, String>,
    /// The bank.
    pub bank: BankConfig,
    /// See [`LOCK_LEASE_MS_DEFAULT`].
    pub lock_lease_ms: u64,
    /// The mistake to make; `None` for the correct service.
    pub mistake: Option<Mistake>,
}

/// A configuration value that is missing or invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// A correct service for `merchants` (API key -> merchant) calling `bank`.
    #[must_use]
    pub fn new(merchants: BTreeMap<String, String>, bank: BankConfig) -> Config {
        Config {
            merchants,
            bank,
            lock_lease_ms: LOCK_LEASE_MS_DEFAULT,
            mistake: None,
        }
    }

    /// Reads the configuration from variables (`var` is `std::env::var` in the binary).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |variable: &'static str| {
            var(variable)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError {
                    variable,
                    problem: "required".into(),
                })
        };
        let mut merchants = BTreeMap::new();
        for pair in required(API_KEYS_ENV)?.split(',') {
            let (key, merchant) = pair
                .split_once('=')
                .filter(|(k, m)| !k.is_empty() && !m.is_empty())
                .ok_or_else(|| ConfigError {
                    variable: API_KEYS_ENV,
                    problem: format!("`{pair}` is not `api_key=merchant`"),
                })?;
            merchants.insert(key.to_string(), merchant.to_string());
        }
        let bank = BankConfig {
            base_url: required(BANK_URL_ENV)?.trim_end_matches('/').to_string(),
            authorization: required(BANK_AUTHORIZATION_ENV)?,
            policy: BankPolicy::DEFAULT,
        };
        let mistake = match var(MISTAKE_ENV).filter(|v| !v.is_empty()) {
            Some(name) => Some(name.parse()?),
            None => None,
        };
        Ok(Config {
            mistake,
            ..Config::new(merchants, bank)
        })
    }

    /// Whether the service makes `mistake`.
    #[must_use]
    pub fn makes(&self, mistake: Mistake) -> bool {
        self.mistake == Some(mistake)
    }

    /// Whether the store must make each commit durable before it returns (`synchronous_commit`
    /// in PostgreSQL's words). A repository honours it.
    #[must_use]
    pub fn synchronous_commit(&self) -> bool {
        !self.makes(Mistake::AsyncCommit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_parse_and_bad_ones_name_themselves() {
        // Proves the binary's configuration: every variable is read, a mistake is selected
        // by name, and a bad value is an error naming its variable.
        let vars = |mistake: &'static str| {
            move |name: &str| match name {
                API_KEYS_ENV => Some("sk_a=merchant-a,sk_b=merchant-b".to_string()),
                BANK_URL_ENV => Some("http://127.0.0.1:9090/".to_string()),
                BANK_AUTHORIZATION_ENV => Some("Bearer bk".to_string()),
                MISTAKE_ENV => Some(mistake.to_string()),
                _ => None,
            }
        };
        let config = Config::from_vars(vars("global_keys")).unwrap();
        assert_eq!(config.merchants["sk_b"], "merchant-b");
        assert_eq!(config.bank.base_url, "http://127.0.0.1:9090");
        assert_eq!(config.mistake, Some(Mistake::GlobalKeys));
        assert_eq!(Config::from_vars(vars("")).unwrap().mistake, None);
        let error = Config::from_vars(vars("typo")).unwrap_err();
        assert_eq!(error.variable, MISTAKE_ENV);
        assert!(error.problem.contains("check_then_insert"), "{error}");
        let missing = Config::from_vars(|_| None).unwrap_err();
        assert_eq!(missing.variable, API_KEYS_ENV);
    }
}
