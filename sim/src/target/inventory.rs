//! What a target holds and what it spent, at the end of a run, in shipsim's own terms: the
//! [`Inventory`] of resources (read from the target's durable stores, when the target says
//! how) and the [`Effect`]s its downstreams recorded. The oracles judge these against the
//! history; the downstreams' ledgers, not the service's word, are the ground truth of
//! exactly-once.

use std::collections::BTreeMap;

/// One resource the target holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// Its kind's name ([`crate::Kind::name`]).
    pub kind: String,
    /// Its id.
    pub id: String,
    /// The caller that owns it.
    pub caller: String,
    /// The idempotency key it was created under.
    pub key: Option<String>,
    /// Its parent's id, for kinds with a parent.
    pub parent: Option<String>,
    /// The ids of its children, when the target keeps such a list (an order's shipments);
    /// `None` when it does not.
    pub children: Option<Vec<String>>,
    /// Its state.
    pub state: Option<String>,
    /// Its reference at the downstream (a label, a charge), once it has one.
    pub downstream_ref: Option<String>,
    /// Whether its state says the downstream effect is done (a shipment with its label, a
    /// captured payment): such a resource must carry its `downstream_ref`, and no other
    /// may. `None` when the target does not say.
    pub settled: Option<bool>,
}

/// Work the target left half-done: an idempotency record still in progress, a resource
/// still waiting for its downstream effect. After the faults heal and every ambiguous
/// operation is re-issued, nothing may be left like this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// The caller it belongs to.
    pub caller: String,
    /// The idempotency key it was started under.
    pub key: String,
    /// What is unfinished, in a sentence.
    pub what: String,
}

/// Everything a target holds, in one view (the running process's, or what would survive a
/// crash), indexed by kind and id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    resources: Vec<Resource>,
    by_kind_id: BTreeMap<(String, String), usize>,
    by_id: BTreeMap<String, usize>,
    /// Work left half-done.
    pub unfinished: Vec<Unfinished>,
    /// Broken invariants of the target's own that the reader found (an order `created`
    /// although one of its shipments has a label), one sentence each.
    pub inconsistencies: Vec<String>,
}

impl Inventory {
    /// An inventory of `resources`, kept in the order given (give a deterministic one).
    #[must_use]
    pub fn new(resources: Vec<Resource>) -> Inventory {
        let mut by_kind_id = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        for (position, resource) in resources.iter().enumerate() {
            by_kind_id
                .entry((resource.kind.clone(), resource.id.clone()))
                .or_insert(position);
            by_id.entry(resource.id.clone()).or_insert(position);
        }
        Inventory {
            resources,
            by_kind_id,
            by_id,
            unfinished: Vec::new(),
            inconsistencies: Vec::new(),
        }
    }

    /// Every resource, in the order given.
    #[must_use]
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The resource of kind `kind` with id `id`.
    #[must_use]
    pub fn get(&self, kind: &str, id: &str) -> Option<&Resource> {
        self.by_kind_id
            .get(&(kind.to_string(), id.to_string()))
            .map(|&i| &self.resources[i])
    }

    /// The first resource, of any kind, with id `id` (for effects, which name the resource
    /// they were for by id only).
    #[must_use]
    pub fn find(&self, id: &str) -> Option<&Resource> {
        self.by_id.get(id).map(|&i| &self.resources[i])
    }
}

/// Both views of a target's inventory at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventories {
    /// What the running process sees.
    pub live: Inventory,
    /// What would survive a crash now.
    pub durable: Inventory,
}

/// One side effect a downstream performed: a label sold, a card charged. Replays of a
/// stored outcome are not effects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effect {
    /// The downstream's host name.
    pub downstream: String,
    /// What it is (`label`, `charge`).
    pub what: String,
    /// Its id at the downstream (what the target stores as the resource's
    /// `downstream_ref`).
    pub id: String,
    /// The idempotency key the target sent with it, if any.
    pub key: Option<String>,
    /// The target's resource it was for, when the request said (the shipment a label was
    /// bought for).
    pub subject: Option<String>,
    /// When, by the downstream's clock, ms since the Unix epoch.
    pub at_ms: u64,
}
