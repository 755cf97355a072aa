//! One transaction on the service's SQLite file: the [`Tx`] the service's handlers see,
//! each read and write a statement on the open transaction (or savepoint).

use std::cell::RefCell;
use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Params, params, params_from_iter};

use super::columns::{corrupt, to_i64, to_u64, unavailable};
use super::tables::{self, Idempotency, Orders, Outbox, ProcessedEvents, Shipments, Table};
use crate::store::{
    IdemScope, IdempotencyRecord, OrderRecord, OutboxRecord, ProcessedEvent, ShipmentRecord,
    StoreError, Tx, TxDecision,
};

/// One transaction: reads and writes go straight to SQLite. The [`Tx`] trait cannot fail,
/// so the first error is kept and turns the commit into a rollback and an `Err`.
struct SqliteTx<'a> {
    /// The open transaction (or a savepoint inside one, on the writer thread).
    tx: &'a Connection,
    error: RefCell<Option<StoreError>>,
}

/// Runs `body` on `connection` inside the transaction or savepoint the caller opened, and
/// says how it ended: its decision, or the first SQL error it met.
pub(super) fn run_body(
    connection: &Connection,
    body: &mut dyn FnMut(&mut dyn Tx) -> TxDecision,
) -> Result<TxDecision, StoreError> {
    let mut sql_tx = SqliteTx {
        tx: connection,
        error: RefCell::new(None),
    };
    let decision = body(&mut sql_tx);
    match sql_tx.error.into_inner() {
        Some(error) => Err(error),
        None => Ok(decision),
    }
}

impl SqliteTx<'_> {
    fn fail(&self, error: StoreError) {
        self.error.borrow_mut().get_or_insert(error);
    }

    /// Runs a fallible read; on error, records it and reads nothing.
    fn read<T>(&self, read: impl FnOnce() -> Result<Option<T>, StoreError>) -> Option<T> {
        match read() {
            Ok(value) => value,
            Err(error) => {
                self.fail(error);
                None
            }
        }
    }

    fn write(&self, sql: &str, values: impl Params) {
        let written = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values));
        if let Err(error) = written {
            self.fail(unavailable(error));
        }
    }

    /// The row `sql` selects, if any, through the connection's statement cache (a request
    /// runs the same few statements: parsing them once saves most of a read's CPU).
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Option<T>> {
        self.tx
            .prepare_cached(sql)?
            .query_row(params, row)
            .optional()
    }

    /// The record of `T` whose key ([`Table::KEY`]) is `key`, if any.
    fn get<T: Table>(&self, key: impl Params) -> Option<T::Record> {
        self.read(|| {
            let sql = tables::select::<T>(&format!("WHERE {}", T::KEY));
            let row = self.query_one(&sql, key, T::row).map_err(unavailable)?;
            row.map(T::record).transpose()
        })
    }

    /// Adds `record` to `T`, replacing the one with its key.
    fn put<T: Table>(&self, record: &T::Record) {
        self.write(&tables::insert::<T>(), params_from_iter(T::values(record)));
    }

    /// Every record of `T` that `rest` (a `WHERE` and `ORDER BY`) selects, in its order.
    fn list<T: Table>(&self, rest: &str, params: impl Params) -> Vec<T::Record> {
        self.read(|| tables::all::<T>(self.tx, &tables::select::<T>(rest), params).map(Some))
            .unwrap_or_default()
    }
}

impl Tx for SqliteTx<'_> {
    fn idempotency(&self, scope: &IdemScope) -> Option<IdempotencyRecord> {
        self.get::<Idempotency>(params![scope.caller, scope.key])
    }

    fn put_idempotency(&mut self, record: IdempotencyRecord) {
        self.put::<Idempotency>(&record);
    }

    fn sweep_idempotency(&mut self, created_before_ms: u64, limit: usize) -> u64 {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self.tx.execute(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency \
             WHERE state = 'completed' AND created_at_ms < ?1 ORDER BY created_at_ms LIMIT ?2)",
            params![to_i64(created_before_ms), limit],
        ) {
            Ok(deleted) => deleted as u64,
            Err(error) => {
                self.fail(unavailable(error));
                0
            }
        }
    }

    fn order(&self, order_id: &str) -> Option<OrderRecord> {
        self.get::<Orders>(params![order_id])
    }

    fn put_order(&mut self, record: OrderRecord) {
        self.put::<Orders>(&record);
    }

    fn shipment(&self, shipment_id: &str) -> Option<ShipmentRecord> {
        self.get::<Shipments>(params![shipment_id])
    }

    fn put_shipment(&mut self, record: ShipmentRecord) {
        self.put::<Shipments>(&record);
    }

    fn processed_event(&self, event_id: &str) -> Option<ProcessedEvent> {
        self.get::<ProcessedEvents>(params![event_id])
            .map(|(_, event)| event)
    }

    fn put_processed_event(&mut self, event_id: &str, event: ProcessedEvent) {
        self.put::<ProcessedEvents>(&(event_id.to_string(), event));
    }

    fn next_outbox_seq(&self) -> u64 {
        // On an error the transaction is already doomed to roll back; any number will do.
        self.read(|| {
            let last: i64 = self
                .tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox")
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(unavailable)?;
            Ok(Some(to_u64("outbox seq", last)? + 1))
        })
        .unwrap_or(0)
    }

    fn put_outbox(&mut self, record: OutboxRecord) {
        self.put::<Outbox>(&record);
    }

    fn outbox(&self, seq: u64) -> Option<OutboxRecord> {
        self.get::<Outbox>(params![to_i64(seq)])
    }

    fn outbox_due(&self, now_ms: u64, limit: usize, skip: &BTreeSet<u64>) -> Vec<OutboxRecord> {
        self.read(|| {
            let sql = tables::select::<Outbox>(
                "WHERE delivery_state = 'pending' AND next_attempt_at_ms <= ?1 ORDER BY seq",
            );
            let mut statement = self.tx.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(params![to_i64(now_ms)], Outbox::row)
                .map_err(unavailable)?;
            let mut due = Vec::new();
            for row in rows {
                if due.len() >= limit {
                    break;
                }
                let record = Outbox::record(row.map_err(unavailable)?)?;
                if !skip.contains(&record.seq) {
                    due.push(record);
                }
            }
            Ok(Some(due))
        })
        .unwrap_or_default()
    }

    fn outbox_next_due(&self, skip: &BTreeSet<u64>) -> Option<u64> {
        self.read(|| {
            let mut statement = self
                .tx
                .prepare_cached(
                    "SELECT seq, next_attempt_at_ms FROM outbox \
                     WHERE delivery_state = 'pending' ORDER BY next_attempt_at_ms, seq",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                .map_err(unavailable)?;
            for row in rows {
                let (seq, at_ms) = row.map_err(unavailable)?;
                let (seq, at_ms) = (to_u64("seq", seq)?, to_u64("next_attempt_at_ms", at_ms)?);
                if !skip.contains(&seq) {
                    return Ok(Some(at_ms));
                }
            }
            Ok(None)
        })
    }

    fn outbox_dead(&self) -> Vec<OutboxRecord> {
        self.list::<Outbox>("WHERE delivery_state = 'dead_letter' ORDER BY seq", [])
    }

    fn outbox_after(&self, caller: &str, after_seq: u64, limit: usize) -> Vec<OutboxRecord> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.list::<Outbox>(
            "WHERE caller = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            params![caller, to_i64(after_seq), limit],
        )
    }

    fn outbox_counts(&self) -> (u64, u64, u64) {
        self.read(|| {
            let mut statement = self
                .tx
                .prepare_cached(
                    "SELECT delivery_state, COUNT(*) FROM outbox GROUP BY delivery_state",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], |row| <(String, i64)>::try_from(row))
                .map_err(unavailable)?;
            let mut counts = (0, 0, 0);
            for row in rows {
                let (state, count) = row.map_err(unavailable)?;
                let count = to_u64("outbox count", count)?;
                match state.as_str() {
                    "pending" => counts.0 = count,
                    "delivered" => counts.1 = count,
                    "dead_letter" => counts.2 = count,
                    other => return Err(corrupt("delivery state", other)),
                }
            }
            Ok(Some(counts))
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::SqliteStore;
    use super::super::testing::{
        both_stores_with, idem, order, outbox_fixture, outbox_record, pending, shipment, temp_db,
    };
    use crate::store::{
        Durability, IdemState, IdempotencyRecord, Lock, OutboxRecord, ProcessedEvent,
        RecoveryPoint, Store, StoreError, StoredResponse, Tx, transact,
    };

    #[test]
    fn rows_round_trip_and_survive_reopening() {
        // Proves every record shape is stored and read back unchanged, inside the writing
        // transaction and after the file is closed and opened again, and that each open
        // counts one more boot.
        let db = temp_db();
        let path = db.path();
        let records = (
            order("ord_1"),
            shipment("shp_1", Some("lbl_1")),
            shipment("shp_2", None),
            idem(
                "a",
                IdemState::InProgress {
                    lock: Some(Lock {
                        boot: 3,
                        acquired_at_ms: 11,
                    }),
                    recovery: RecoveryPoint::ShipmentCreated {
                        shipment_id: "shp_2".into(),
                    },
                },
            ),
            idem(
                "b",
                IdemState::InProgress {
                    lock: None,
                    recovery: RecoveryPoint::ShipmentCreated {
                        shipment_id: "shp_2".into(),
                    },
                },
            ),
            idem(
                "c",
                IdemState::Completed {
                    response: StoredResponse {
                        status: 201,
                        body: "{\"id\":\"shp_1\"}".into(),
                    },
                },
            ),
        );
        {
            let (store, boot) = SqliteStore::open(&path).unwrap();
            assert_eq!(boot, 0);
            transact(&store, Durability::Sync, |tx| {
                tx.put_order(records.0.clone());
                tx.put_shipment(records.1.clone());
                tx.put_shipment(records.2.clone());
                for record in [&records.3, &records.4, &records.5] {
                    tx.put_idempotency(record.clone());
                }
                assert_eq!(tx.order("ord_1"), Some(records.0.clone()), "read own write");
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        let (store, boot) = SqliteStore::open(&path).unwrap();
        assert_eq!(boot, 1, "the second open is the second boot");
        let tables = store.read_all().unwrap();
        assert_eq!(tables.orders["ord_1"], records.0);
        assert_eq!(tables.shipments["shp_1"], records.1);
        assert_eq!(tables.shipments["shp_2"], records.2);
        for record in [&records.3, &records.4, &records.5] {
            assert_eq!(&tables.idempotency[&record.scope], record);
        }
    }

    #[test]
    fn the_retention_sweep_deletes_what_the_memory_store_deletes() {
        // Proves `sweep_idempotency` on SQLite deletes exactly the records the simulation's
        // store deletes: completed ones created before the cutoff, oldest first, at most
        // `limit` per call, never one in progress; and the deletion is durable.
        let db = temp_db();
        let path = db.path();
        let (sqlite, _) = SqliteStore::open(&path).unwrap();
        let memory = crate::store::MemoryStore::new();
        let records: Vec<IdempotencyRecord> = (0..6_u64)
            .map(|i| IdempotencyRecord {
                created_at_ms: i * 10,
                ..idem(
                    &format!("k{i}"),
                    if i == 1 {
                        IdemState::InProgress {
                            lock: None,
                            recovery: RecoveryPoint::ShipmentCreated {
                                shipment_id: "shp_1".into(),
                            },
                        }
                    } else {
                        IdemState::Completed {
                            response: StoredResponse {
                                status: 201,
                                body: "{}".into(),
                            },
                        }
                    },
                )
            })
            .collect();
        let keys = |store: &dyn Store| -> Vec<String> {
            store
                .read_all()
                .unwrap()
                .idempotency
                .keys()
                .map(|s| s.key.clone())
                .collect()
        };
        for store in [&sqlite as &dyn Store, &memory] {
            transact(store, Durability::Sync, |tx| {
                for record in &records {
                    tx.put_idempotency(record.clone());
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let sweep = |before: u64, limit: usize| {
                transact(store, Durability::Sync, |tx| {
                    Ok::<_, StoreError>(tx.sweep_idempotency(before, limit))
                })
                .unwrap()
            };
            assert_eq!(sweep(35, 2), 2, "limit");
            assert_eq!(keys(store), ["k1", "k3", "k4", "k5"], "oldest first");
            assert_eq!(sweep(35, 10), 1);
            assert_eq!(keys(store), ["k1", "k4", "k5"], "in progress kept");
            assert_eq!(sweep(40, 10), 0, "created at 40 is not before 40");
        }
        drop(sqlite);
        let (reopened, _) = SqliteStore::open(&path).unwrap();
        assert_eq!(
            keys(&reopened),
            ["k1", "k4", "k5"],
            "the deletion is durable"
        );
    }

    #[test]
    fn outbox_and_processed_events_round_trip_and_survive_reopening() {
        // Proves every `Delivery` state, an event with and without a cause and a processed
        // event with and without an effect are stored and read back unchanged, by the Tx
        // reads and by `read_all`, before and after the file is closed and opened again.
        let db = temp_db();
        let path = db.path();
        let records = outbox_fixture();
        let processed = [
            (
                "trk_1",
                ProcessedEvent {
                    received_at_ms: 7,
                    effect: Some(3),
                },
            ),
            (
                "trk_2",
                ProcessedEvent {
                    received_at_ms: 8,
                    effect: None,
                },
            ),
        ];
        let check = |store: &SqliteStore| {
            transact(store, Durability::Sync, |tx| {
                for record in &records {
                    assert_eq!(tx.outbox(record.seq).as_ref(), Some(record));
                }
                for (id, event) in &processed {
                    assert_eq!(tx.processed_event(id).as_ref(), Some(event));
                }
                assert_eq!(tx.processed_event("trk_unknown"), None);
                assert_eq!(tx.outbox(99), None);
                assert_eq!(tx.next_outbox_seq(), 7);
                assert_eq!(tx.outbox_counts(), (4, 1, 1));
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let tables = store.read_all().unwrap();
            let stored: Vec<OutboxRecord> = tables.outbox.values().cloned().collect();
            assert_eq!(stored, records);
            assert_eq!(tables.processed_events.len(), 2);
            assert_eq!(tables.processed_events["trk_1"], processed[0].1);
        };
        {
            let (store, _) = SqliteStore::open(&path).unwrap();
            transact(&store, Durability::Sync, |tx| {
                assert_eq!(tx.next_outbox_seq(), 1, "an empty outbox starts at 1");
                for record in &records {
                    tx.put_outbox(record.clone());
                }
                for (id, event) in &processed {
                    tx.put_processed_event(id, event.clone());
                }
                assert_eq!(
                    tx.next_outbox_seq(),
                    7,
                    "the transaction sees its own writes"
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
            check(&store);
        }
        let (store, _) = SqliteStore::open(&path).unwrap();
        check(&store);
    }

    #[test]
    fn outbox_queries_match_the_memory_store() {
        // Proves the SQLite outbox answers `outbox_due` (ordered by seq, skipping in-flight
        // seqs, only pending events whose next attempt is due, at most `limit`),
        // `outbox_dead` and `outbox_counts` exactly as the simulation's `MemoryStore` does,
        // for the same rows and a spread of times, limits and skip sets.
        let db = temp_db();
        let (sqlite, memory) = both_stores_with(&db.path(), |_| {});
        let read = |store: &dyn Store, now_ms: u64, limit: usize, skip: &BTreeSet<u64>| {
            transact(store, Durability::Sync, |tx| {
                let due: Vec<u64> = tx
                    .outbox_due(now_ms, limit, skip)
                    .iter()
                    .map(|r| r.seq)
                    .collect();
                let dead: Vec<u64> = tx.outbox_dead().iter().map(|r| r.seq).collect();
                Ok::<_, StoreError>((due, dead, tx.outbox_counts()))
            })
            .unwrap()
        };
        let skips = [BTreeSet::new(), BTreeSet::from([1]), BTreeSet::from([1, 5])];
        for now_ms in [0, 89, 90, 100, 149, 150, 1_000] {
            for limit in [0, 1, 2, 10] {
                for skip in &skips {
                    assert_eq!(
                        read(&sqlite, now_ms, limit, skip),
                        read(&memory, now_ms, limit, skip),
                        "now {now_ms} ms, limit {limit}, skip {skip:?}"
                    );
                }
            }
        }
        assert_eq!(
            read(&sqlite, 150, 10, &BTreeSet::from([1])).0,
            vec![3, 5, 6],
            "due events in seq order, in-flight 1 skipped"
        );
    }

    #[test]
    fn the_events_feed_reads_what_the_memory_store_reads() {
        // Proves `outbox_after` (the events feed's page) answers alike in both stores: one
        // caller's events only, strictly after the cursor, in seq order, at most `limit`,
        // whatever their delivery state (dead letters included).
        let db = temp_db();
        let (sqlite, memory) = both_stores_with(&db.path(), |tx| {
            for seq in [7, 9] {
                let mut other = outbox_record(seq, pending(0, 0));
                other.caller = "merchant-1".into();
                tx.put_outbox(other);
            }
            tx.put_outbox(outbox_record(8, pending(0, 0)));
        });
        let feed = |store: &dyn Store, caller: &str, after: u64, limit: usize| {
            transact(store, Durability::Sync, |tx| {
                Ok::<_, StoreError>(
                    tx.outbox_after(caller, after, limit)
                        .iter()
                        .map(|r| r.seq)
                        .collect::<Vec<u64>>(),
                )
            })
            .unwrap()
        };
        for caller in ["merchant-0", "merchant-1", "merchant-9"] {
            for after in [0, 1, 3, 4, 7, 8, 9, 1_000] {
                for limit in [0, 1, 2, 10] {
                    assert_eq!(
                        feed(&sqlite, caller, after, limit),
                        feed(&memory, caller, after, limit),
                        "{caller} after {after}, limit {limit}"
                    );
                }
            }
        }
        assert_eq!(feed(&sqlite, "merchant-0", 3, 3), vec![4, 5, 6]);
        assert_eq!(feed(&sqlite, "merchant-0", 6, 10), vec![8]);
        assert_eq!(feed(&sqlite, "merchant-1", 0, 10), vec![7, 9]);
    }

    #[test]
    fn a_crash_keeps_outbox_and_processed_events_with_their_state_change() {
        // Proves the outbox event and the processed-event record share the fate of the state
        // change they belong to: a transaction that dies before its commit (its body panics,
        // and the process's store is dropped, as in a crash) leaves none of the three after
        // a reopen, and a committed one keeps all three.
        let db = temp_db();
        let path = db.path();
        let write = |tx: &mut dyn Tx, shipment_id: &str, event_id: &str| {
            tx.put_shipment(shipment(shipment_id, Some("lbl_1")));
            tx.put_processed_event(
                event_id,
                ProcessedEvent {
                    received_at_ms: 5,
                    effect: Some(tx.next_outbox_seq()),
                },
            );
            let seq = tx.next_outbox_seq();
            tx.put_outbox(outbox_record(seq, pending(0, 0)));
        };
        {
            let (store, _) = SqliteStore::open(&path).unwrap();
            transact(&store, Durability::Sync, |tx| {
                write(tx, "shp_kept", "trk_kept");
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _: Result<(), StoreError> = transact(&store, Durability::Sync, |tx| {
                    write(tx, "shp_lost", "trk_lost");
                    panic!("the process dies before COMMIT");
                });
            }));
            assert!(crashed.is_err());
            // The store is dropped here, its lock poisoned: the process is gone.
        }
        let (store, _) = SqliteStore::open(&path).unwrap();
        let tables = store.read_all().unwrap();
        assert!(tables.shipments.contains_key("shp_kept"));
        assert!(tables.processed_events.contains_key("trk_kept"));
        assert_eq!(tables.outbox.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(
            !tables.shipments.contains_key("shp_lost"),
            "uncommitted change"
        );
        assert!(
            !tables.processed_events.contains_key("trk_lost"),
            "a dedupe record without its effect"
        );
        assert_eq!(tables.outbox.len(), 1, "an outbox event without its change");
    }
}
