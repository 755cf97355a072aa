//! What a sweep hands to the `reports` crate.
//!
//! `summary` builds the report model (`reports::model`) from a sweep and its
//! triage, running nothing; `stats` counts operations and outcomes per seed;
//! `wall` measures the process (wall time, peak memory) for the report.

#[doc(hidden)]
pub mod stats;
#[doc(hidden)]
pub mod summary;
pub(crate) mod wall;
