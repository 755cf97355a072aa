//! The verdicts on a receiver: each its own check over what the sender saw (every
//! delivery and its answer) and what the receiver shows afterwards (effects per event,
//! state per resource). Each returns every violation it finds, with evidence.

use std::collections::BTreeMap;

/// What a delivery carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// A genuine event, correctly signed and fresh (first send, retry or duplicate copy).
    Genuine,
    /// A fresh event signed with the wrong key.
    Forged,
    /// A fresh event correctly signed an hour ago.
    Stale,
    /// A genuine event's headers over a fresh event's body.
    Tampered,
}

impl Class {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Genuine => "genuine",
            Class::Forged => "forged",
            Class::Stale => "stale",
            Class::Tampered => "tampered",
        }
    }
}

/// One delivery attempt and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The event id the body carries.
    pub event: String,
    pub class: Class,
    /// A duplicate copy or a retry, not the event's first send.
    pub repeat: bool,
    /// Part of a burst.
    pub burst: bool,
    pub sent_ms: u64,
    /// When the answer came (none: the connection failed or timed out).
    pub answered_ms: Option<u64>,
    pub status: Option<u16>,
}

impl Delivery {
    fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What the receiver shows after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Observation {
    /// How many times each event's effect was applied (events never applied are absent).
    pub effects: BTreeMap<String, u64>,
    /// Each resource's sequence as read back (absent: not read back).
    pub sequences: BTreeMap<String, Option<u64>>,
}

/// Everything the verdicts judge.
#[derive(Clone, Debug, Default)]
pub(crate) struct Evidence {
    pub deliveries: Vec<Delivery>,
    /// Genuine events: id -> (resource, sequence).
    pub genuine: BTreeMap<String, (String, u64)>,
    pub observation: Observation,
}

/// A verdict on a webhook receiver: what must hold, whatever the sender did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Each distinct event's effect applied at most once, however often it was delivered.
    EffectOnce,
    /// A delivery signed with the wrong key is refused (non-2xx) and has no effect.
    ForgedRefused,
    /// A correctly signed delivery whose timestamp is an hour old is refused and has no effect.
    StaleRefused,
    /// A genuine signature over another body is refused and has no effect.
    TamperedRefused,
    /// A copy of an event already acknowledged is acknowledged again with 2xx (so a real
    /// sender stops retrying).
    DuplicatesAcknowledged,
    /// Each resource ends at the highest sequence delivered for it, whatever the order.
    NoRegression,
    /// Every genuine event is acknowledged and applied, receiver-down windows included.
    NothingLost,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 7] = [
        Verdict::EffectOnce,
        Verdict::ForgedRefused,
        Verdict::StaleRefused,
        Verdict::TamperedRefused,
        Verdict::DuplicatesAcknowledged,
        Verdict::NoRegression,
        Verdict::NothingLost,
    ];

    /// Its name in reports and repro files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Verdict::EffectOnce => "effect_once",
            Verdict::ForgedRefused => "forged_refused",
            Verdict::StaleRefused => "stale_refused",
            Verdict::TamperedRefused => "tampered_refused",
            Verdict::DuplicatesAcknowledged => "duplicates_acknowledged",
            Verdict::NoRegression => "no_regression",
            Verdict::NothingLost => "nothing_lost",
        }
    }

    /// What it demands, in a sentence (for reports).
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Verdict::EffectOnce => {
                "each distinct event's effect applied at most once, however often it was delivered"
            }
            Verdict::ForgedRefused => {
                "a delivery signed with the wrong key is refused (non-2xx) and has no effect"
            }
            Verdict::StaleRefused => {
                "a correctly signed delivery an hour old is refused and has no effect"
            }
            Verdict::TamperedRefused => {
                "a genuine signature over another body is refused and has no effect"
            }
            Verdict::DuplicatesAcknowledged => {
                "a copy of an event already acknowledged is acknowledged again with 2xx"
            }
            Verdict::NoRegression => {
                "each resource ends at the highest sequence sent for it, whatever the order"
            }
            Verdict::NothingLost => "every genuine event is acknowledged and applied",
        }
    }

    /// The verdict called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }

    pub(crate) fn check(self, evidence: &Evidence) -> Vec<String> {
        match self {
            Verdict::EffectOnce => effect_once(evidence),
            Verdict::ForgedRefused => refused(evidence, Class::Forged),
            Verdict::StaleRefused => refused(evidence, Class::Stale),
            Verdict::TamperedRefused => refused(evidence, Class::Tampered),
            Verdict::DuplicatesAcknowledged => duplicates_acknowledged(evidence),
            Verdict::NoRegression => no_regression(evidence),
            Verdict::NothingLost => nothing_lost(evidence),
        }
    }
}

fn deliveries_of<'a>(evidence: &'a Evidence, event: &'a str) -> impl Iterator<Item = &'a Delivery> {
    evidence.deliveries.iter().filter(move |d| d.event == event)
}

fn effect_once(evidence: &Evidence) -> Vec<String> {
    evidence
        .genuine
        .keys()
        .filter_map(|id| {
            let applied = evidence.observation.effects.get(id).copied().unwrap_or(0);
            (applied > 1).then(|| {
                let sent = deliveries_of(evidence, id).count();
                format!("event {id} was applied {applied} times (delivered {sent} times)")
            })
        })
        .collect()
}

fn refused(evidence: &Evidence, class: Class) -> Vec<String> {
    let mut out = Vec::new();
    for delivery in evidence.deliveries.iter().filter(|d| d.class == class) {
        if delivery.acknowledged() {
            out.push(format!(
                "{} delivery of event {} sent at {} ms was acknowledged with {}",
                class.name(),
                delivery.event,
                delivery.sent_ms,
                delivery.status.unwrap_or_default()
            ));
        }
        let applied = evidence
            .observation
            .effects
            .get(&delivery.event)
            .copied()
            .unwrap_or(0);
        if applied > 0 {
            out.push(format!(
                "{} delivery of event {} sent at {} ms (answered {}) had its effect applied {applied} time(s)",
                class.name(),
                delivery.event,
                delivery.sent_ms,
                delivery
                    .status
                    .map_or_else(|| "nothing".to_string(), |s| s.to_string())
            ));
        }
    }
    out
}

fn duplicates_acknowledged(evidence: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    for id in evidence.genuine.keys() {
        let Some(first_ack_ms) = deliveries_of(evidence, id)
            .filter(|d| d.acknowledged())
            .filter_map(|d| d.answered_ms)
            .min()
        else {
            continue;
        };
        for delivery in deliveries_of(evidence, id) {
            let after = delivery.sent_ms >= first_ack_ms;
            if let (true, Some(status)) = (after, delivery.status)
                && !(200..300).contains(&status)
            {
                out.push(format!(
                    "event {id}, acknowledged at {first_ack_ms} ms, was sent again at {} ms and answered {status}",
                    delivery.sent_ms
                ));
            }
        }
    }
    out
}

fn no_regression(evidence: &Evidence) -> Vec<String> {
    let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
    for (resource, sequence) in evidence.genuine.values() {
        let entry = highest.entry(resource.as_str()).or_insert(0);
        *entry = (*entry).max(*sequence);
    }
    let mut out = Vec::new();
    for (resource, expected) in highest {
        let Some(Some(seen)) = evidence.observation.sequences.get(resource) else {
            continue;
        };
        if *seen < expected {
            out.push(format!(
                "resource {resource} ended at sequence {seen}, behind the {expected} it was sent (an older event overwrote a newer one)"
            ));
        }
    }
    out
}

fn nothing_lost(evidence: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    for id in evidence.genuine.keys() {
        let acknowledged = deliveries_of(evidence, id).any(Delivery::acknowledged);
        let applied = evidence.observation.effects.get(id).copied().unwrap_or(0);
        if !acknowledged {
            let attempts = deliveries_of(evidence, id).count();
            out.push(format!(
                "event {id} was never acknowledged ({attempts} attempts): the sender gave up"
            ));
        } else if applied == 0 {
            out.push(format!(
                "event {id} was acknowledged but its effect is missing"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(event: &str, class: Class, sent_ms: u64, status: Option<u16>) -> Delivery {
        Delivery {
            event: event.into(),
            class,
            repeat: false,
            burst: false,
            sent_ms,
            answered_ms: status.map(|_| sent_ms + 5),
            status,
        }
    }

    /// Two genuine events on one resource, each delivered once, acknowledged and applied.
    fn clean() -> Evidence {
        let mut evidence = Evidence::default();
        evidence.genuine.insert("e1".into(), ("r".into(), 1));
        evidence.genuine.insert("e2".into(), ("r".into(), 2));
        evidence
            .deliveries
            .push(delivery("e1", Class::Genuine, 0, Some(200)));
        evidence
            .deliveries
            .push(delivery("e2", Class::Genuine, 10, Some(200)));
        evidence.observation.effects.insert("e1".into(), 1);
        evidence.observation.effects.insert("e2".into(), 1);
        evidence.observation.sequences.insert("r".into(), Some(2));
        evidence
    }

    fn only(evidence: &Evidence) -> Vec<Verdict> {
        Verdict::ALL
            .into_iter()
            .filter(|v| !v.check(evidence).is_empty())
            .collect()
    }

    #[test]
    fn a_clean_history_holds_every_verdict() {
        // Proves no verdict fires on a receiver that did everything right.
        assert_eq!(only(&clean()), Vec::<Verdict>::new());
    }

    #[test]
    fn a_double_effect_breaks_effect_once_only() {
        // Proves effect_once bites on an event applied twice, and nothing else does.
        let mut evidence = clean();
        evidence.observation.effects.insert("e1".into(), 2);
        assert_eq!(only(&evidence), vec![Verdict::EffectOnce]);
    }

    #[test]
    fn each_bad_delivery_class_has_its_own_verdict() {
        // Proves forged, stale and tampered deliveries are judged apart: an acknowledged
        // forgery breaks forged_refused, an applied stale event stale_refused, and so on.
        for (class, verdict) in [
            (Class::Forged, Verdict::ForgedRefused),
            (Class::Stale, Verdict::StaleRefused),
            (Class::Tampered, Verdict::TamperedRefused),
        ] {
            let mut acknowledged = clean();
            acknowledged
                .deliveries
                .push(delivery("x", class, 5, Some(200)));
            assert_eq!(only(&acknowledged), vec![verdict], "{class:?} acknowledged");
            let mut applied = clean();
            applied.deliveries.push(delivery("x", class, 5, Some(401)));
            applied.observation.effects.insert("x".into(), 1);
            assert_eq!(only(&applied), vec![verdict], "{class:?} applied");
        }
    }

    #[test]
    fn a_refused_duplicate_breaks_duplicates_acknowledged_only() {
        // Proves a copy sent after the first acknowledgement and answered 409 is caught;
        // a copy racing the first (sent before it was answered) may be refused.
        let mut evidence = clean();
        evidence
            .deliveries
            .push(delivery("e1", Class::Genuine, 2, Some(409)));
        assert_eq!(only(&evidence), Vec::<Verdict>::new());
        evidence
            .deliveries
            .push(delivery("e1", Class::Genuine, 50, Some(409)));
        assert_eq!(only(&evidence), vec![Verdict::DuplicatesAcknowledged]);
    }

    #[test]
    fn a_state_behind_its_newest_event_breaks_no_regression_only() {
        // Proves no_regression bites when a resource ends at an older event's sequence.
        let mut evidence = clean();
        evidence.observation.sequences.insert("r".into(), Some(1));
        assert_eq!(only(&evidence), vec![Verdict::NoRegression]);
    }

    #[test]
    fn a_lost_event_breaks_nothing_lost_only() {
        // Proves nothing_lost bites both on an event never acknowledged and on one
        // acknowledged but never applied.
        let mut unacknowledged = clean();
        unacknowledged.deliveries[1].status = Some(503);
        assert_eq!(only(&unacknowledged), vec![Verdict::NothingLost]);
        let mut unapplied = clean();
        unapplied.observation.effects.remove("e2");
        assert_eq!(only(&unapplied), vec![Verdict::NothingLost]);
    }
}
