//! Many runs: a sweep over scenarios and seeds, and what is done with its
//! failures.
//!
//! `sweep` runs every (scenario, seed) on a worker pool; `triage` re-runs and
//! shrinks the failures a sweep found; `shrink` minimises one failing case;
//! `hunt` checks that each planted bug is caught; `explore` draws random
//! scenarios and sweeps them.

#[doc(hidden)]
pub mod explore;
#[doc(hidden)]
pub mod hunt;
#[doc(hidden)]
pub mod shrink;
#[doc(hidden)]
pub mod sweep;
#[doc(hidden)]
pub mod triage;
