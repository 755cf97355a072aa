//! Integration tests of the report crate: one binary, one module per concern. Every test
//! builds its reports in code ([`fixture`]), so the renderers' snapshots are deterministic.

mod compare;
mod fixture;
mod html;
mod live;
mod merge;
mod receiver;
mod renderers;
