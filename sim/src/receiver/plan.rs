//! What shipsim sends a receiver in one run: the genuine events (per resource, in
//! sequence) and the attacks on them, drawn from the seed and written out whole in a repro
//! file, so that shrinking removes attacks one by one and a replay needs nothing else.

use rand::Rng;
use serde::{Deserialize, Serialize};
use shipsim_system::seed::Seed;

/// Gap between two genuine events' first sends, ms.
pub(crate) const SPACING_MS: u64 = 40;

/// How far in the past a stale delivery is signed: an hour, well beyond the five minutes
/// Standard Webhooks and Stripe tolerate.
pub(crate) const STALE_S: u64 = 3_600;

/// One attack on the receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Attack {
    /// Send genuine event `event` `copies` more times, `gap_ms` after its first send (0: at
    /// once, racing it).
    Duplicate {
        event: u32,
        copies: u32,
        gap_ms: u64,
    },
    /// Hold genuine event `event` back `hold_ms`, so later events of its resource overtake it.
    Reorder { event: u32, hold_ms: u64 },
    /// Next to genuine event `event`, a delivery of a fresh event signed with the wrong key.
    Forge { event: u32 },
    /// Next to genuine event `event`, a fresh event correctly signed an hour ago.
    Stale { event: u32 },
    /// Genuine event `event`'s signed headers over another (fresh) event's body.
    Tamper { event: u32 },
    /// `events` more genuine events, all sent at `at_ms`, on resources of their own.
    Burst { at_ms: u64, events: u32 },
    /// The receiver's host crashes at `at_ms` and restarts `for_ms` later; the sender
    /// retries what it could not deliver.
    Down { at_ms: u64, for_ms: u64 },
}

/// Everything one run sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Plan {
    /// Resources the genuine events are about.
    pub resources: u32,
    /// Events per resource, sequence 1..=this.
    pub per_resource: u32,
    /// The attacks.
    pub attacks: Vec<Attack>,
}

/// One event the sender may deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub id: String,
    pub kind: String,
    pub resource: String,
    pub sequence: u64,
}

impl Plan {
    /// The genuine events before any burst, in first-send order: resources interleaved,
    /// each resource's sequence rising.
    pub(crate) fn genuine(&self) -> u32 {
        self.resources * self.per_resource
    }

    /// Draws a plan from `seed`: a few resources, a few events each, and attacks of every
    /// kind the signing scheme allows; `burst_events` sized bursts when the seed draws one.
    pub(crate) fn draw(seed: Seed, timestamps: bool, burst_events: u32) -> Plan {
        let mut rng = seed.derive("receiver-plan").rng();
        let resources = rng.random_range(2..=4u32);
        let per_resource = rng.random_range(2..=4u32);
        let events = resources * per_resource;
        let mut attacks = Vec::new();
        for event in 0..events {
            if rng.random_bool(0.3) {
                let gap_ms = if rng.random_bool(0.5) {
                    0
                } else {
                    rng.random_range(1..=1_500)
                };
                attacks.push(Attack::Duplicate {
                    event,
                    copies: rng.random_range(1..=2),
                    gap_ms,
                });
            }
            if rng.random_bool(0.25) {
                attacks.push(Attack::Reorder {
                    event,
                    hold_ms: rng.random_range(50..=600),
                });
            }
        }
        for _ in 0..rng.random_range(1..=2) {
            attacks.push(Attack::Forge {
                event: rng.random_range(0..events),
            });
        }
        if timestamps {
            for _ in 0..rng.random_range(1..=2) {
                attacks.push(Attack::Stale {
                    event: rng.random_range(0..events),
                });
            }
        }
        for _ in 0..rng.random_range(1..=2) {
            attacks.push(Attack::Tamper {
                event: rng.random_range(0..events),
            });
        }
        if burst_events > 0 && rng.random_bool(0.3) {
            attacks.push(Attack::Burst {
                at_ms: rng.random_range(0..=u64::from(events) * SPACING_MS),
                events: burst_events,
            });
        }
        if rng.random_bool(0.4) {
            attacks.push(Attack::Down {
                at_ms: rng.random_range(0..=u64::from(events) * SPACING_MS + 200),
                for_ms: rng.random_range(500..=6_000),
            });
        }
        Plan {
            resources,
            per_resource,
            attacks,
        }
    }

    /// Smaller plans that might fail the same way: each without one attack, then with one
    /// resource or one event per resource fewer (attacks on events that no longer exist
    /// dropped), then with a burst halved.
    pub(crate) fn smaller(&self) -> Vec<Plan> {
        let mut out = Vec::new();
        for index in 0..self.attacks.len() {
            let mut plan = self.clone();
            plan.attacks.remove(index);
            out.push(plan);
        }
        if self.resources > 1 {
            out.push(self.resized(self.resources - 1, self.per_resource));
        }
        if self.per_resource > 1 {
            out.push(self.resized(self.resources, self.per_resource - 1));
        }
        for (index, attack) in self.attacks.iter().enumerate() {
            if let Attack::Burst { at_ms, events } = *attack
                && events > 1
            {
                let mut plan = self.clone();
                plan.attacks[index] = Attack::Burst {
                    at_ms,
                    events: events / 2,
                };
                out.push(plan);
            }
        }
        out
    }

    fn resized(&self, resources: u32, per_resource: u32) -> Plan {
        let events = resources * per_resource;
        let attacks = self
            .attacks
            .iter()
            .filter(|attack| match attack {
                Attack::Duplicate { event, .. }
                | Attack::Reorder { event, .. }
                | Attack::Forge { event }
                | Attack::Stale { event }
                | Attack::Tamper { event } => *event < events,
                Attack::Burst { .. } | Attack::Down { .. } => true,
            })
            .cloned()
            .collect();
        Plan {
            resources,
            per_resource,
            attacks,
        }
    }

    /// Genuine event `index` (bursts' events follow the plan's own), with `types` cycled by
    /// sequence and ids drawn from `seed`.
    pub(crate) fn event(&self, seed: Seed, types: &[String], index: u32) -> Event {
        let (resource, sequence) = if index < self.genuine() {
            (
                format!("res_{}", index % self.resources),
                u64::from(index / self.resources) + 1,
            )
        } else {
            let burst = index - self.genuine();
            (format!("burst_{}", burst % 16), u64::from(burst / 16) + 1)
        };
        Event {
            id: event_id(seed, "event", u64::from(index)),
            kind: type_for(types, sequence),
            resource,
            sequence,
        }
    }

    /// A fresh event (never genuine) for attack `index`, about genuine event `near`'s
    /// resource: what a forged, stale or tampered delivery carries.
    pub(crate) fn fresh(&self, seed: Seed, types: &[String], index: usize, near: &Event) -> Event {
        Event {
            id: event_id(seed, "fresh", index as u64),
            kind: type_for(types, near.sequence + 1),
            resource: near.resource.clone(),
            // Ahead of every genuine event: an attacker jumps the state forward.
            sequence: near.sequence + 100,
        }
    }

    /// How many burst events the plan holds.
    #[cfg(test)]
    pub(crate) fn burst_events(&self) -> u32 {
        self.attacks
            .iter()
            .map(|attack| match attack {
                Attack::Burst { events, .. } => *events,
                _ => 0,
            })
            .sum()
    }
}

fn type_for(types: &[String], sequence: u64) -> String {
    let index = usize::try_from(sequence.saturating_sub(1)).unwrap_or(usize::MAX);
    types[index.min(types.len() - 1)].clone()
}

fn event_id(seed: Seed, stream: &str, index: u64) -> String {
    format!(
        "evt_{:016x}",
        seed.derive("receiver-ids").derive_index(stream, index).0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_smaller_plan_is_smaller() {
        // Proves shrinking terminates: every candidate has fewer attacks, resources, events
        // or burst events than the plan it came from.
        let plan = Plan::draw(Seed(7), true, 64);
        let size = |p: &Plan| {
            p.attacks.len() as u64 + u64::from(p.genuine()) + u64::from(p.burst_events())
        };
        for smaller in plan.smaller() {
            assert!(size(&smaller) < size(&plan), "{smaller:?} from {plan:?}");
        }
    }

    #[test]
    fn plans_round_trip_through_toml() {
        // Proves a repro file's plan reads back as the plan that was written.
        let plan = Plan::draw(Seed(3), true, 32);
        let text = toml::to_string(&plan).unwrap();
        assert_eq!(toml::from_str::<Plan>(&text).unwrap(), plan);
    }
}
