//! Webhook signatures, Stripe style (seed 001): the sender signs `"{t}.{raw body}"` with
//! HMAC-SHA256 under a shared secret and sends `Shipsim-Signature: t=<unix seconds>,v1=<hex>`.
//! The receiver recomputes the MAC over the raw bytes it received, compares in constant
//! time, and refuses timestamps outside a tolerance window (300 s, seed 001's default), so a
//! captured delivery cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature.
pub const HEADER_SIGNATURE: &str = "shipsim-signature";

/// Largest accepted gap between the signature's timestamp and the receiver's clock: five
/// minutes, as Stripe's libraries default to.
pub const TOLERANCE_S_DEFAULT: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header.
    #[error("missing {HEADER_SIGNATURE} header")]
    Missing,
    /// The header is not `t=<seconds>,v1=<hex>`.
    #[error("malformed signature header: {0}")]
    Malformed(String),
    /// The timestamp is too far from the receiver's clock.
    #[error("timestamp {signed_at_s} is {skew_s} s from now, beyond the {tolerance_s} s tolerance")]
    OutsideTolerance {
        /// The signed timestamp.
        signed_at_s: u64,
        /// Distance from the receiver's clock.
        skew_s: u64,
        /// The tolerance.
        tolerance_s: u64,
    },
    /// The MAC does not match the body.
    #[error("signature does not match the body")]
    Mismatch,
}

/// A secret keyed once for HMAC-SHA256: the key schedule (two SHA-256 blocks, half the
/// work of signing a small body) is done at construction, and every signature starts from a
/// clone of the keyed state. Signing and verifying with it give exactly what [`sign`],
/// [`sign_rotating`] and [`verify`] give under its secret; a sender or receiver that signs
/// under the same secret many times keys it once (see the simulation's senders).
#[derive(Clone)]
pub struct SigningKey {
    keyed: HmacSha256,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keyed state is derived from the secret: never printed.
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Keys `secret`.
    #[must_use]
    pub fn new(secret: &str) -> SigningKey {
        SigningKey {
            keyed: HmacSha256::new_from_slice(secret.as_bytes())
                .expect("HMAC accepts any key length"),
        }
    }

    fn mac(&self, signed_at_s: u64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        let mut digits = [0_u8; 20];
        mac.update(decimal(signed_at_s, &mut digits));
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The signature header value for `body` signed at `signed_at_s` (see [`sign`]).
    #[must_use]
    pub fn sign(&self, signed_at_s: u64, body: &[u8]) -> String {
        let digest = self.mac(signed_at_s, body).finalize().into_bytes();
        let mut header = String::with_capacity(SIGNED_HEADER_LEN_MAX);
        header.push_str("t=");
        let mut digits = [0_u8; 20];
        header.push_str(
            std::str::from_utf8(decimal(signed_at_s, &mut digits)).expect("ASCII digits"),
        );
        header.push_str(",v1=");
        header.push_str(&crate::hex::encode(&digest));
        header
    }

    /// The signature header during a secret rotation (see [`sign_rotating`]): signed under
    /// this key and, when given, under `previous` too.
    #[must_use]
    pub fn sign_rotating(
        &self,
        previous: Option<&SigningKey>,
        signed_at_s: u64,
        body: &[u8],
    ) -> String {
        let mut header = self.sign(signed_at_s, body);
        if let Some(previous) = previous {
            let digest = previous.mac(signed_at_s, body).finalize().into_bytes();
            header.push_str(",v1=");
            header.push_str(&crate::hex::encode(&digest));
        }
        header
    }

    /// Checks `header` against `body` at receiver time `now_ms` (see [`verify`]).
    ///
    /// # Errors
    /// [`SignatureError`] saying why the signature is refused.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_ms: u64,
        tolerance_s: u64,
    ) -> Result<(), SignatureError> {
        let (signed_at_s, candidates) = parse(header)?;
        let now_s = now_ms / 1_000;
        let skew_s = now_s.abs_diff(signed_at_s);
        if skew_s > tolerance_s {
            return Err(SignatureError::OutsideTolerance {
                signed_at_s,
                skew_s,
                tolerance_s,
            });
        }
        // `verify_slice` compares in constant time: the time taken says nothing about how
        // much of a forged signature was right.
        // One MAC over the body, compared (in constant time) with each candidate.
        let expected = self.mac(signed_at_s, body);
        let matches = candidates
            .iter()
            .any(|candidate| expected.clone().verify_slice(candidate).is_ok());
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The longest header [`SigningKey::sign`] writes: `t=`, 20 digits, `,v1=`, 64 hex digits.
const SIGNED_HEADER_LEN_MAX: usize = 2 + 20 + 4 + 64;

/// `value` in decimal, written at the end of `buffer` without allocating: the bytes
/// `value.to_string()` would give.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + u8::try_from(value % 10).expect("a digit");
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// The timestamp and the `v1=` candidates of a signature header.
fn parse(header: Option<&str>) -> Result<(u64, Vec<Vec<u8>>), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut signed_at_s = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                signed_at_s = Some(value.parse::<u64>().map_err(|_| {
                    SignatureError::Malformed(format!("timestamp `{value}` is not a number"))
                })?);
            }
            Some(("v1", value)) => candidates.push(
                crate::hex::decode(value)
                    .ok_or_else(|| SignatureError::Malformed("v1 is not hex".to_string()))?,
            ),
            // Other schemes (v0, ...) are ignored, as Stripe does, so senders can rotate.
            Some(_) => {}
            None => {
                return Err(SignatureError::Malformed(format!(
                    "`{part}` is not key=value"
                )));
            }
        }
    }
    let signed_at_s = signed_at_s.ok_or_else(|| SignatureError::Malformed("no t=".to_string()))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1=".to_string()));
    }
    Ok((signed_at_s, candidates))
}

/// The signature header value for `body` signed at `signed_at_s`. Keys `secret` for this
/// one signature: a caller signing many under one secret keeps a [`SigningKey`].
#[must_use]
pub fn sign(secret: &str, signed_at_s: u64, body: &[u8]) -> String {
    SigningKey::new(secret).sign(signed_at_s, body)
}

/// The signature header during a secret rotation: `body` signed under `secret` and, when
/// given, under the `previous` secret too (`t=..,v1=<new>,v1=<old>`), so a receiver holding
/// either secret accepts it ([`verify`] tries every `v1=`). Without `previous` it is
/// [`sign`]'s header, byte for byte.
#[must_use]
pub fn sign_rotating(
    secret: &str,
    previous: Option<&str>,
    signed_at_s: u64,
    body: &[u8],
) -> String {
    SigningKey::new(secret).sign_rotating(previous.map(SigningKey::new).as_ref(), signed_at_s, body)
}

/// Checks `header` against `body` at receiver time `now_ms`.
///
/// # Errors
/// [`SignatureError`] saying why the signature is refused.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_ms: u64,
    tolerance_s: u64,
) -> Result<(), SignatureError> {
    SigningKey::new(secret).verify(header, body, now_ms, tolerance_s)
}

/// Signing keys by secret, each keyed on first use: a sender's or receiver's handful of
/// secrets keyed once each instead of once per signature. Bounded: past
/// [`SIGNING_KEYS_LEN_MAX`] secrets it starts afresh (a live sender with more merchants
/// than that keys some again, which costs time, never correctness).
#[derive(Default)]
pub(crate) struct SigningKeys {
    keys: std::sync::Mutex<std::collections::BTreeMap<String, SigningKey>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Its keys are the secrets themselves: never printed.
        f.write_str("SigningKeys(..)")
    }
}

/// The most secrets [`SigningKeys`] holds keyed at once.
const SIGNING_KEYS_LEN_MAX: usize = 256;

impl SigningKeys {
    /// The key for `secret`, keyed now if it was not yet.
    pub(crate) fn key(&self, secret: &str) -> SigningKey {
        let mut keys = self.keys.lock().expect("signing keys lock poisoned");
        if let Some(key) = keys.get(secret) {
            return key.clone();
        }
        if keys.len() >= SIGNING_KEYS_LEN_MAX {
            keys.clear();
        }
        let key = SigningKey::new(secret);
        keys.insert(secret.to_string(), key.clone());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_767_225_600_000;

    #[test]
    fn signed_bodies_verify_and_tampering_is_refused() {
        // Proves a signature verifies for its body and fails for any change to the body,
        // the secret or the timestamp.
        let header = sign("whsec", NOW_MS / 1_000, b"{\"a\":1}");
        assert_eq!(
            verify("whsec", Some(&header), b"{\"a\":1}", NOW_MS, 300),
            Ok(())
        );
        assert_eq!(
            verify("whsec", Some(&header), b"{\"a\":2}", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(&header), b"{\"a\":1}", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace(
            &format!("t={}", NOW_MS / 1_000),
            &format!("t={}", NOW_MS / 1_000 + 1),
        );
        assert_eq!(
            verify("whsec", Some(&moved), b"{\"a\":1}", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        // Proves the tolerance window works both ways: a replay 301 s later and a
        // timestamp 301 s in the future are refused; 300 s is accepted.
        let old = sign("s", NOW_MS / 1_000 - 301, b"x");
        assert!(matches!(
            verify("s", Some(&old), b"x", NOW_MS, 300),
            Err(SignatureError::OutsideTolerance { skew_s: 301, .. })
        ));
        let future = sign("s", NOW_MS / 1_000 + 301, b"x");
        assert!(matches!(
            verify("s", Some(&future), b"x", NOW_MS, 300),
            Err(SignatureError::OutsideTolerance { .. })
        ));
        let edge = sign("s", NOW_MS / 1_000 - 300, b"x");
        assert_eq!(verify("s", Some(&edge), b"x", NOW_MS, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        // Proves each malformed header is refused with a reason, never a panic.
        assert_eq!(
            verify("s", None, b"x", NOW_MS, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1",
            "t=1,v1=zz",
            "t=1,v1=0",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify("s", Some(bad), b"x", NOW_MS, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn extra_schemes_are_ignored_and_any_v1_may_match() {
        // Proves key rotation: a header with an unknown scheme and two v1 values verifies
        // if either v1 matches.
        let good = sign("s", NOW_MS / 1_000, b"x");
        let v1 = good.split("v1=").nth(1).unwrap();
        let header = format!(
            "t={},v0=legacy,v1={},v1={v1}",
            NOW_MS / 1_000,
            "ab".repeat(32)
        );
        assert_eq!(verify("s", Some(&header), b"x", NOW_MS, 300), Ok(()));
    }

    #[test]
    fn a_rotating_signature_is_accepted_under_either_secret() {
        // Proves a delivery signed during a rotation verifies under the new secret and under
        // the old one, not under a third; and that without a previous secret the header is
        // exactly the single signature.
        let header = sign_rotating("new", Some("old"), NOW_MS / 1_000, b"x");
        assert_eq!(header.matches("v1=").count(), 2);
        for secret in ["new", "old"] {
            assert_eq!(
                verify(secret, Some(&header), b"x", NOW_MS, 300),
                Ok(()),
                "{secret}"
            );
        }
        assert_eq!(
            verify("other", Some(&header), b"x", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            sign_rotating("new", None, NOW_MS / 1_000, b"x"),
            sign("new", NOW_MS / 1_000, b"x")
        );
    }

    #[test]
    fn a_kept_key_signs_and_verifies_as_the_secret_does() {
        // Proves keying once is cost-only: a kept `SigningKey` (and one from `SigningKeys`,
        // asked twice) writes the same headers as `sign` / `sign_rotating` for timestamps of
        // every width, and verifies exactly what `verify` verifies.
        let keys = SigningKeys::default();
        for signed_at_s in [0, 7, 10, 1_767_225_600, u64::MAX] {
            // The header as the pre-keyed code wrote it: key, `to_string`, `format!`.
            let reference = |secret: &str, body: &[u8]| {
                let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(format!("{signed_at_s}.").as_bytes());
                mac.update(body);
                crate::hex::encode(&mac.finalize().into_bytes())
            };
            let single = format!("t={signed_at_s},v1={}", reference("whsec", b"{}"));
            let both = format!(
                "t={signed_at_s},v1={},v1={}",
                reference("whsec", b"x"),
                reference("old", b"x")
            );
            for key in [
                SigningKey::new("whsec"),
                keys.key("whsec"),
                keys.key("whsec"),
            ] {
                assert_eq!(key.sign(signed_at_s, b"{}"), single);
                assert_eq!(
                    key.sign_rotating(Some(&keys.key("old")), signed_at_s, b"x"),
                    both
                );
            }
            assert_eq!(sign("whsec", signed_at_s, b"{}"), single);
            assert_eq!(sign_rotating("whsec", Some("old"), signed_at_s, b"x"), both);
        }
        let key = keys.key("whsec");
        let header = sign("whsec", NOW_MS / 1_000, b"{}");
        assert_eq!(key.verify(Some(&header), b"{}", NOW_MS, 300), Ok(()));
        assert_eq!(
            key.verify(Some(&header), b"{ }", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            keys.key("other").verify(Some(&header), b"{}", NOW_MS, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn decimal_writes_what_to_string_writes() {
        // Proves the allocation-free timestamp digits are `to_string`'s, at every width.
        let mut buffer = [0_u8; 20];
        for value in [0, 9, 10, 99, 100, 1_767_225_600, u64::MAX / 10, u64::MAX] {
            assert_eq!(decimal(value, &mut buffer), value.to_string().as_bytes());
        }
    }
}
