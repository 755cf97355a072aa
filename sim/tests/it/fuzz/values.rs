//! Values for a field of a given [`Limit`]: at each end of its range, inside it, just
//! outside it, and far outside (the numbers a new user or a bit flip writes: 0, -1,
//! `u64::MAX`, `i64::MIN`). Drawn from the limits the parser itself enforces, so a new
//! field or a changed range is fuzzed without touching this file.

use proptest::prelude::*;
use shipsim::scenario::limits::Limit;

/// Where a drawn value may fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Inside the range only (both ends included).
    Inside,
    /// Inside, just outside, or far outside.
    Anywhere,
}

/// Integers written as TOML: in `limit` (ends weighted heavily), and with
/// [`Reach::Anywhere`] one past each end and the extremes of the integer types.
pub fn int(limit: Limit, reach: Reach) -> BoxedStrategy<i128> {
    let Limit::Int { min, max } = limit else {
        panic!("int() of a probability limit");
    };
    let inside = prop_oneof![
        3 => Just(min),
        3 => Just(max),
        1 => Just((min + 1).min(max)),
        1 => Just((max - 1).max(min)),
        2 => min..=max,
        // Small values are where most real scenarios live.
        2 => min..=max.min(min + 20),
    ];
    match reach {
        Reach::Inside => inside.boxed(),
        Reach::Anywhere => prop_oneof![
            6 => inside,
            2 => Just(min - 1),
            2 => Just(max + 1),
            1 => prop::sample::select(vec![
                0,
                -1,
                i128::from(u32::MAX),
                i128::from(u32::MAX) + 1,
                i128::from(i64::MAX),
                i128::from(i64::MIN),
                i128::from(u64::MAX),
            ]),
        ]
        .boxed(),
    }
}

/// Probabilities written as TOML text (so that `nan` and `inf` can be drawn).
pub fn probability(reach: Reach) -> BoxedStrategy<String> {
    let inside = prop_oneof![
        Just("0.0".to_string()),
        Just("1.0".to_string()),
        (0.0f64..=1.0).prop_map(|p| format!("{p:?}")),
    ];
    match reach {
        Reach::Inside => inside.boxed(),
        Reach::Anywhere => prop_oneof![
            4 => inside,
            1 => prop::sample::select(vec![
                "-0.0", "1.0000001", "-1e-9", "1e309", "nan", "inf", "-inf", "2", "1",
            ])
            .prop_map(str::to_string),
        ]
        .boxed(),
    }
}

/// A value of `limit` as TOML text.
pub fn toml_value(limit: Limit, reach: Reach) -> BoxedStrategy<String> {
    match limit {
        Limit::Int { .. } => int(limit, reach).prop_map(|v| v.to_string()).boxed(),
        Limit::Probability => probability(reach),
    }
}

/// A `[low, high]` pair of `limit` as TOML text; inside, `low <= high`.
pub fn toml_pair(limit: Limit, reach: Reach) -> BoxedStrategy<String> {
    (int(limit, reach), int(limit, reach))
        .prop_map(move |(a, b)| {
            let (low, high) = if reach == Reach::Inside {
                (a.min(b), a.max(b))
            } else {
                (a, b)
            };
            format!("[{low}, {high}]")
        })
        .boxed()
}
