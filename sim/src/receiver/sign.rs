//! How shipsim signs an event for a user's receiver: the common schemes built in.
//!
//! Every scheme is HMAC-SHA256 under a shared secret; they differ in what is signed and
//! where the signature goes. Standard Webhooks signs `"{id}.{timestamp}.{body}"` and sends
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`; Stripe signs
//! `"{timestamp}.{body}"` and sends `t=<timestamp>,v1=<hex>` in one header; a plain HMAC
//! signs the body alone and sends its hex digest in a named header (no timestamp, so no
//! staleness to refuse).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How to sign a delivery for the receiver under test.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signing {
    /// Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` (unix
    /// seconds) and `webhook-signature: v1,<base64 HMAC of "{id}.{timestamp}.{body}">`.
    /// `secret` is the `whsec_`-prefixed base64 key the receiver is configured with.
    StandardWebhooks {
        /// `whsec_<base64 key>`.
        secret: String,
    },
    /// Stripe style: header `header` carries `t=<unix seconds>,v1=<hex HMAC of "{t}.{body}">`.
    Stripe {
        /// The header's name (`Stripe-Signature`, say).
        header: String,
        /// The shared secret, used as the HMAC key byte for byte.
        secret: String,
    },
    /// The hex HMAC of the body alone in header `header` (GitHub's `X-Hub-Signature-256`
    /// without its `sha256=` prefix, say). Has no timestamp: stale deliveries are not tried.
    HmacBody {
        /// The header's name.
        header: String,
        /// The shared secret, used as the HMAC key byte for byte.
        secret: String,
    },
}

/// The headers of one signed delivery.
pub(crate) type Headers = Vec<(String, String)>;

impl Signing {
    /// Standard Webhooks with `secret` (`whsec_<base64>`).
    #[must_use]
    pub fn standard_webhooks(secret: impl Into<String>) -> Signing {
        Signing::StandardWebhooks {
            secret: secret.into(),
        }
    }

    /// Whether deliveries carry a signed timestamp (so stale ones must be refused).
    pub(crate) fn has_timestamp(&self) -> bool {
        !matches!(self, Signing::HmacBody { .. })
    }

    /// The key bytes, or why the secret is unusable.
    pub(crate) fn key(&self) -> Result<Vec<u8>, String> {
        match self {
            Signing::StandardWebhooks { secret } => {
                let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
                STANDARD
                    .decode(encoded)
                    .map_err(|e| format!("Standard Webhooks secret is not `whsec_` + base64: {e}"))
            }
            Signing::Stripe { secret, .. } | Signing::HmacBody { secret, .. } => {
                Ok(secret.as_bytes().to_vec())
            }
        }
    }

    /// The headers signing `body` of event `id` at `timestamp_s` with key `key`.
    pub(crate) fn headers(&self, key: &[u8], id: &str, timestamp_s: u64, body: &str) -> Headers {
        match self {
            Signing::StandardWebhooks { .. } => {
                let signed = format!("{id}.{timestamp_s}.{body}");
                let signature = STANDARD.encode(mac(key, signed.as_bytes()));
                vec![
                    ("webhook-id".into(), id.to_string()),
                    ("webhook-timestamp".into(), timestamp_s.to_string()),
                    ("webhook-signature".into(), format!("v1,{signature}")),
                ]
            }
            Signing::Stripe { header, .. } => {
                let signed = format!("{timestamp_s}.{body}");
                let signature = hex(&mac(key, signed.as_bytes()));
                vec![(header.clone(), format!("t={timestamp_s},v1={signature}"))]
            }
            Signing::HmacBody { header, .. } => {
                vec![(header.clone(), hex(&mac(key, body.as_bytes())))]
            }
        }
    }
}

fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_matches_the_specification_example() {
        // Proves the Standard Webhooks signature against the specification's published test
        // vector (standard-webhooks/spec, libraries' shared test case).
        let signing = Signing::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = signing.key().unwrap();
        let headers = signing.headers(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn stripe_style_verifies_with_the_reference_receivers_check() {
        // Proves the Stripe-style header is what the reference system's verifier (seed 001's
        // `t=,v1=` scheme) accepts, and that a plain HMAC is the hex digest of the body.
        let signing = Signing::Stripe {
            header: "shipsim-signature".into(),
            secret: "s3cret".into(),
        };
        let key = signing.key().unwrap();
        let headers = signing.headers(&key, "evt_1", 1_767_225_600, "{}");
        shipsim_system::webhook::verify(
            "s3cret",
            Some(&headers[0].1),
            b"{}",
            1_767_225_600_000,
            300,
        )
        .unwrap();
        let plain = Signing::HmacBody {
            header: "x-sig".into(),
            secret: "s3cret".into(),
        };
        let body_only = plain.headers(&key, "evt_1", 0, "{}");
        assert_eq!(body_only[0].1, hex(&mac(b"s3cret", b"{}")));
        assert!(!plain.has_timestamp());
    }

    #[test]
    fn a_bad_secret_is_an_error() {
        // Proves a Standard Webhooks secret that is not base64 is refused with a reason.
        let error = Signing::standard_webhooks("whsec_not base64!")
            .key()
            .unwrap_err();
        assert!(error.contains("whsec_"), "{error}");
    }
}
