//! shipsim's built-in corpus: target-neutral scenarios any [`crate::Target`] can run
//! ([`crate::Target::builtin_scenarios`]). They use no mix (the target's own weights), no
//! crash points (those are the reference system's) and name hosts only as `service`,
//! `downstreams` and `clients`, so they run on any service with any downstreams. Those that
//! fault the downstreams are left out for a target that has none.

/// Each scenario: (name, whether it needs a host besides `service`, TOML text).
pub const FILES: &[(&str, bool, &str)] = &[
    (
        "walking_skeleton",
        false,
        include_str!("walking_skeleton.toml"),
    ),
    ("lost_responses", false, include_str!("lost_responses.toml")),
    (
        "duplicate_delivery",
        false,
        include_str!("duplicate_delivery.toml"),
    ),
    (
        "service_crashes",
        false,
        include_str!("service_crashes.toml"),
    ),
    ("retry_storm", false, include_str!("retry_storm.toml")),
    (
        "downstream_trouble",
        true,
        include_str!("downstream_trouble.toml"),
    ),
    (
        "downstream_partition",
        true,
        include_str!("downstream_partition.toml"),
    ),
];
