//! Target descriptions (`shipsim live --api FILE`), fuzzed through the same
//! [`InputFormat`] properties as scenario files: generated with a valid structure and
//! values at and just outside their ranges, mutated from the shipped descriptions
//! (`examples/*/target.toml`) the way a new user edits one, and arbitrary text.
//!
//! Properties: `check` never panics; what it refuses has a located message; what it
//! accepts writes back to the same description, and its adapter builds a create and a read
//! of every kind for a few seeds without a panic (`Description::samples`).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use shipsim::described::Description;
use shipsim::scenario::limits::Limit;

use super::format::{self, InputFormat, Refusal};
use super::scenario::{Mutation, apply, mutation};
use super::values::{self, Reach};

/// Target descriptions as an [`InputFormat`].
pub struct DescriptionFormat;

/// Where relative paths of fuzzed descriptions resolve: the Python example's directory, so
/// that `spec = "carrier.toml"` names a real downstream spec.
fn base() -> PathBuf {
    crate::support::repo().join("examples/python-shipping")
}

impl InputFormat for DescriptionFormat {
    type Accepted = Description;

    fn check(file: &str, text: &str) -> Result<Description, Refusal> {
        Ok(Description::parse(file, text, &base())?)
    }

    fn load(path: &Path) -> Result<Description, Refusal> {
        Ok(Description::load(path)?)
    }

    fn run_briefly(description: &Description) {
        let mut outcome = None;
        let panics = format::count_panics(|| {
            outcome = Some(
                (0..3)
                    .map(|seed| description.samples(seed))
                    .collect::<Vec<_>>(),
            );
        });
        assert_eq!(
            panics, 0,
            "building requests panicked (see the message above)"
        );
        for samples in outcome.expect("samples ran") {
            let lines = samples.unwrap_or_else(|problem| panic!("{problem}"));
            assert!(!lines.is_empty(), "no request was built");
        }
    }

    fn write_back(description: &Description) -> String {
        description.to_toml()
    }

    fn same(a: &Description, b: &Description) -> bool {
        let mut b = b.clone();
        b.file.clone_from(&a.file);
        *a == b
    }
}

/// The shipped descriptions, as bytes.
fn shipped() -> Vec<(String, Vec<u8>)> {
    [
        "examples/python-shipping/target.toml",
        "examples/reference/target.toml",
    ]
    .into_iter()
    .map(|path| {
        let bytes = std::fs::read(crate::support::repo().join(path)).expect("readable");
        (path.to_string(), bytes)
    })
    .collect()
}

/// A shipped description with one to three mutations.
fn mutated() -> BoxedStrategy<(String, Vec<Mutation>, Vec<u8>)> {
    let files = shipped();
    (0..files.len(), prop::collection::vec(mutation(), 1..=3))
        .prop_map(move |(index, mutations)| {
            let (name, original) = &files[index];
            let mut bytes = original.clone();
            for mutation in &mutations {
                apply(&mut bytes, mutation);
            }
            (name.clone(), mutations, bytes)
        })
        .boxed()
}

/// A route with a method and a path drawn from the valid and the mistaken.
fn route(placeholder: bool) -> BoxedStrategy<String> {
    let method = prop::sample::select(vec!["POST", "PUT", "GET", "post", "FETCH", ""]);
    let path = if placeholder {
        prop::sample::select(vec![
            "/api/things/{id}",
            "/api/things/{thing_id}/parts",
            "/api/{a}/{b}",
            "/api/things/{",
            "api/things/{id}",
            "/api/things/{}",
            "/api/th ings/{id}",
        ])
    } else {
        prop::sample::select(vec![
            "/api/things",
            "/",
            "/api/things?x=1",
            "/api/{id}",
            "/a b",
        ])
    };
    (method, path).prop_map(|(m, p)| format!("{m} {p}")).boxed()
}

/// A body-template string, valid or not.
fn body_value() -> BoxedStrategy<String> {
    let bounds = values::int(Limit::int(-(1 << 53), 1 << 53), Reach::Anywhere);
    prop_oneof![
        (bounds.clone(), bounds).prop_map(|(a, b)| format!("\"{{{{int {a}..={b}}}}}\"")),
        prop::sample::select(vec![
            "\"{{choice a|b|c}}\"",
            "\"{{choice DE|FR refused AQ}}\"",
            "\"{{choice }}\"",
            "\"{{hex 8}}\"",
            "\"{{digits 65}}\"",
            "\"{{seq}}-{{slot}}\"",
            "\"{{parent}}\"",
            "\"{{caller}}\"",
            "\"{{nope}}\"",
            "\"{{int 1..2}}\"",
            "\"plain\"",
            "1979-05-27",
            "[1, \"{{seq}}\", { x = \"{{hex 2}}\" }]",
            "1.5",
            "true",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// Descriptions with a valid structure and drawn values.
fn structured() -> BoxedStrategy<String> {
    let status = values::int(Limit::int(400, 499), Reach::Anywhere);
    let weight = values::int(Limit::int(0, 1_000_000), Reach::Anywhere);
    (
        (status.clone(), status, weight.clone(), weight),
        (route(false), route(true), route(true), route(true)),
        (body_value(), body_value(), any::<bool>(), any::<bool>()),
        prop::sample::select(vec![
            "/id",
            "/data/id",
            "id",
            "",
            "/a~2",
            "/items/0/id",
        ]),
        prop::sample::select(vec!["/w", "/n", "/missing", "/p"]),
    )
        .prop_map(
            |(
                (in_flight, reused, create_weight, read_weight),
                (parent_create, parent_read, child_create, child_read),
                (w, n, spends, key_in_body),
                id,
                vary,
            )| {
                let key = if key_in_body {
                    "key_field = \"/request_id\"\nkey_header = \"Idempotency-Key\""
                } else {
                    "key_header = \"Idempotency-Key\""
                };
                format!(
                    "name = \"fuzzed\"\nready = \"GET /healthz\"\n\n[auth]\nheader = \"Authorization\"\nvalue = \"Bearer key-{{caller}}\"\n\n\
                     [idempotency]\nin_flight_status = {in_flight}\nkey_reused_status = {reused}\n\n\
                     [[kind]]\nname = \"thing\"\ncreate = \"{parent_create}\"\nread = \"{parent_read}\"\n{key}\nweights = [{create_weight}, {read_weight}]\nresponse = {{ id = \"{id}\" }}\n\n\
                     [[kind]]\nname = \"part\"\nparent = \"thing\"\ncreate = \"{child_create}\"\nread = \"{child_read}\"\nkey_header = \"Idempotency-Key\"\nspends = {spends}\nvary = \"{vary}\"\n\
                     states = [\"open\", \"done|failed\"]\nresponse = {{ id = \"{id}\", state = \"/state\", downstream_ref = \"/ref\" }}\nbody = {{ w = {w}, n = {n}, p = \"{{{{parent}}}}\" }}\n\n\
                     [[downstream]]\nspec = \"carrier.toml\"\nurl = \"http://127.0.0.1:9100\"\n"
                )
            },
        )
        .boxed()
}

proptest! {
    #![proptest_config(format::config(128))]

    /// Generated descriptions, values anywhere: `check` never panics, refusals are
    /// located, and what is accepted writes back to the same description and builds its
    /// requests.
    #[test]
    fn generated_descriptions_are_accepted_or_refused_with_a_position(text in structured()) {
        if let Some(description) = format::check_is_located::<DescriptionFormat>(&text)? {
            format::accepted_runs_and_round_trips::<DescriptionFormat>(&description)?;
        }
    }

    /// Mutated shipped descriptions: `check` never panics, refusals are located (bytes
    /// that are no longer UTF-8 are refused naming the file), and what is accepted writes
    /// back to the same description and builds its requests.
    #[test]
    fn mutated_descriptions_are_accepted_or_refused_with_a_position(
        (name, mutations, bytes) in mutated()
    ) {
        let _ = (&name, &mutations);
        let scratch = format::scratch("mutated-target.toml");
        if let Some(description) =
            format::check_bytes_is_located::<DescriptionFormat>(&bytes, &scratch)?
        {
            format::accepted_runs_and_round_trips::<DescriptionFormat>(&description)?;
        }
    }

    /// Arbitrary text: `check` never panics and refusals are located.
    #[test]
    fn arbitrary_text_is_refused_as_a_description_with_a_position(text in "\\PC{0,120}") {
        format::check_is_located::<DescriptionFormat>(&text)?;
    }
}

#[test]
fn the_shipped_descriptions_round_trip_and_build_their_requests() {
    // Proves the properties hold on the unmutated files, so a failure above comes from a
    // mutation, not from the files themselves.
    for (name, bytes) in shipped() {
        let text = String::from_utf8(bytes).unwrap();
        let description = DescriptionFormat::check(&name, &text)
            .unwrap_or_else(|refusal| panic!("{}", refusal.rendered));
        format::accepted_runs_and_round_trips::<DescriptionFormat>(&description).unwrap();
    }
}
