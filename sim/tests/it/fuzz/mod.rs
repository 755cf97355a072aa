//! Property-based fuzzing of every input shipsim reads (issue 25): scenario files, command
//! lines, and target descriptions (issue 21), the files through [`format::InputFormat`].
//!
//! `PROPTEST_CASES=N cargo test -p shipsim --test it fuzz` runs N cases of every property;
//! without it each property runs its own default, sized for CI. Failing cases shrink and
//! are persisted under `sim/tests/proptest-regressions/fuzz/` (committed), and every case
//! found is also a named test in [`regressions`].

mod cli;
mod description;
mod format;
mod limits;
mod regressions;
mod scenario;
mod values;
