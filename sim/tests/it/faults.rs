//! Every fault kind changes what the system sees: each test runs the same seeds with and
//! without the fault and asserts the difference the fault is meant to make (timeouts,
//! transport errors, replays of work done, crashes, skewed timestamps), and the per-event
//! faults fire at their configured rate, within four standard deviations.

use shipsim::run::history::{EventKind, OpOutcome, Phase};
use shipsim::scenario::Scenario;
use shipsim::{SeedRun, run_seed};
use shipsim_system::bugs::BugSet;
use shipsim_system::client::AttemptOutcome;
use shipsim_system::observe::SystemEvent;
use shipsim_system::transport::TransportError;

const SEEDS: std::ops::Range<u64> = 1..5;

/// A small two-merchant workload with the given `[[fault]]` tables appended.
fn scenario(faults: &str) -> Scenario {
    let text = format!(
        r#"
[hosts]
clients = 2
callers = 2

[workload]
operations = 20
think_ms = [0, 20]

[client]
timeout_ms = 300
deadline_ms = 8000
attempts = 8
backoff_ms_base = 20
backoff_ms_max = 300

{faults}
"#
    );
    Scenario::parse("fault-test.toml", "fault-test", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn runs(faults: &str) -> Vec<SeedRun> {
    let scenario = scenario(faults);
    SEEDS
        .map(|seed| {
            let run = run_seed(
                &shipsim::reference::target(),
                &scenario,
                seed,
                &BugSet::none(),
            );
            assert!(
                run.passed(),
                "seed {seed} must pass: {:?} {:?}",
                run.violations,
                run.stuck
            );
            run
        })
        .collect()
}

/// Counts attempts of workload operations matching `pred`.
fn attempts(runs: &[SeedRun], pred: impl Fn(&AttemptOutcome) -> bool) -> usize {
    runs.iter()
        .flat_map(|r| r.history.operations())
        .filter(|op| op.phase == Phase::Workload)
        .flat_map(|op| &op.attempts)
        .filter(|a| pred(&a.outcome))
        .count()
}

fn timeouts(runs: &[SeedRun]) -> usize {
    attempts(runs, |o| matches!(o, AttemptOutcome::Timeout))
}

fn transport_errors(runs: &[SeedRun]) -> usize {
    attempts(runs, |o| matches!(o, AttemptOutcome::Transport(_)))
}

fn io_errors(runs: &[SeedRun]) -> usize {
    attempts(runs, |o| {
        matches!(o, AttemptOutcome::Transport(TransportError::Io(_)))
    })
}

fn status(runs: &[SeedRun], wanted: u16) -> usize {
    attempts(
        runs,
        |o| matches!(o, AttemptOutcome::Response { status, .. } if *status == wanted),
    )
}

/// Responses the clients got from stored outcomes: proof the work had been done before.
fn client_replays(runs: &[SeedRun]) -> usize {
    attempts(runs, |o| {
        matches!(o, AttemptOutcome::Response { replayed: true, .. })
    })
}

fn system_events(runs: &[SeedRun], pred: impl Fn(&SystemEvent) -> bool) -> usize {
    runs.iter()
        .flat_map(|r| r.trace.events())
        .filter(|e| matches!(&e.kind, EventKind::System(s) if pred(s)))
        .count()
}

fn events(runs: &[SeedRun], pred: impl Fn(&EventKind) -> bool) -> usize {
    runs.iter()
        .flat_map(|r| r.trace.events())
        .filter(|e| pred(&e.kind))
        .count()
}

fn fired(runs: &[SeedRun], index: usize) -> u64 {
    runs.iter()
        .map(|r| r.fired.get(&index).copied().unwrap_or(0))
        .sum()
}

fn seen(runs: &[SeedRun], host: &str) -> u64 {
    runs.iter()
        .map(|r| r.requests_seen.get(host).copied().unwrap_or(0))
        .sum()
}

/// Asserts `fired / seen` is within four standard deviations of `p`.
fn assert_rate(fired: u64, seen: u64, p: f64) {
    assert!(seen > 100, "too few events ({seen}) to measure a rate");
    let n = seen as f64;
    let rate = fired as f64 / n;
    let sigma = (p * (1.0 - p) / n).sqrt();
    assert!(
        (rate - p).abs() <= 4.0 * sigma,
        "fired {fired} of {seen} = {rate:.3}, expected {p} +- {:.3}",
        4.0 * sigma
    );
}

fn attempt_p50_ms(runs: &[SeedRun]) -> u64 {
    let mut all: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.history.operations())
        .flat_map(|op| &op.attempts)
        .filter(|a| matches!(a.outcome, AttemptOutcome::Response { .. }))
        .map(|a| a.ended_at_ms - a.sent_at_ms)
        .collect();
    all.sort_unstable();
    all[all.len() / 2]
}

#[test]
fn baseline_sees_no_trouble() {
    // Proves the baseline is clean, so every difference below is the fault's doing.
    let base = runs("");
    assert_eq!(timeouts(&base) + transport_errors(&base), 0);
    assert_eq!(client_replays(&base), 0);
    assert!(attempt_p50_ms(&base) < 40, "{}", attempt_p50_ms(&base));
}

#[test]
fn latency_slows_every_exchange() {
    // Proves link latency of 40-80 ms makes the median attempt slower than two crossings.
    let slow = runs(
        "[[fault]]\nkind = \"latency\"\nbetween = [\"clients\", \"service\"]\nmin_ms = 40\nmax_ms = 80\n",
    );
    assert!(
        attempt_p50_ms(&slow) >= 80,
        "median {} ms",
        attempt_p50_ms(&slow)
    );
}

#[test]
fn hold_delays_then_delivers() {
    // Proves held messages make attempts time out during the hold, and that the held
    // requests are delivered (and executed) afterwards: retries find them done.
    let held = runs(
        "[[fault]]\nkind = \"hold\"\nbetween = [\"clients\", \"service\"]\nstart_ms = 50\nduration_ms = 600\n",
    );
    assert!(timeouts(&held) > 0);
    assert_eq!(fired(&held, 0), SEEDS.count() as u64);
}

#[test]
fn partitions_cut_links_both_ways_and_one_way() {
    // Proves a partition makes attempts fail, and a one-way partition (responses lost)
    // makes work happen that the client only learns of by retrying: replays.
    let cut = runs(
        "[[fault]]\nkind = \"partition\"\nbetween = [\"clients\", \"service\"]\nstart_ms = 50\nduration_ms = 600\n",
    );
    assert!(timeouts(&cut) + transport_errors(&cut) > 0);
    let oneway = runs(
        "[[fault]]\nkind = \"partition_oneway\"\nfrom = \"service\"\nto = \"clients\"\nstart_ms = 50\nduration_ms = 600\n",
    );
    assert!(timeouts(&oneway) > 0);
    assert!(
        client_replays(&oneway) > 0,
        "requests got through, so retries replay"
    );
}

#[test]
fn flapping_links_fail_attempts_repeatedly() {
    // Proves flapping toggles links: many failed attempts, and the fault fires once per
    // down-phase (several times per seed).
    let flap = runs(
        "[[fault]]\nkind = \"flap\"\ntarget = \"service\"\nperiod_ms = 100\nstart_ms = 50\nduration_ms = 800\n",
    );
    assert!(timeouts(&flap) + transport_errors(&flap) > 0);
    assert!(
        fired(&flap, 0) >= 3 * SEEDS.count() as u64,
        "fired {}",
        fired(&flap, 0)
    );
}

#[test]
fn reconnect_storm_forces_every_client_to_reconnect() {
    // Proves the storm makes clients open new connections: more connections than a clean
    // run, where keep-alive connections last the whole workload.
    let base = runs("");
    let storm = runs("[[fault]]\nkind = \"reconnect_storm\"\nstart_ms = 100\nduration_ms = 300\n");
    let base_connections: u64 = base.iter().map(|r| r.client_connections).sum();
    let storm_connections: u64 = storm.iter().map(|r| r.client_connections).sum();
    assert!(
        storm_connections > base_connections,
        "{storm_connections} <= {base_connections}"
    );
}

#[test]
fn http_error_before_and_after_differ_in_what_happened() {
    // Proves `before` refuses without executing (no replays) and `after` executes first
    // (the retry replays the stored outcome), and that 503s arrive at the configured rate.
    let before = runs(
        "[[fault]]\nkind = \"http_error\"\ntarget = \"service\"\nstatus = 503\nprobability = 0.25\n",
    );
    assert!(status(&before, 503) > 0);
    assert_eq!(client_replays(&before), 0);
    assert_rate(fired(&before, 0), seen(&before, "service"), 0.25);
    let after = runs(
        "[[fault]]\nkind = \"http_error\"\ntarget = \"service\"\nstatus = 500\nwhen = \"after\"\nprobability = 0.25\npath_prefix = \"/v1/orders\"\n",
    );
    assert!(status(&after, 500) > 0);
    assert!(
        client_replays(&after) > 0,
        "work done before the 500 is replayed on retry"
    );
}

#[test]
fn rate_limit_sends_retry_after_in_both_forms() {
    // Proves 429s carry Retry-After as seconds and as HTTP dates, both read as a wait of
    // about the requested time, at the configured rate.
    let seconds = runs(
        "[[fault]]\nkind = \"rate_limit\"\ntarget = \"service\"\nretry_after_s = 2\nprobability = 0.1\n",
    );
    let dated = runs(
        "[[fault]]\nkind = \"rate_limit\"\ntarget = \"service\"\nretry_after_s = 2\nretry_after_form = \"date\"\nprobability = 0.1\n",
    );
    for (runs, low, high) in [(&seconds, 2_000, 2_000), (&dated, 1_000, 3_000)] {
        let waits: Vec<u64> = runs
            .iter()
            .flat_map(|r| r.history.operations())
            .flat_map(|op| &op.attempts)
            .filter_map(|a| match a.outcome {
                AttemptOutcome::Response {
                    status: 429,
                    retry_after_ms,
                    ..
                } => retry_after_ms,
                _ => None,
            })
            .collect();
        assert!(!waits.is_empty());
        assert!(waits.iter().all(|w| (low..=high).contains(w)), "{waits:?}");
    }
    assert_rate(fired(&seconds, 0), seen(&seconds, "service"), 0.1);
}

#[test]
fn slow_reset_and_dropped_responses_hide_work_that_was_done() {
    // Proves each response-losing fault leaves the client unsure (timeouts or broken
    // connections) about work the service did, which its retries then replay.
    let slow = runs(
        "[[fault]]\nkind = \"slow_response\"\ntarget = \"service\"\ndelay_ms = 500\nprobability = 0.2\n",
    );
    assert!(timeouts(&slow) > 0);
    assert!(client_replays(&slow) > 0);
    let reset =
        runs("[[fault]]\nkind = \"reset_mid_response\"\ntarget = \"service\"\nprobability = 0.2\n");
    assert!(io_errors(&reset) > 0);
    assert!(client_replays(&reset) > 0);
    let dropped =
        runs("[[fault]]\nkind = \"drop_response\"\ntarget = \"service\"\nprobability = 0.2\n");
    assert!(io_errors(&dropped) > 0);
    assert!(client_replays(&dropped) > 0);
    assert_rate(fired(&dropped, 0), seen(&dropped, "service"), 0.2);
}

#[test]
fn duplicates_reach_the_service_and_are_absorbed() {
    // Proves duplicated deliveries reach the service (which replays or refuses them as in
    // flight) while the clients never see them, at the configured rate.
    let dup = runs(
        "[[fault]]\nkind = \"duplicate\"\ntarget = \"service\"\ncopies = 3\nprobability = 0.3\npath_prefix = \"/v1/orders\"\n",
    );
    let absorbed = system_events(&dup, |s| {
        matches!(
            s,
            SystemEvent::Replayed { .. } | SystemEvent::InFlightConflict { .. }
        )
    });
    assert!(absorbed > 0);
    assert_eq!(
        client_replays(&dup),
        0,
        "clients only see the first copy's answer"
    );
    let eligible: u64 = dup
        .iter()
        .flat_map(|r| r.history.operations())
        .filter(|op| op.kind.is_write() || op.target.is_some())
        .count() as u64;
    assert!(fired(&dup, 0) > 0 && fired(&dup, 0) < eligible);
}

#[test]
fn crashes_kill_and_restart_at_random_and_at_points() {
    // Proves a random crash happens once per seed with a restart, and a point crash happens
    // exactly at its checkpoint.
    let random = runs(
        "[[fault]]\nkind = \"crash\"\ntarget = \"service\"\nstart_ms = 50\nend_ms = 200\nrestart_after_ms = 200\n",
    );
    let crashes = events(&random, |k| matches!(k, EventKind::HostCrashed { .. }));
    let restarts = events(&random, |k| matches!(k, EventKind::HostRestarted { .. }));
    assert_eq!(crashes, SEEDS.count());
    assert_eq!(restarts, SEEDS.count());
    let point = runs(
        "[[fault]]\nkind = \"crash\"\ntarget = \"service\"\npoint = \"label_bought\"\nrestart_after_ms = 100\n",
    );
    let details: Vec<String> = point
        .iter()
        .flat_map(|r| r.trace.events())
        .filter_map(|e| match &e.kind {
            EventKind::FaultFired { detail, .. } => Some(detail.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(details.len(), SEEDS.count(), "{details:?}");
    assert!(details.iter().all(|d| d == "crash at label_bought"));
}

#[test]
fn carrier_down_makes_the_service_answer_unavailable() {
    // Proves a stopped carrier is seen by clients as 503 carrier_unavailable answers (the
    // service's carrier deadline is set below the client's timeout so the 503 arrives).
    let down = runs(
        "[[fault]]\nkind = \"carrier_down\"\nstart_ms = 0\nduration_ms = 800\n\n[service]\ncarrier_timeout_ms = 50\ncarrier_deadline_ms = 200\ncarrier_attempts = 2\n",
    );
    let unavailable = attempts(
        &down,
        |o| matches!(o, AttemptOutcome::Response { status: 503, error_code: Some(code), .. } if code == "carrier_unavailable"),
    );
    assert!(unavailable > 0);
}

#[test]
fn clock_skew_moves_the_service_clock() {
    // Proves a skewed service stamps its records an hour ahead; the clean run does not.
    let epoch = shipsim::run::clock::EPOCH_UNIX_MS;
    let hour = 3_600_000;
    let skewed =
        runs("[[fault]]\nkind = \"clock_skew\"\ntarget = \"service\"\noffset_ms = 3600000\n");
    let base = runs("");
    let stamps = |runs: &[SeedRun]| -> Vec<u64> {
        runs.iter()
            .flat_map(|r| {
                r.durables
                    .get::<shipsim_system::store::MemoryStore>("service", "store")
                    .unwrap()
                    .snapshot()
                    .orders
                    .into_values()
                    .map(|o| o.order.created_at_ms)
            })
            .collect()
    };
    assert!(stamps(&skewed).iter().all(|t| *t >= epoch + hour));
    assert!(stamps(&base).iter().all(|t| *t < epoch + hour));
}

#[test]
fn ambiguity_is_real_under_lost_responses() {
    // Proves the workload's ambiguity classification matters: with responses lost and a
    // tight deadline, some writes end ambiguous and are settled after heal.
    let scenario = scenario(
        "[[fault]]\nkind = \"drop_response\"\ntarget = \"service\"\nprobability = 0.6\npath_prefix = \"/v1/orders\"\n",
    );
    let mut ambiguous = 0;
    let mut settled = 0;
    for seed in SEEDS {
        let run = run_seed(
            &shipsim::reference::target(),
            &scenario,
            seed,
            &BugSet::none(),
        );
        assert!(run.passed());
        for op in run.history.operations() {
            match (op.phase, &op.outcome) {
                (Phase::Workload, OpOutcome::Ambiguous { .. }) => ambiguous += 1,
                (Phase::Settle, _) => settled += 1,
                _ => {}
            }
        }
    }
    assert!(ambiguous > 0);
    assert!(settled >= ambiguous);
}

/// Webhook scenario: two merchants, both directions of webhooks, the given faults.
fn webhook_runs(faults: &str) -> Vec<SeedRun> {
    runs(&format!(
        "[webhooks]\ntracking = true\noutbound = true\ntolerance_s = 1\nsender_attempts = 4\n\n{faults}"
    ))
}

fn webhook_stat(
    runs: &[SeedRun],
    pick: impl Fn(&shipsim::output::stats::WebhookCounts) -> u64,
) -> u64 {
    runs.iter()
        .map(|r| {
            let view = r.webhooks.as_ref().expect("webhook scenario");
            pick(&shipsim::output::stats::WebhookStats::of(view, &r.trace).counts)
        })
        .sum()
}

#[test]
fn webhook_baseline_delivers_everything_once() {
    // Proves the webhook baseline is clean: every event delivered in one attempt, nothing
    // absorbed or refused, so the differences below are the faults' doing.
    let base = webhook_runs("");
    let delivered = webhook_stat(&base, |w| w.delivered);
    assert!(delivered > 50, "{delivered}");
    assert_eq!(webhook_stat(&base, |w| w.attempts), delivered);
    assert_eq!(
        webhook_stat(&base, |w| w.duplicates_absorbed
            + w.rejected
            + w.dead_lettered),
        0
    );
}

#[test]
fn webhook_duplicates_and_lost_answers_are_absorbed() {
    // Proves duplicated deliveries and answers lost after processing reach the receivers
    // again, which acknowledge them as duplicates instead of acting twice.
    for direction in ["inbound", "outbound"] {
        let duplicated = webhook_runs(&format!(
            "[[fault]]\nkind = \"webhook_duplicate\"\ndirection = \"{direction}\"\nprobability = 0.3\n"
        ));
        assert!(
            webhook_stat(&duplicated, |w| w.duplicates_absorbed) > 0,
            "{direction}"
        );
        let lost = webhook_runs(&format!(
            "[[fault]]\nkind = \"webhook_drop\"\ndirection = \"{direction}\"\nwhen = \"after\"\nprobability = 0.3\n"
        ));
        assert!(
            webhook_stat(&lost, |w| w.duplicates_absorbed) > 0,
            "{direction}"
        );
    }
}

#[test]
fn webhook_drops_and_delays_cost_attempts() {
    // Proves lost deliveries and answers held past the sender's timeout make the senders
    // try again: more attempts than deliveries.
    for fault in [
        "kind = \"webhook_drop\"\ndirection = \"inbound\"\nprobability = 0.3\n",
        "kind = \"webhook_delay\"\ndirection = \"outbound\"\ndelay_ms = 800\nprobability = 0.3\n",
    ] {
        let runs = webhook_runs(&format!("[[fault]]\n{fault}"));
        assert!(
            webhook_stat(&runs, |w| w.attempts) > webhook_stat(&runs, |w| w.delivered),
            "{fault}"
        );
    }
}

/// Times the merchant acted on an event created more than 100 ms before the previous one.
fn inversions(runs: &[SeedRun]) -> usize {
    runs.iter()
        .map(|r| {
            let effects = &r.webhooks.as_ref().expect("webhook scenario").effects;
            effects
                .windows(2)
                .filter(|w| w[1].created_at_ms + 100 < w[0].created_at_ms)
                .count()
        })
        .sum()
}

#[test]
fn webhook_reorder_makes_receivers_see_events_out_of_order() {
    // Proves reordering: with deliveries held up to 800 ms, the merchant acts on events
    // well out of creation order; without, it does not.
    assert_eq!(inversions(&webhook_runs("")), 0);
    let reordered = webhook_runs(
        "[[fault]]\nkind = \"webhook_reorder\"\ndirection = \"outbound\"\nmax_ms = 800\nprobability = 0.5\n",
    );
    assert!(inversions(&reordered) > 0);
}

#[test]
fn receiver_down_dead_letters_then_redelivers() {
    // Proves a long receiver outage exhausts the sender's attempts (dead letters), and the
    // dead letters are delivered after heal (the oracles, run by `webhook_runs`, pass).
    let scenario = scenario(
        "[webhooks]\noutbound = true\ntracking = false\nsender_attempts = 3\n\n[[fault]]\nkind = \"receiver_down\"\nstart_ms = 50\nduration_ms = 5000\n",
    );
    let mut scenario = scenario;
    scenario.workload.think_ms = (50, 150);
    let mut dead = 0;
    for seed in SEEDS {
        let run = run_seed(
            &shipsim::reference::target(),
            &scenario,
            seed,
            &BugSet::none(),
        );
        assert!(run.passed(), "{:?}", run.violations);
        dead +=
            shipsim::output::stats::WebhookStats::of(run.webhooks.as_ref().unwrap(), &run.trace)
                .counts
                .dead_lettered;
    }
    assert!(dead > 0);
}

#[test]
fn webhook_burst_floods_the_service_once() {
    // Proves a burst adds its events to the carrier's log, and each is taken in once.
    let burst = webhook_runs("[[fault]]\nkind = \"webhook_burst\"\nevents = 500\nstart_ms = 100\n");
    let base = webhook_runs("");
    let tracked = |runs: &[SeedRun]| -> usize {
        runs.iter()
            .map(|r| r.webhooks.as_ref().unwrap().tracking.len())
            .sum()
    };
    assert_eq!(tracked(&burst), tracked(&base) + 500 * SEEDS.count());
}

#[test]
fn replays_and_forgeries_are_refused() {
    // Proves replays past the tolerance window are refused as stale and forgeries as not
    // matching their signature, in both directions.
    for direction in ["inbound", "outbound"] {
        let runs = webhook_runs(&format!(
            "[[fault]]\nkind = \"webhook_replay\"\ndirection = \"{direction}\"\nprobability = 0.5\n\n[[fault]]\nkind = \"webhook_forge\"\ndirection = \"{direction}\"\nprobability = 0.5\n"
        ));
        let reasons: Vec<String> = runs
            .iter()
            .flat_map(|r| r.trace.events())
            .filter_map(|e| match &e.kind {
                EventKind::System(SystemEvent::WebhookRejected { reason, .. }) => {
                    Some(reason.clone())
                }
                _ => None,
            })
            .collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("beyond the 1 s tolerance")),
            "{direction}: {reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("does not match")),
            "{direction}: {reasons:?}"
        );
    }
}
