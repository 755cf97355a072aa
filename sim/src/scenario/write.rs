//! Writing a scenario back as TOML, canonically: every setting explicit, so a repro file
//! replays the same run even if defaults change later.

use std::fmt::Write;

use super::Scenario;
use crate::fault::FaultSpec;

impl Scenario {
    /// The scenario as a self-contained TOML file that parses back to an equal scenario
    /// (apart from `path`).
    #[must_use]
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name = {}", quote(&self.name));
        if !self.description.is_empty() {
            let _ = writeln!(out, "description = {}", quote(&self.description));
        }
        if let Some(seed) = self.seed {
            let _ = writeln!(out, "seed = {seed}");
        }
        if let Some(hash) = self.trace_hash {
            let _ = writeln!(out, "trace_hash = \"{hash:016x}\"");
        }
        if !self.bugs.is_empty() {
            let names: Vec<String> = self.bugs.iter().map(|b| quote(b.name())).collect();
            let _ = writeln!(out, "bugs = [{}]", names.join(", "));
        }
        // Every oracle is the default: only a narrower list is written.
        if self.oracles != crate::oracle::OracleKind::ALL {
            let oracles: Vec<String> = self.oracles.iter().map(|o| quote(o.name())).collect();
            let _ = writeln!(out, "oracles = [{}]", oracles.join(", "));
        }
        if !self.reach.is_empty() {
            let reach: Vec<String> = self.reach.iter().map(|m| quote(m.name())).collect();
            let _ = writeln!(out, "reach = [{}]", reach.join(", "));
        }

        let run = &self.run;
        let _ = writeln!(out, "\n[run]");
        let _ = writeln!(out, "seeds = {}", quote(&self.seeds.to_string()));
        let _ = writeln!(out, "tick_ms = {}", run.tick_ms);
        let _ = writeln!(
            out,
            "latency_ms = [{}, {}]",
            run.latency_ms.0, run.latency_ms.1
        );
        let _ = writeln!(out, "time_limit_ms = {}", run.time_limit_ms);

        let _ = writeln!(out, "\n[hosts]");
        let _ = writeln!(out, "clients = {}", self.hosts.clients);
        let _ = writeln!(out, "callers = {}", self.hosts.callers);

        let w = &self.workload;
        let _ = writeln!(out, "\n[workload]");
        let _ = writeln!(out, "operations = {}", w.operations);
        let _ = writeln!(out, "think_ms = [{}, {}]", w.think_ms.0, w.think_ms.1);
        if let Some(mix) = &w.mix {
            let entries: Vec<String> = mix
                .entries()
                .map(|(name, weight)| format!("{name} = {weight}"))
                .collect();
            let _ = writeln!(out, "mix = {{ {} }}", entries.join(", "));
        }
        let _ = writeln!(out, "double_submit = {}", float(w.double_submit));
        let _ = writeln!(out, "key_in_body = {}", float(w.key_in_body));
        let _ = writeln!(out, "unserviceable = {}", float(w.unserviceable));
        let _ = writeln!(
            out,
            "reuse_key_with_other_body = {}",
            float(w.reuse_key_with_other_body)
        );
        // Written only when on, so files written before the knob existed read back unchanged.
        if w.keys_at_length_limit > 0.0 {
            let _ = writeln!(
                out,
                "keys_at_length_limit = {}",
                float(w.keys_at_length_limit)
            );
        }

        let c = &self.client;
        let _ = writeln!(out, "\n[client]");
        let _ = writeln!(out, "timeout_ms = {}", c.timeout_ms_per_attempt);
        let _ = writeln!(out, "deadline_ms = {}", c.deadline_ms);
        let _ = writeln!(out, "attempts = {}", c.attempt_count_max);
        let _ = writeln!(out, "backoff_ms_base = {}", c.backoff_ms_base);
        let _ = writeln!(out, "backoff_ms_max = {}", c.backoff_ms_max);
        match c.breaker {
            Some(breaker) => {
                let _ = writeln!(out, "breaker = true");
                let _ = writeln!(out, "breaker_failures = {}", breaker.failures_to_open);
                let _ = writeln!(out, "breaker_cooldown_ms = {}", breaker.cooldown_ms);
            }
            None => {
                let _ = writeln!(out, "breaker = false");
            }
        }
        match c.budget {
            Some(budget) => {
                let _ = writeln!(out, "retry_budget = true");
                let _ = writeln!(out, "retry_budget_percent = {}", budget.percent);
                let _ = writeln!(out, "retry_budget_reserve = {}", budget.reserve);
            }
            None => {
                let _ = writeln!(out, "retry_budget = false");
            }
        }
        if let Some(limit) = c.rate_limit {
            let _ = writeln!(
                out,
                "rate_limit = {{ burst = {}, per_second = {}, adaptive = {} }}",
                limit.burst, limit.per_second, limit.adaptive
            );
        }

        let s = &self.service;
        // The reference service's settings: written only when they differ from the
        // defaults, so a repro of another target carries none of them.
        if *s != super::ServiceSettings::default() {
            let _ = writeln!(out, "\n[service]");
            if let Some(limit) = s.rate_limit {
                let _ = writeln!(
                    out,
                    "rate_limit = {{ burst = {}, per_second = {} }}",
                    limit.burst, limit.per_second
                );
            }
            let _ = writeln!(
                out,
                "store_latency_ms = [{}, {}]",
                s.store_latency_ms.0, s.store_latency_ms.1
            );
            let _ = writeln!(
                out,
                "carrier_timeout_ms = {}",
                s.carrier.timeout_ms_per_attempt
            );
            let _ = writeln!(out, "carrier_deadline_ms = {}", s.carrier.deadline_ms);
            let _ = writeln!(out, "carrier_attempts = {}", s.carrier.attempt_count_max);
            let _ = writeln!(out, "lock_lease_ms = {}", s.lock_lease_ms);
            if s.store != super::ServiceStore::Memory {
                let _ = writeln!(out, "store = \"{}\"", s.store.name());
            }
            if let Some(retention) = s.idempotency_retention_ms {
                let _ = writeln!(out, "idempotency_retention_ms = {retention}");
            }
            if let Some(batch) = s.idempotency_sweep_batch {
                let _ = writeln!(out, "idempotency_sweep_batch = {batch}");
            }
            if s.probe_misuse {
                let _ = writeln!(out, "probe_misuse = true");
            }
            if s.probe_retention {
                let _ = writeln!(out, "probe_retention = true");
            }
        }

        if let Some(w) = &self.webhooks {
            let _ = writeln!(out, "\n[webhooks]");
            let _ = writeln!(out, "tracking = {}", w.tracking);
            let _ = writeln!(out, "outbound = {}", w.outbound);
            let _ = writeln!(out, "tolerance_s = {}", w.tolerance_s);
            let _ = writeln!(out, "exception_percent = {}", w.exception_percent);
            let _ = writeln!(out, "sender_timeout_ms = {}", w.sender.timeout_ms);
            let _ = writeln!(out, "sender_attempts = {}", w.sender.attempt_count_max);
            let _ = writeln!(out, "sender_concurrency = {}", w.sender.concurrency);
            if let Some(poll) = &w.poll_events {
                let _ = writeln!(
                    out,
                    "poll_events = {{ every_ms = {}, limit = {} }}",
                    poll.every_ms, poll.limit
                );
            }
            if w.probe_operator {
                let _ = writeln!(out, "probe_operator = true");
            }
        }

        if let Some(c) = &self.credentials {
            let _ = writeln!(out, "\n[credentials]");
            let _ = writeln!(out, "rotate_keys_at_ms = {}", c.rotate_keys_at_ms);
            let _ = writeln!(out, "retire_old_keys_at_ms = {}", c.retire_old_keys_at_ms);
            if let Some(s) = &c.secrets {
                let _ = writeln!(out, "rotate_secrets_at_ms = {}", s.rotate_at_ms);
                let _ = writeln!(
                    out,
                    "receiver_switches_at_ms = {}",
                    s.receiver_switches_at_ms
                );
                let _ = writeln!(out, "retire_old_secrets_at_ms = {}", s.retire_old_at_ms);
            }
        }

        for fault in &self.faults {
            let _ = writeln!(out, "\n[[fault]]");
            out.push_str(&fault_table(fault));
        }

        if !self.budgets.is_empty() {
            let _ = writeln!(out, "\n[budgets]");
            for (endpoint, budget) in &self.budgets {
                let limits: Vec<String> = budget
                    .limits()
                    .into_iter()
                    .map(|(metric, limit)| format!("{metric}_ms_max = {limit}"))
                    .collect();
                let _ = writeln!(out, "{} = {{ {} }}", quote(endpoint), limits.join(", "));
            }
        }
        out
    }
}

fn fault_table(fault: &FaultSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kind = {}", quote(fault.kind.name()));
    for (key, value) in fault.kind.params_toml() {
        let _ = writeln!(out, "{key} = {value}");
    }
    if fault.stream != fault.index as u64 {
        let _ = writeln!(out, "stream = {}", fault.stream);
    }
    let _ = writeln!(out, "start_ms = {}", fault.window.start_ms);
    if let Some(end) = fault.window.end_ms {
        let _ = writeln!(out, "end_ms = {end}");
    }
    if fault
        .kind
        .info()
        .params
        .iter()
        .any(|p| p.name == "probability")
    {
        let _ = writeln!(out, "probability = {}", float(fault.probability));
    }
    out
}

/// A TOML basic string.
pub(crate) fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A TOML float that reads back as the same f64.
fn float(value: f64) -> String {
    toml::Value::Float(value).to_string()
}
