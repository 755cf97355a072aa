//! `acknowledged_writes`: every write the service acknowledged is in the durable store, as
//! acknowledged: a shipment answered with a label has that label on disk. A write that is
//! only in memory at the end would be lost by a crash now, so it counts even if no crash
//! happened.

use super::{OracleInput, OracleKind, Violation};
use crate::history::{OpOutcome, Resource};

const ORACLE: OracleKind = OracleKind::AcknowledgedWrites;

pub(super) fn check(input: &OracleInput<'_>) -> Vec<Violation> {
    let mut found = Vec::new();
    for op in input
        .history
        .operations()
        .iter()
        .filter(|op| op.kind.is_write())
    {
        let OpOutcome::Ok { resource, .. } = &op.outcome else {
            continue;
        };
        match resource {
            Resource::Order(order) => {
                if !input.durable.orders.contains_key(&order.id) {
                    found.push(
                        Violation::new(
                            ORACLE,
                            input,
                            format!("acknowledged order {} is not durable", order.id),
                        )
                        .ops([op.id])
                        .evidence(lost_or_volatile(
                            input.tables.orders.contains_key(&order.id),
                        )),
                    );
                }
            }
            Resource::Shipment(shipment) => match input.durable.shipments.get(&shipment.id) {
                None => found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!("acknowledged shipment {} is not durable", shipment.id),
                    )
                    .ops([op.id])
                    .evidence(lost_or_volatile(
                        input.tables.shipments.contains_key(&shipment.id),
                    )),
                ),
                Some(stored) if stored.shipment.label_id != shipment.label_id => found.push(
                    Violation::new(
                        ORACLE,
                        input,
                        format!(
                            "shipment {} was acknowledged with a label the store does not have",
                            shipment.id
                        ),
                    )
                    .ops([op.id])
                    .evidence(format!(
                        "acknowledged label {}, stored label {} (status {:?})",
                        shipment.label_id.as_deref().unwrap_or("-"),
                        stored.shipment.label_id.as_deref().unwrap_or("-"),
                        stored.shipment.status
                    )),
                ),
                Some(_) => {}
            },
        }
    }
    found
}

fn lost_or_volatile(in_memory: bool) -> &'static str {
    if in_memory {
        "it is in the running process's memory only: a crash now would lose it"
    } else {
        "it is gone: a crash lost it after it was acknowledged"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Fixture, assert_one};
    use super::*;

    #[test]
    fn acknowledged_but_volatile_write_is_caught() {
        // Proves a shipment acknowledged to the client but absent from the durable view is
        // a violation that says a crash would lose it.
        let mut fixture = Fixture::happy();
        let mut durable = fixture.tables.clone();
        durable.shipments.clear();
        fixture.durable = Some(durable);
        let found = fixture.check(ORACLE);
        assert_one(&found, "acknowledged shipment shp_1 is not durable");
        assert!(found[0].evidence[0].contains("crash now would lose it"));
    }

    #[test]
    fn acknowledged_label_missing_from_store_is_caught() {
        // Proves a shipment stored without the label its client was told about is caught.
        let mut fixture = Fixture::happy();
        let stored = &mut fixture.tables.shipments.get_mut("shp_1").unwrap().shipment;
        stored.label_id = None;
        stored.status = shipsim_system::api::ShipmentStatus::PendingLabel;
        assert_one(
            &fixture.check(ORACLE),
            "acknowledged with a label the store does not have",
        );
    }
}
