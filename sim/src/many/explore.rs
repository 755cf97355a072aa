//! Swarm exploration (as FoundationDB's simulation and TigerBeetle's VOPR do): every seed
//! draws a scenario of its own from the fault catalogue, runs it, and any failure is shrunk
//! to a scenario file that `shipsim replay` runs again.
//!
//! The corpus crosses the boundaries someone thought of; exploration draws the rest. Per
//! seed it chooses which faults to switch on (swarm testing: each family is in or out, so a
//! seed is not a blur of every fault at a low rate), their rates, windows and crash points,
//! the client and merchant counts, the operation mix, whether callers misbehave (double
//! submits, keys in the body, keys reused with another body, refused destinations), and
//! whether there is webhook traffic. The scenario is written as TOML and parsed like any
//! file, so every drawn scenario is a valid, replayable file, and a failing one is its own
//! repro.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shipsim_system::bugs::BugSet;
use shipsim_system::seed::Seed;

use crate::reach::Moment;
use crate::run::runner::{SeedRun, run_seed};
use crate::scenario::Scenario;
use crate::target::Target;

/// Chance a fault family is switched on for a seed: a swarm draws few families per seed,
/// so each one's effect is visible rather than drowned by all the others.
const FAMILY_ON: f64 = 0.3;

/// The scenario of exploration seed `seed`: drawn from the seed alone (not from the run's
/// randomness), so the same seed always explores the same scenario, whatever the build.
///
/// # Panics
/// If the drawn text is not a valid scenario: the generator must only write valid files
/// (a test parses thousands of them).
#[must_use]
pub fn scenario(seed: u64) -> Scenario {
    let text = scenario_text(seed);
    let mut scenario = Scenario::parse(&format!("explore-{seed}.toml"), "explore", &text)
        .unwrap_or_else(|e| {
            panic!("explore drew an invalid scenario for seed {seed}: {e}\n{text}")
        });
    scenario.seed = Some(seed);
    scenario.seeds = crate::scenario::SeedRange::single(seed);
    scenario
}

/// The TOML of exploration seed `seed`'s scenario.
#[must_use]
pub fn scenario_text(seed: u64) -> String {
    let mut rng = Seed(seed).derive("explore").rng();
    let mut draw = Draw {
        rng: &mut rng,
        out: String::new(),
        faults: String::new(),
        features: Vec::new(),
        tolerance_s: None,
    };
    draw.all(seed);
    let description = draw.features.join(", ");
    format!(
        "name = \"explore-{seed}\"\ndescription = \"explored: {description}\"\n{}{}",
        draw.out, draw.faults
    )
}

struct Draw<'a> {
    rng: &'a mut ChaCha8Rng,
    out: String,
    faults: String,
    features: Vec<&'static str>,
    /// The drawn webhook tolerance, when webhooks are on.
    tolerance_s: Option<u64>,
}

/// The largest service clock skew explored with a webhook tolerance of `tolerance_s`: the
/// tolerance less room for the longest drawn webhook delay (1,200 ms), network latency and
/// the signature's whole-second timestamps.
fn skew_bound_ms(tolerance_s: u64) -> i64 {
    i64::try_from(tolerance_s * 1_000).unwrap_or(i64::MAX) - 1_500
}

impl Draw<'_> {
    fn on(&mut self, chance: f64) -> bool {
        self.rng.random_bool(chance)
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.rng.random_range(0..choices.len())]
    }

    fn probability(&mut self, low: f64, high: f64) -> f64 {
        let p: f64 = self.rng.random_range(low..high);
        (p * 100.0).round() / 100.0
    }

    /// A window inside the workload: `start_ms = ..` and, most of the time, an end.
    fn window(&mut self, open_chance: f64) -> String {
        let start = self.rng.random_range(0..1_500u64);
        if self.on(open_chance) {
            format!("start_ms = {start}\n")
        } else {
            let length = self.rng.random_range(200..2_500u64);
            format!("start_ms = {start}\nend_ms = {}\n", start + length)
        }
    }

    fn fault(&mut self, feature: &'static str, body: &str) {
        if !self.features.contains(&feature) {
            self.features.push(feature);
        }
        let _ = write!(self.faults, "\n[[fault]]\n{body}");
    }

    fn all(&mut self, _seed: u64) {
        let clients = self.pick(&[1u32, 1, 2, 2, 3, 4]);
        let callers = self.rng.random_range(1..=clients.min(2));
        let operations = self.rng.random_range(4..=16u32);
        let webhooks = self.on(0.45);
        let misuse = self.on(0.5);
        let _ = writeln!(
            self.out,
            "\n[hosts]\nclients = {clients}\ncallers = {callers}"
        );
        let think = self.pick(&[0u64, 20, 50]);
        let _ = writeln!(
            self.out,
            "\n[workload]\noperations = {operations}\nthink_ms = [0, {think}]"
        );
        if self.on(0.3) {
            // Writes only: every operation crosses an idempotency rule.
            let _ = writeln!(
                self.out,
                "mix = {{ create_order = 1, create_shipment = 3, get_order = 0, get_shipment = 0 }}"
            );
        }
        if misuse {
            self.features.push("misuse");
            for (key, high) in [
                ("double_submit", 0.3),
                ("key_in_body", 0.5),
                ("reuse_key_with_other_body", 0.25),
                ("unserviceable", 0.2),
            ] {
                if self.on(0.5) {
                    let p = self.probability(0.05, high);
                    let _ = writeln!(self.out, "{key} = {p}");
                }
            }
        }
        // Where the [workload] table ends: a key drawn last of all is written here.
        let workload_end = self.out.len();
        let timeout = self.pick(&[200u64, 300, 500, 1_000]);
        let deadline = self.pick(&[3_000u64, 6_000, 10_000]);
        let attempts = self.rng.random_range(3..=10u32);
        let backoff_base = self.pick(&[20u64, 50]);
        let backoff_max = self.pick(&[200u64, 600, 1_000]);
        let _ = writeln!(
            self.out,
            "\n[client]\ntimeout_ms = {timeout}\ndeadline_ms = {deadline}\nattempts = {attempts}\nbackoff_ms_base = {backoff_base}\nbackoff_ms_max = {backoff_max}"
        );
        // Where the [client] table ends, likewise.
        let client_end = self.out.len();
        let carrier_timeout = self.pick(&[300u64, 500]);
        let carrier_attempts = self.rng.random_range(2..=4u32);
        let _ = writeln!(
            self.out,
            "\n[service]\ncarrier_timeout_ms = {carrier_timeout}\ncarrier_deadline_ms = {}\ncarrier_attempts = {carrier_attempts}",
            carrier_timeout * 4
        );
        if self.on(FAMILY_ON) {
            self.features.push("rate_limit");
            let burst = self.rng.random_range(3..=10u32);
            let per_second = self.rng.random_range(5..=30u32);
            let _ = writeln!(
                self.out,
                "rate_limit = {{ burst = {burst}, per_second = {per_second} }}"
            );
        }
        // Where the [service] table ends, likewise.
        let service_end = self.out.len();
        // Written last (after the poller's draw below), so that the poller can add its
        // keys to the table; the draws themselves stay in their old order.
        let mut webhooks_table = String::new();
        if webhooks {
            let tolerance = self.rng.random_range(2..=5u64);
            self.tolerance_s = Some(tolerance);
            let concurrency = self.pick(&[1u32, 2, 4]);
            let _ = writeln!(
                webhooks_table,
                "\n[webhooks]\ntracking = true\noutbound = true\ntolerance_s = {tolerance}\nsender_concurrency = {concurrency}"
            );
        }
        self.http_faults();
        self.network_faults(clients);
        self.process_faults();
        if webhooks {
            self.webhook_faults();
        }
        // Drawn last, so that adding it left every earlier draw (and the seeds that do not
        // draw it) as they were.
        if self.on(FAMILY_ON) {
            self.features.push("client_rate_limit");
            let burst = self.rng.random_range(2..=6u32);
            let per_second = self.rng.random_range(3..=20u32);
            let adaptive = self.on(0.7);
            let _ = writeln!(
                self.out,
                "\n[client.rate_limit]\nburst = {burst}\nper_second = {per_second}\nadaptive = {adaptive}"
            );
        }
        // Drawn after everything else, for the same reason: the merchants' events poller,
        // with the receiver down past a short retry horizon so that the feed, not a
        // redelivery, must recover the dead letters (page boundaries crossed with small
        // pages).
        if webhooks && self.on(FAMILY_ON) {
            self.features.push("poll_events");
            let every_ms = self.pick(&[200u64, 400, 800]);
            let limit = self.rng.random_range(1..=4u32);
            let attempts = self.rng.random_range(2..=3u32);
            let _ = writeln!(
                webhooks_table,
                "sender_attempts = {attempts}\npoll_events = {{ every_ms = {every_ms}, limit = {limit} }}"
            );
            let start = self.rng.random_range(0..1_000u64);
            let end = start + self.rng.random_range(2_500..5_000u64);
            let body = format!("kind = \"receiver_down\"\nstart_ms = {start}\nend_ms = {end}\n");
            self.fault("receiver_down", &body);
        }
        self.out.push_str(&webhooks_table);
        // Where the [webhooks] table ends, likewise.
        let webhooks_end = self.out.len();
        // Drawn after everything else for the same reason.
        if self.on(FAMILY_ON) {
            self.features.push("credential_rotation");
            let rotate = self.rng.random_range(100..1_000u64);
            let _ = writeln!(
                self.out,
                "\n[credentials]\nrotate_keys_at_ms = {rotate}\nretire_old_keys_at_ms = {}",
                rotate + 30_000
            );
            // With outbound webhooks the merchants' signing secrets rotate too: the last
            // draws of all, so every draw before keeps its order.
            if webhooks {
                self.features.push("secret_rotation");
                let secrets = self.rng.random_range(100..1_000u64);
                let switch = secrets + self.rng.random_range(500..3_000u64);
                let _ = writeln!(
                    self.out,
                    "rotate_secrets_at_ms = {secrets}\nreceiver_switches_at_ms = {switch}\nretire_old_secrets_at_ms = {}",
                    switch + 20_000
                );
            }
        }
        // Drawn after everything else, for the same reason, and written into the tables
        // they belong to (the later one first, so the earlier position still holds): keys
        // at the target's length limit and one past it, and a caller probing the outbox's
        // operator routes without the admin key.
        let key_length = (misuse && self.on(0.5)).then(|| self.probability(0.05, 0.3));
        let probe_operator = webhooks && self.on(0.5);
        // Drawn after those, for the same reason: a misbehaving caller probing the service
        // after the settle (an unknown route, X-Request-Ids, a header key and a body key that
        // disagree, a key reused with another body: judged by service_probes), and a retry
        // budget small enough that an outage spends it (client_discipline judges the retries
        // per client against it from the wire).
        let probe_misuse = misuse && self.on(0.5);
        let small_budget = self
            .on(0.25)
            .then(|| (self.rng.random_range(1..=5u32), self.pick(&[5u32, 10, 20])));
        if probe_operator {
            self.features.push("probe_operator");
            self.out.insert_str(webhooks_end, "probe_operator = true\n");
        }
        if probe_misuse {
            self.features.push("probe_misuse");
            self.out.insert_str(service_end, "probe_misuse = true\n");
        }
        if let Some((reserve, percent)) = small_budget {
            self.features.push("retry_budget");
            self.out.insert_str(
                client_end,
                &format!("retry_budget_reserve = {reserve}\nretry_budget_percent = {percent}\n"),
            );
        }
        if let Some(p) = key_length {
            self.features.push("keys_at_length_limit");
            self.out
                .insert_str(workload_end, &format!("keys_at_length_limit = {p}\n"));
        }
    }

    fn http_faults(&mut self) {
        if self.on(FAMILY_ON) {
            let target = self.pick(&["service", "carrier"]);
            let when = self.pick(&["before", "after"]);
            let p = self.probability(0.05, 0.35);
            let w = self.window(0.5);
            let body = format!(
                "kind = \"http_error\"\ntarget = \"{target}\"\nstatus = {}\nwhen = \"{when}\"\nprobability = {p}\n{w}",
                self.pick(&[500u16, 502, 503])
            );
            self.fault("http_error", &body);
        }
        if self.on(FAMILY_ON) {
            let target = self.pick(&["service", "carrier"]);
            let form = self.pick(&["seconds", "date"]);
            let p = self.probability(0.05, 0.35);
            let w = self.window(0.5);
            let body = format!(
                "kind = \"rate_limit\"\ntarget = \"{target}\"\nretry_after_s = {}\nretry_after_form = \"{form}\"\nprobability = {p}\n{w}",
                self.pick(&[0u64, 1, 2])
            );
            self.fault("rate_limit_fault", &body);
        }
        if self.on(FAMILY_ON) {
            let target = self.pick(&["service", "carrier"]);
            let p = self.probability(0.05, 0.3);
            let w = self.window(0.5);
            let body = format!(
                "kind = \"slow_response\"\ntarget = \"{target}\"\ndelay_ms = {}\nprobability = {p}\n{w}",
                self.pick(&[300u64, 800, 1_500])
            );
            self.fault("slow_response", &body);
        }
        if self.on(FAMILY_ON) {
            let kind = self.pick(&["drop_response", "reset_mid_response"]);
            let target = self.pick(&["service", "service", "carrier"]);
            let p = self.probability(0.05, 0.3);
            let w = self.window(0.5);
            let body = format!("kind = \"{kind}\"\ntarget = \"{target}\"\nprobability = {p}\n{w}");
            self.fault("lost_responses", &body);
        }
        if self.on(FAMILY_ON) {
            let p = self.probability(0.1, 0.5);
            let w = self.window(0.6);
            let body = format!(
                "kind = \"duplicate\"\ntarget = \"service\"\ncopies = {}\nprobability = {p}\n{w}",
                self.pick(&[2u32, 3])
            );
            self.fault("duplicate", &body);
        }
    }

    fn network_faults(&mut self, clients: u32) {
        if self.on(FAMILY_ON) {
            // One network fault at a time: turmoil cannot combine a hold with a one-way
            // partition on one link, and two partitions of one link say nothing more.
            let start = self.rng.random_range(0..1_500u64);
            let end = start + self.rng.random_range(100..1_500u64);
            let window = format!("start_ms = {start}\nend_ms = {end}\n");
            let client = format!("client-{}", self.rng.random_range(0..clients));
            let body = match self.rng.random_range(0..6u32) {
                0 => {
                    format!("kind = \"partition\"\nbetween = [\"clients\", \"service\"]\n{window}")
                }
                1 => {
                    format!("kind = \"partition\"\nbetween = [\"service\", \"carrier\"]\n{window}")
                }
                2 => format!(
                    "kind = \"partition_oneway\"\nfrom = \"service\"\nto = \"{client}\"\n{window}"
                ),
                3 => format!("kind = \"hold\"\nbetween = [\"clients\", \"service\"]\n{window}"),
                4 => format!(
                    "kind = \"flap\"\ntarget = \"service\"\nperiod_ms = {}\n{window}",
                    self.pick(&[100u64, 250])
                ),
                _ => format!("kind = \"reconnect_storm\"\ntarget = \"clients\"\n{window}"),
            };
            self.fault("network", &body);
        }
        if self.on(FAMILY_ON) {
            let w = self.window(0.5);
            let body = format!(
                "kind = \"latency\"\nbetween = [\"clients\", \"service\"]\nmin_ms = 5\nmax_ms = {}\n{w}",
                self.pick(&[50u64, 200, 600])
            );
            self.fault("latency", &body);
        }
        if self.on(FAMILY_ON / 2.0) {
            let target = self.pick(&["service", "clients"]);
            let w = self.window(0.5);
            let mut offset = self.rng.random_range(-5_000..=5_000i64);
            let drift = self.pick(&[0i64, 100, -100]);
            // The service verifies the carrier's signed events and signs its own: skewed
            // past the webhook tolerance it must refuse them as stale (a misconfigured host,
            // not a bug), so the skew stays inside it. Clamped, not redrawn: every other
            // draw of the seed is unchanged.
            if let (Some(tolerance_s), "service") = (self.tolerance_s, target) {
                let bound = skew_bound_ms(tolerance_s);
                offset = offset.clamp(-bound, bound);
            }
            let body = format!(
                "kind = \"clock_skew\"\ntarget = \"{target}\"\noffset_ms = {offset}\ndrift_ppm = {drift}\n{w}"
            );
            self.fault("clock_skew", &body);
        }
    }

    fn process_faults(&mut self) {
        if self.on(FAMILY_ON) {
            let restart = self.pick(&[100u64, 300, 1_000, 3_000]);
            if self.on(0.5) {
                let point = self.pick(&["shipment_claimed", "label_bought", "response_stored"]);
                let p = self.probability(0.2, 0.6);
                let body = format!(
                    "kind = \"crash\"\ntarget = \"service\"\npoint = \"{point}\"\ntimes = {}\nprobability = {p}\nrestart_after_ms = {restart}\n",
                    self.rng.random_range(1..=3u32)
                );
                self.fault("crash_at_point", &body);
            } else {
                let w = self.window(0.0);
                let body = format!(
                    "kind = \"crash\"\ntarget = \"service\"\nrestart_after_ms = {restart}\n{w}"
                );
                self.fault("crash", &body);
            }
        }
        if self.on(FAMILY_ON / 2.0) {
            let p = self.probability(0.2, 0.6);
            let body = format!(
                "kind = \"crash\"\ntarget = \"carrier\"\npoint = \"label_sold\"\nprobability = {p}\nrestart_after_ms = {}\n",
                self.pick(&[100u64, 500])
            );
            self.fault("carrier_crash", &body);
        }
        if self.on(FAMILY_ON / 2.0) {
            let start = self.rng.random_range(0..1_500u64);
            let end = start + self.rng.random_range(200..1_500u64);
            let body = format!("kind = \"carrier_down\"\nstart_ms = {start}\nend_ms = {end}\n");
            self.fault("carrier_down", &body);
        }
    }

    fn webhook_faults(&mut self) {
        for direction in ["inbound", "outbound"] {
            if self.on(FAMILY_ON) {
                let p = self.probability(0.1, 0.5);
                let body = format!(
                    "kind = \"webhook_duplicate\"\ndirection = \"{direction}\"\ncopies = {}\nprobability = {p}\n",
                    self.pick(&[2u32, 3])
                );
                self.fault("webhook_duplicate", &body);
            }
            if self.on(FAMILY_ON / 2.0) {
                let p = self.probability(0.1, 0.4);
                let (kind, extra) = match self.rng.random_range(0..3u32) {
                    0 => (
                        "webhook_reorder",
                        format!("max_ms = {}\n", self.pick(&[200u64, 800])),
                    ),
                    1 => (
                        "webhook_delay",
                        format!("delay_ms = {}\n", self.pick(&[600u64, 1_200])),
                    ),
                    _ => (
                        "webhook_drop",
                        format!("when = \"{}\"\n", self.pick(&["before", "after"])),
                    ),
                };
                let body = format!(
                    "kind = \"{kind}\"\ndirection = \"{direction}\"\nprobability = {p}\n{extra}"
                );
                self.fault("webhook_disorder", &body);
            }
            if self.on(FAMILY_ON) {
                let p = self.probability(0.1, 0.4);
                // Past the tolerance (the default) or well inside it.
                let after = if self.on(0.7) {
                    String::new()
                } else {
                    "after_ms = 200\n".to_string()
                };
                let body = format!(
                    "kind = \"webhook_replay\"\ndirection = \"{direction}\"\nprobability = {p}\n{after}"
                );
                self.fault("webhook_replay", &body);
            }
            if self.on(FAMILY_ON) {
                let p = self.probability(0.1, 0.4);
                let body = format!(
                    "kind = \"webhook_forge\"\ndirection = \"{direction}\"\nprobability = {p}\n"
                );
                self.fault("webhook_forge", &body);
            }
        }
        if self.on(FAMILY_ON / 2.0) {
            let start = self.rng.random_range(0..1_500u64);
            let end = start + self.rng.random_range(200..2_000u64);
            let body = format!("kind = \"receiver_down\"\nstart_ms = {start}\nend_ms = {end}\n");
            self.fault("receiver_down", &body);
        }
        if self.on(FAMILY_ON / 2.0) {
            let start = self.rng.random_range(0..1_500u64);
            let body = format!(
                "kind = \"webhook_burst\"\nevents = {}\nstart_ms = {start}\nend_ms = {}\n",
                self.rng.random_range(5..=30u32),
                start + 100
            );
            self.fault("webhook_burst", &body);
        }
    }
}

/// What one exploration seed did.
#[derive(Debug)]
pub struct Explored {
    /// The seed (of the scenario and of its run).
    pub seed: u64,
    /// The drawn scenario.
    pub scenario: Scenario,
    /// Its run.
    pub run: SeedRun,
}

impl Explored {
    /// Whether an oracle found a violation or the run could not finish.
    #[must_use]
    pub fn failed(&self) -> bool {
        !self.run.passed()
    }
}

/// Draws and runs exploration seed `seed` against `target` with `bugs`.
#[must_use]
pub fn explore_one(target: &Target, seed: u64, bugs: &BugSet) -> Explored {
    let scenario = scenario(seed);
    let run = run_seed(target, &scenario, seed, bugs);
    Explored {
        seed,
        scenario,
        run,
    }
}

/// What a set of exploration seeds exercised: per fault kind how many seeds drew it and in
/// how many it fired, and how often each moment was reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Fault kind -> (seeds that drew it, seeds in which it fired).
    pub faults: BTreeMap<String, (u64, u64)>,
    /// Moment -> (times reached, seeds reaching it).
    pub moments: BTreeMap<Moment, (u64, u64)>,
}

impl Coverage {
    /// Adds one explored seed.
    pub fn add(&mut self, explored: &Explored) {
        let mut kinds: BTreeMap<&str, bool> = BTreeMap::new();
        for spec in &explored.scenario.faults {
            let fired = explored.run.fired.get(&spec.index).copied().unwrap_or(0) > 0;
            let entry = kinds.entry(spec.kind.name()).or_insert(false);
            *entry |= fired;
        }
        for (kind, fired) in kinds {
            let entry = self.faults.entry(kind.to_string()).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u64::from(fired);
        }
        for (moment, count) in &explored.run.reached {
            let entry = self.moments.entry(*moment).or_insert((0, 0));
            entry.0 += count;
            entry.1 += 1;
        }
    }
}

/// One explored seed, reduced to what a summary needs (a failure replays exactly, so its
/// run is not kept).
#[derive(Clone, Debug)]
pub struct SeedSummary {
    /// The seed.
    pub seed: u64,
    /// The first violation's oracle (`liveness` for a stuck run), when it failed.
    pub failure: Option<(crate::many::shrink::Goal, String)>,
}

/// Runs exploration seeds `seeds` with `bugs` on `jobs` threads: per seed its summary, in
/// seed order, and what they exercised together.
#[must_use]
pub fn sweep(
    target: &Target,
    seeds: &[u64],
    bugs: &BugSet,
    jobs: usize,
) -> (Vec<SeedSummary>, Coverage) {
    let mut summaries = Vec::with_capacity(seeds.len());
    let mut coverage = Coverage::default();
    crate::many::sweep::pool(
        seeds,
        jobs,
        |&seed| explore_one(target, seed, bugs),
        |_, explored| {
            coverage.add(&explored);
            summaries.push(SeedSummary {
                seed: explored.seed,
                failure: goal_of(&explored.run),
            });
        },
    );
    summaries.sort_by_key(|s| s.seed);
    (summaries, coverage)
}

/// How a run failed: its first violation's oracle and message, or stuck.
#[must_use]
pub fn goal_of(run: &SeedRun) -> Option<(crate::many::shrink::Goal, String)> {
    match (run.violations.first(), &run.stuck) {
        (Some(v), _) => Some((
            crate::many::shrink::Goal::Oracle(v.oracle),
            v.message.clone(),
        )),
        (None, Some(stuck)) => Some((crate::many::shrink::Goal::Stuck, stuck.clone())),
        (None, None) => None,
    }
}

/// The first seed of `seeds_max` (1, 2, 3, ...) whose explored scenario fails with `bugs`:
/// (seeds tried, that seed's exploration).
#[must_use]
pub fn first_failure(target: &Target, bugs: &BugSet, seeds_max: u64) -> Option<(u64, Explored)> {
    (1..=seeds_max).enumerate().find_map(|(position, seed)| {
        let explored = explore_one(target, seed, bugs);
        explored.failed().then_some((position as u64 + 1, explored))
    })
}

/// Shrinks a failing exploration to its smallest failing scenario.
///
/// # Panics
/// If `explored` did not fail.
#[must_use]
pub fn shrink(target: &Target, explored: Explored, bugs: &BugSet) -> crate::many::shrink::Shrunk {
    let (goal, _) = goal_of(&explored.run).expect("only failures are shrunk");
    let mut shrunk = crate::many::shrink::shrink(
        target,
        &explored.scenario,
        explored.seed,
        bugs,
        goal,
        explored.run,
    );
    shrunk.scenario.bugs = bugs.clone();
    shrunk.scenario.trace_hash = Some(shrunk.run.trace.hash());
    shrunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drawn_scenario_is_valid_and_writes_back() {
        // Proves the generator writes only valid files (scenario() panics otherwise) for
        // many seeds, that a seed always draws the same scenario, and that each round-trips
        // through the canonical writer, so a failing one is its own repro file.
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..2_000 {
            let drawn = scenario(seed);
            assert_eq!(drawn, scenario(seed), "seed {seed} drew two scenarios");
            let text = drawn.to_toml();
            let back = Scenario::parse("back.toml", "back", &text)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(back.faults.len(), drawn.faults.len());
            kinds.extend(drawn.faults.iter().map(|f| f.kind.name()));
        }
        // The swarm reaches every fault kind of the catalogue.
        let catalogue: std::collections::BTreeSet<&str> =
            crate::fault::CATALOGUE.iter().map(|k| k.name).collect();
        let missing: Vec<_> = catalogue.difference(&kinds).collect();
        assert!(missing.is_empty(), "never drawn: {missing:?}");
    }

    #[test]
    fn service_skew_stays_inside_the_webhook_tolerance() {
        // Proves the explorer never skews the service's clock past the drawn webhook
        // tolerance (refusing events as stale would then be right, and a false failure),
        // while still drawing skews on both sides and skews of the clients past it.
        let (mut inside, mut clients_past) = (0, 0);
        for seed in 0..2_000 {
            let text = scenario_text(seed);
            let value: toml::Table = text.parse().expect("drawn TOML parses");
            let Some(tolerance_s) = value
                .get("webhooks")
                .and_then(|w| w.get("tolerance_s"))
                .and_then(toml::Value::as_integer)
            else {
                continue;
            };
            let faults = value.get("fault").and_then(toml::Value::as_array);
            for fault in faults.into_iter().flatten() {
                if fault.get("kind").and_then(toml::Value::as_str) != Some("clock_skew") {
                    continue;
                }
                let offset = fault["offset_ms"].as_integer().expect("offset_ms");
                let bound = skew_bound_ms(u64::try_from(tolerance_s).expect("positive"));
                if fault["target"].as_str() == Some("service") {
                    assert!(offset.abs() <= bound, "seed {seed}: {offset} ms\n{text}");
                    inside += 1;
                } else if offset.abs() > bound {
                    clients_past += 1;
                }
            }
        }
        assert!(inside > 10 && clients_past > 10, "{inside} {clients_past}");
    }
}
