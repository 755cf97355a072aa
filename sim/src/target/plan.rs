//! A target's operation table for one scenario: every create and read its [`Api`] offers,
//! in table order, with the weight the scenario's `mix` gives it.

use std::sync::Arc;

use super::api::{Api, Caller, Conventions, Kind};
use crate::run::history::{Endpoint, OpKind, Verb};
use crate::scenario::Scenario;

/// Kind tables larger than this are refused: a `u16` indexes them, and a workload mixing
/// more resource kinds than this is not one anybody writes.
pub(crate) const KINDS_MAX: usize = 256;

/// The checked kinds of an [`Api`].
#[derive(Clone, Debug)]
pub(crate) struct KindTable {
    kinds: Arc<[Kind]>,
    /// Every operation: creates of each kind, then reads of each kind.
    ops: Arc<[OpKind]>,
}

impl KindTable {
    /// Checks `api`'s kinds: at least one, names unique and non-empty, parents declared
    /// before their children, routes non-empty.
    ///
    /// # Errors
    /// A sentence naming the first problem.
    pub(crate) fn of(api: &dyn Api) -> Result<KindTable, String> {
        let kinds = api.kinds();
        if kinds.is_empty() {
            return Err("the API adapter declares no resource kinds (`Api::kinds`)".into());
        }
        if kinds.len() > KINDS_MAX {
            return Err(format!(
                "the API adapter declares {} kinds; at most {KINDS_MAX} are supported",
                kinds.len()
            ));
        }
        for (index, kind) in kinds.iter().enumerate() {
            if kind.name().is_empty()
                || !kind
                    .name()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "kind `{}`: a kind's name is letters, digits and `_` (it names operations such as `create_{}`)",
                    kind.name(),
                    kind.name()
                ));
            }
            if kinds[..index].iter().any(|k| k.name() == kind.name()) {
                return Err(format!("kind `{}` is declared twice", kind.name()));
            }
            if kind.create_route().trim().is_empty() {
                return Err(format!("kind `{}` has an empty create route", kind.name()));
            }
            if let Some(parent) = kind.parent_kind()
                && !kinds[..index].iter().any(|k| k.name() == parent)
            {
                return Err(format!(
                    "kind `{}` names parent `{parent}`, which is not declared before it",
                    kind.name()
                ));
            }
        }
        let count = u16::try_from(kinds.len()).expect("bounded by KINDS_MAX");
        let mut ops = Vec::with_capacity(kinds.len() * 2);
        for verb in [Verb::Create, Verb::Read] {
            for (index, kind) in kinds.iter().enumerate() {
                let index = u16::try_from(index).expect("bounded by KINDS_MAX");
                let route = match verb {
                    Verb::Create => kind.create_route(),
                    Verb::Read => kind.read_route_template().unwrap_or("(no read route)"),
                };
                ops.push(OpKind::new(verb, index, count, kind.name(), route));
            }
        }
        Ok(KindTable {
            kinds: kinds.into(),
            ops: ops.into(),
        })
    }

    /// The kinds, in declaration order.
    pub(crate) fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// Every operation, in table order.
    pub(crate) fn ops(&self) -> &[OpKind] {
        &self.ops
    }

    /// The operation `verb` on kind `index`.
    pub(crate) fn op(&self, verb: Verb, index: usize) -> &OpKind {
        let offset = match verb {
            Verb::Create => 0,
            Verb::Read => self.kinds.len(),
        };
        &self.ops[offset + index]
    }

    fn exists(&self, op: &OpKind) -> bool {
        op.is_write() || self.kinds[op.kind_index()].read_route_template().is_some()
    }

    /// The names of every operation, for error hints.
    pub(crate) fn names(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter(|op| self.exists(op))
            .map(OpKind::name)
            .collect()
    }

    /// Every endpoint, in endpoint order (each kind's create, then its read).
    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        let mut endpoints: Vec<Endpoint> = self
            .ops
            .iter()
            .filter(|op| self.exists(op))
            .map(OpKind::endpoint)
            .collect();
        endpoints.sort();
        endpoints
    }

    /// The index of the kind called `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.kinds.iter().position(|k| k.name() == name)
    }

    /// The default weights of each operation, in table order.
    pub(crate) fn default_weights(&self) -> Vec<u32> {
        self.ops
            .iter()
            .map(|op| {
                let (create, read) = self.kinds[op.kind_index()].default_weights();
                match op.verb() {
                    Verb::Create => create,
                    Verb::Read if self.exists(op) => read,
                    Verb::Read => 0,
                }
            })
            .collect()
    }
}

/// What one run of a target needs to drive its API: the adapter, its kinds, each
/// operation's weight under the scenario's mix, and the callers.
#[derive(Clone)]
pub(crate) struct Plan {
    pub api: Arc<dyn Api>,
    pub table: KindTable,
    /// Weight of each operation of `table.ops()`, same order.
    pub weights: Vec<u32>,
    pub callers: Arc<[Caller]>,
    pub conventions: Conventions,
    /// The user's client, when the target brings one.
    pub client: Option<super::user_client::ClientFactory>,
}

impl Plan {
    /// The plan for `scenario` (whose mix names operations of `table`, checked when the
    /// scenario was parsed against the target).
    pub(crate) fn new(api: Arc<dyn Api>, table: KindTable, scenario: &Scenario) -> Plan {
        let weights = match &scenario.workload.mix {
            Some(mix) => table
                .ops()
                .iter()
                .map(|op| mix.weight(&op.name()))
                .collect(),
            None => table.default_weights(),
        };
        let callers: Arc<[Caller]> = (0..scenario.hosts.callers).map(Caller::new).collect();
        Plan {
            conventions: api.conventions(),
            api,
            table,
            weights,
            callers,
            client: None,
        }
    }

    /// Sum of the weights.
    pub(crate) fn total(&self) -> u32 {
        self.weights.iter().sum()
    }

    /// The caller with id `id`.
    pub(crate) fn caller(&self, id: &str) -> Option<&Caller> {
        self.callers.iter().find(|c| c.id == id)
    }
}
