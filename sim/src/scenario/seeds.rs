//! Seed ranges: `A..B` (half-open, as in Rust), `A..=B`, or a single seed `N`.

use std::fmt;

/// Most seeds one range may hold: ten million, far beyond any sweep we can run, small
/// enough that a typo like `0..99999999999` is refused rather than run for a week.
pub const SEEDS_MAX: u64 = 10_000_000;

/// A non-empty, bounded range of seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    start: u64,
    end: u64,
}

impl SeedRange {
    /// Seeds `start..end` (end exclusive).
    ///
    /// # Errors
    /// A sentence when the range is empty or larger than [`SEEDS_MAX`].
    pub fn new(start: u64, end: u64) -> Result<Self, String> {
        if end <= start {
            return Err(format!(
                "seed range {start}..{end} is empty: the end must be greater than the start"
            ));
        }
        if end - start > SEEDS_MAX {
            return Err(format!(
                "seed range {start}..{end} holds {} seeds, more than the {SEEDS_MAX} allowed",
                end - start
            ));
        }
        Ok(SeedRange { start, end })
    }

    /// One seed.
    ///
    /// # Panics
    /// For `u64::MAX`, which [`SeedRange::parse`] refuses.
    #[must_use]
    pub fn single(seed: u64) -> Self {
        SeedRange {
            start: seed,
            end: seed
                .checked_add(1)
                .expect("seed u64::MAX is refused by parse"),
        }
    }

    /// Parses `A..B`, `A..=B` or `N`.
    ///
    /// # Errors
    /// A sentence saying what is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let number = |part: &str| -> Result<u64, String> {
            part.trim().parse::<u64>().map_err(|_| {
                format!("bad seed range `{text}`: `{part}` is not a non-negative integer (accepted: A..B, A..=B, N)")
            })
        };
        if let Some((start, end)) = text.split_once("..=") {
            let (start, end) = (number(start)?, number(end)?);
            let end = end
                .checked_add(1)
                .ok_or_else(|| format!("bad seed range `{text}`: the end is too large"))?;
            return SeedRange::new(start, end).map_err(|m| format!("bad seed range `{text}`: {m}"));
        }
        if let Some((start, end)) = text.split_once("..") {
            return SeedRange::new(number(start)?, number(end)?)
                .map_err(|m| format!("bad seed range `{text}`: {m}"));
        }
        let seed = number(text)?;
        if seed == u64::MAX {
            return Err(format!(
                "bad seed `{text}`: seeds go up to {}",
                u64::MAX - 1
            ));
        }
        Ok(SeedRange::single(seed))
    }

    /// First seed.
    #[must_use]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Number of seeds.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true: ranges are non-empty by construction.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The seeds in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + use<> {
        self.start..self.end
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len() == 1 {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}..{}", self.start, self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        // Proves half-open, inclusive and single forms and their lengths.
        assert_eq!(SeedRange::parse("0..10").unwrap().len(), 10);
        assert_eq!(SeedRange::parse("0..=10").unwrap().len(), 11);
        assert_eq!(
            SeedRange::parse("7").unwrap().iter().collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(SeedRange::parse(" 3..5 ").unwrap().to_string(), "3..5");
    }

    #[test]
    fn refuses_bad_ranges_with_reasons() {
        // Proves empty, reversed, non-numeric and oversized ranges are errors that say why.
        assert!(SeedRange::parse("5..5").unwrap_err().contains("empty"));
        assert!(
            SeedRange::parse("9..2")
                .unwrap_err()
                .contains("greater than the start")
        );
        assert!(
            SeedRange::parse("a..b")
                .unwrap_err()
                .contains("not a non-negative integer")
        );
        assert!(SeedRange::parse("-1..4").is_err());
        assert!(
            SeedRange::parse("0..99999999999")
                .unwrap_err()
                .contains("more than")
        );
        assert!(SeedRange::parse("").is_err());
    }
}
