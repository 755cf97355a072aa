//! Comparing secrets (API keys, the admin key, the carrier's key) without telling an
//! attacker, through the time it takes, how much of a guess was right.
//!
//! A presented secret is never looked up in a map or compared with `==`: both stop at the
//! first differing byte, so response times leak a key byte by byte. Instead both sides are
//! hashed with SHA-256 (which also hides the expected key's length) and the digests are
//! compared with `subtle`'s constant-time equality; a [`KeyRing`] compares a presented key
//! with every configured key, whichever matches, and picks the match without a branch.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Whether `presented` equals `expected`, in time independent of where they differ and of
/// the expected secret's length.
pub(crate) fn equal(presented: &[u8], expected: &[u8]) -> bool {
    digest(presented).ct_eq(&digest(expected)).into()
}

/// A set of secrets, each naming a value (an API key its merchant): finds the value of a
/// presented secret by comparing it with every secret of the set.
#[derive(Clone, Debug)]
pub(crate) struct KeyRing<T> {
    digests: Vec<[u8; 32]>,
    values: Vec<T>,
}

impl<T> KeyRing<T> {
    /// The ring of `(secret, value)` pairs.
    pub(crate) fn new(entries: impl IntoIterator<Item = (impl AsRef<[u8]>, T)>) -> Self {
        let (digests, values) = entries
            .into_iter()
            .map(|(secret, value)| (digest(secret.as_ref()), value))
            .unzip();
        KeyRing { digests, values }
    }

    /// The value of `presented`, if it is one of the ring's secrets.
    pub(crate) fn find(&self, presented: &[u8]) -> Option<&T> {
        self.find_with(presented, |a, b| a.ct_eq(b))
    }

    /// [`Self::find`] with the digest comparison given, so a test can count comparisons.
    fn find_with(
        &self,
        presented: &[u8],
        mut compare: impl FnMut(&[u8; 32], &[u8; 32]) -> Choice,
    ) -> Option<&T> {
        let presented = digest(presented);
        let mut found = Choice::from(0);
        let mut index = 0_u64;
        for (i, candidate) in self.digests.iter().enumerate() {
            let hit = compare(candidate, &presented);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        if bool::from(found) {
            self.values.get(usize::try_from(index).ok()?)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_compares_secrets_not_prefixes() {
        // Proves equality is exact: a prefix, an extension, a one-byte change and the empty
        // string are all refused; only the secret itself is accepted.
        let secret = b"sk_admin_local";
        assert!(equal(secret, secret));
        for wrong in [
            &b"sk_admin_loca"[..],
            b"sk_admin_localx",
            b"sk_admin_locaL",
            b"",
        ] {
            assert!(!equal(wrong, secret), "{}", String::from_utf8_lossy(wrong));
        }
    }

    #[test]
    fn a_key_ring_compares_every_key_whichever_matches() {
        // Proves the lookup does the same work for every presented key: it compares the
        // presented digest with each of the 16 keys exactly once, whether the key matches
        // the first entry, the last, none, or is a prefix of one (a map lookup or an early
        // return would stop sooner on some of them), and still finds the right value.
        let ring = KeyRing::new((0..16).map(|i| (format!("sk_sim_merchant_{i}"), i)));
        for (presented, expected) in [
            ("sk_sim_merchant_0", Some(0)),
            ("sk_sim_merchant_15", Some(15)),
            ("sk_sim_merchant_1", Some(1)),
            ("sk_sim_merchant_", None),
            ("sk_sim_merchant_16", None),
            ("", None),
        ] {
            let mut comparisons = 0;
            let found = ring.find_with(presented.as_bytes(), |a, b| {
                comparisons += 1;
                a.ct_eq(b)
            });
            assert_eq!(found.copied(), expected, "{presented}");
            assert_eq!(comparisons, 16, "{presented}");
            assert_eq!(ring.find(presented.as_bytes()).copied(), expected);
        }
    }
}
