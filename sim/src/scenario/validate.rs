//! Validation: a parsed [`RawScenario`] (the TOML as written, with spans) turned into a
//! [`Scenario`], table by table; every problem a [`ScenarioError`] at its file, line and
//! column, with the offending line and a hint.

use std::collections::BTreeMap;

use shipsim_system::bugs::{Bug, BugSet};
use shipsim_system::client::{Breaker, ClientRateLimit, RetryBudget, RetryPolicy};
use shipsim_system::service::RateLimit;
use toml::Spanned;

use super::raw::{self, RawScenario};
use super::{
    BREAKER_DEFAULT, Budget, CredentialSettings, HostSettings, Mix, PollEvents,
    RETRY_BUDGET_DEFAULT, RunSettings, Scenario, ScenarioError, SecretRotationSettings, SeedRange,
    ServiceSettings, ServiceStore, TICK_MS_DEFAULT, Topology, WebhookSettings, WorkloadSettings,
    error, limits,
};
use crate::fault::{self, FaultSpec, ParseContext};
use crate::oracle::OracleKind;
use crate::reach::Moment;

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    topology: &'a Topology,
}

impl Ctx<'_> {
    fn error<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.source, value.span(), message)
    }

    /// A numeric field, checked against its range.
    fn int<T: limits::Number>(
        &self,
        field: &limits::Field,
        value: &Spanned<T>,
    ) -> Result<T, ScenarioError> {
        field.check(self.file, self.source, *value.get_ref(), value.span())
    }

    /// A `[low, high]` field: both ends in range, `low <= high`.
    fn pair(
        &self,
        field: &limits::Field,
        value: &Spanned<[u64; 2]>,
    ) -> Result<(u64, u64), ScenarioError> {
        let [low, high] = *value.get_ref();
        for end in [low, high] {
            field.check(self.file, self.source, end, value.span())?;
        }
        if high < low {
            return Err(self
                .error(
                    value,
                    format!("{} range [{low}, {high}] ends before it starts", field.key),
                )
                .with_hint("write [low, high] with low <= high"));
        }
        Ok((low, high))
    }

    /// A probability field, 0 when absent.
    fn probability(
        &self,
        field: &limits::Field,
        value: Option<&Spanned<f64>>,
    ) -> Result<f64, ScenarioError> {
        let Some(value) = value else {
            return Ok(0.0);
        };
        field.check(self.file, self.source, *value.get_ref(), value.span())
    }
}

pub(super) fn validate(
    file: &str,
    default_name: &str,
    source: &str,
    topology: &Topology,
    raw: RawScenario,
) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx {
        file,
        source,
        topology,
    };
    let name = match &raw.name {
        Some(name) if name.get_ref().trim().is_empty() => {
            return Err(ctx.error(name, "`name` must not be empty"));
        }
        Some(name) => name.get_ref().clone(),
        None => default_name.to_string(),
    };

    let run = validate_run(&ctx, raw.run.as_ref())?;
    let hosts = validate_hosts(&ctx, raw.hosts.as_ref())?;
    let workload = validate_workload(&ctx, raw.workload.as_ref())?;
    let client = validate_client(&ctx, raw.client.as_ref())?;
    let service = validate_service(&ctx, raw.service.as_ref())?;
    let seeds = match raw.run.as_ref().and_then(|r| r.seeds.as_ref()) {
        None => SeedRange::new(1, 21).expect("default range is valid"),
        Some(text) => SeedRange::parse(text.get_ref()).map_err(|m| ctx.error(text, m))?,
    };

    let webhooks = validate_webhooks(&ctx, raw.webhooks.as_ref())?;
    let credentials = validate_credentials(&ctx, raw.credentials.as_ref(), &run, webhooks)?;
    let faults = validate_faults(&ctx, &raw.fault, hosts.clients, webhooks)?;
    let oracles = validate_oracles(&ctx, raw.oracles.as_ref())?;
    let reach = validate_reach(&ctx, raw.reach.as_ref())?;

    let seed = raw
        .seed
        .as_ref()
        .map(|seed| ctx.int(&limits::SEED, seed))
        .transpose()?;
    let trace_hash = raw
        .trace_hash
        .as_ref()
        .map(|text| validate_trace_hash(&ctx, text, raw.seed.is_some()))
        .transpose()?;
    let bugs = validate_bugs(&ctx, raw.bugs.as_ref())?;
    let budgets = validate_budgets(&ctx, raw.budgets.as_ref())?;

    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        path: file.to_string(),
        seeds,
        seed,
        trace_hash,
        bugs: BugSet::of(bugs),
        run,
        hosts,
        workload,
        client,
        service,
        webhooks,
        credentials,
        faults,
        oracles,
        reach,
        budgets,
    })
}

/// `[[fault]]`: each parsed by its kind's parser, in order.
fn validate_faults(
    ctx: &Ctx<'_>,
    raw: &[Spanned<raw::RawFault>],
    clients: u32,
    webhooks: Option<WebhookSettings>,
) -> Result<Vec<FaultSpec>, ScenarioError> {
    let fault_context = ParseContext {
        file: ctx.file,
        source: ctx.source,
        clients,
        hosts: &ctx.topology.hosts,
        webhooks,
    };
    raw.iter()
        .enumerate()
        .map(|(index, table)| fault::parse(table, index, &fault_context))
        .collect()
}

/// `oracles`: the oracles to run, each once, sorted; every oracle when absent.
fn validate_oracles(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<OracleKind>, ScenarioError> {
    let Some(list) = raw else {
        return Ok(OracleKind::ALL.to_vec());
    };
    let mut chosen = Vec::new();
    for entry in list.get_ref() {
        let oracle = entry.get_ref().parse::<OracleKind>().map_err(|_| {
            let names = OracleKind::ALL.iter().map(|o| o.name());
            let error = ctx.error(entry, format!("unknown oracle `{}`", entry.get_ref()));
            match error::closest(entry.get_ref(), names) {
                Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                None => error.with_hint("`shipsim list --oracles` lists them"),
            }
        })?;
        if chosen.contains(&oracle) {
            return Err(ctx.error(entry, format!("oracle `{}` is listed twice", oracle.name())));
        }
        chosen.push(oracle);
    }
    if chosen.is_empty() {
        return Err(ctx
            .error(list, "`oracles` is empty: nothing would judge the run")
            .with_hint("leave `oracles` out to run every oracle"));
    }
    chosen.sort();
    Ok(chosen)
}

/// `trace_hash`: 16 hex digits, and only beside the `seed` it belongs to.
fn validate_trace_hash(
    ctx: &Ctx<'_>,
    text: &Spanned<String>,
    has_seed: bool,
) -> Result<u64, ScenarioError> {
    if !has_seed {
        return Err(ctx
            .error(
                text,
                "`trace_hash` without `seed`: a hash belongs to one seed",
            )
            .with_hint("repro files pin both"));
    }
    let valid = text.get_ref().len() == 16 && text.get_ref().bytes().all(|b| b.is_ascii_hexdigit());
    let hash = valid
        .then(|| u64::from_str_radix(text.get_ref(), 16).ok())
        .flatten();
    hash.ok_or_else(|| ctx.error(text, "`trace_hash` must be 16 hex digits"))
}

/// `bugs`: planted bugs by name.
fn validate_bugs(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Bug>, ScenarioError> {
    let mut bugs = Vec::new();
    for entry in raw.map(Spanned::get_ref).into_iter().flatten() {
        let bug = entry.get_ref().parse::<Bug>().map_err(|e| {
            let names = Bug::ALL.iter().map(|b| b.name());
            let error = ctx.error(entry, e.to_string());
            match error::closest(entry.get_ref(), names) {
                Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                None => error,
            }
        })?;
        bugs.push(bug);
    }
    Ok(bugs)
}

/// `[budgets]`: latency limits by endpoint, each an endpoint of the target with at least
/// one limit.
fn validate_budgets(
    ctx: &Ctx<'_>,
    raw: Option<&BTreeMap<Spanned<String>, Spanned<raw::RawBudget>>>,
) -> Result<BTreeMap<String, Budget>, ScenarioError> {
    let topology = ctx.topology;
    let mut budgets = BTreeMap::new();
    for (endpoint_text, budget) in raw.into_iter().flatten() {
        let route = endpoint_text.get_ref();
        if !topology.routes.iter().any(|r| r == route) {
            let error = ctx.error(endpoint_text, format!("unknown endpoint `{route}`"));
            let hint = match error::closest(route, topology.routes.iter().map(String::as_str)) {
                Some(guess) => format!("did you mean `{guess}`?"),
                None => format!("endpoints are: {}", topology.routes.join(", ")),
            };
            return Err(error.with_hint(hint));
        }
        let endpoint = route.clone();
        let raw_budget = budget.get_ref();
        let limit = |field: &limits::Field, value: &Option<Spanned<u64>>| {
            value.as_ref().map(|v| ctx.int(field, v)).transpose()
        };
        let value = Budget {
            p50_ms_max: limit(&limits::BUDGET_P50_MS_MAX, &raw_budget.p50_ms_max)?,
            p95_ms_max: limit(&limits::BUDGET_P95_MS_MAX, &raw_budget.p95_ms_max)?,
            p99_ms_max: limit(&limits::BUDGET_P99_MS_MAX, &raw_budget.p99_ms_max)?,
            max_ms_max: limit(&limits::BUDGET_MAX_MS_MAX, &raw_budget.max_ms_max)?,
        };
        if value.limits().is_empty() {
            return Err(ctx
                .error(budget, "a budget needs at least one limit")
                .with_hint("p50_ms_max, p95_ms_max, p99_ms_max or max_ms_max"));
        }
        budgets.insert(endpoint, value);
    }
    Ok(budgets)
}

fn validate_credentials(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<raw::RawCredentials>>,
    run: &RunSettings,
    webhooks: Option<WebhookSettings>,
) -> Result<Option<CredentialSettings>, ScenarioError> {
    let Some(table) = raw else { return Ok(None) };
    let raw = table.get_ref();
    let rotate = *raw.rotate_keys_at_ms.get_ref();
    let retire = *raw.retire_old_keys_at_ms.get_ref();
    if retire <= rotate {
        return Err(ctx
            .error(
                &raw.retire_old_keys_at_ms,
                format!(
                    "the old keys are retired at {retire} ms, not after the rotation at {rotate} ms"
                ),
            )
            .with_hint("retire the old keys after clients moved to the new ones"));
    }
    if retire >= run.time_limit_ms {
        return Err(ctx.error(
            &raw.retire_old_keys_at_ms,
            format!(
                "{retire} ms is past the run's time limit of {} ms",
                run.time_limit_ms
            ),
        ));
    }
    let secrets = validate_secret_rotation(ctx, table, run, webhooks)?;
    Ok(Some(CredentialSettings {
        rotate_keys_at_ms: rotate,
        retire_old_keys_at_ms: retire,
        secrets,
    }))
}

/// The webhook secret rotation of `[credentials]`: all three times or none, in order
/// (rotate < receiver switch < retire < time limit), and only with outbound webhooks.
fn validate_secret_rotation(
    ctx: &Ctx<'_>,
    table: &Spanned<raw::RawCredentials>,
    run: &RunSettings,
    webhooks: Option<WebhookSettings>,
) -> Result<Option<SecretRotationSettings>, ScenarioError> {
    let raw = table.get_ref();
    let (rotate, switch, retire) = match (
        &raw.rotate_secrets_at_ms,
        &raw.receiver_switches_at_ms,
        &raw.retire_old_secrets_at_ms,
    ) {
        (None, None, None) => return Ok(None),
        (Some(rotate), Some(switch), Some(retire)) => (rotate, switch, retire),
        (given, _, _) => {
            let at = given
                .as_ref()
                .or(raw.receiver_switches_at_ms.as_ref())
                .or(raw.retire_old_secrets_at_ms.as_ref())
                .expect("one of the three is given");
            return Err(ctx
                .error(at, "a webhook secret rotation needs all three of its times")
                .with_hint(
                    "give rotate_secrets_at_ms, receiver_switches_at_ms and retire_old_secrets_at_ms",
                ));
        }
    };
    if !webhooks.is_some_and(|w| w.outbound) {
        return Err(ctx
            .error(rotate, "a webhook secret rotation needs outbound webhooks")
            .with_hint("add [webhooks] outbound = true"));
    }
    let (r, s, t) = (*rotate.get_ref(), *switch.get_ref(), *retire.get_ref());
    if s <= r {
        return Err(ctx.error(
            switch,
            format!("the receiver switches at {s} ms, not after the rotation at {r} ms"),
        ));
    }
    if t <= s {
        return Err(ctx.error(
            retire,
            format!(
                "the old secret is retired at {t} ms, not after the receiver switched at {s} ms"
            ),
        ));
    }
    if t >= run.time_limit_ms {
        return Err(ctx.error(
            retire,
            format!(
                "{t} ms is past the run's time limit of {} ms",
                run.time_limit_ms
            ),
        ));
    }
    Ok(Some(SecretRotationSettings {
        rotate_at_ms: r,
        receiver_switches_at_ms: s,
        retire_old_at_ms: t,
    }))
}

/// `reach = [...]`: known moment names, each once, in catalogue order.
fn validate_reach(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Moment>, ScenarioError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    let mut chosen = Vec::new();
    for entry in list.get_ref() {
        let moment = entry.get_ref().parse::<Moment>().map_err(|message| {
            let error = ctx.error(entry, message);
            match error::closest(entry.get_ref(), Moment::ALL.iter().map(|m| m.name())) {
                Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                None => error.with_hint("`shipsim list --moments` lists them"),
            }
        })?;
        if chosen.contains(&moment) {
            return Err(ctx.error(entry, format!("moment `{moment}` is listed twice")));
        }
        chosen.push(moment);
    }
    chosen.sort();
    Ok(chosen)
}

fn validate_webhooks(
    ctx: &Ctx<'_>,
    raw: Option<&Spanned<raw::RawWebhooks>>,
) -> Result<Option<WebhookSettings>, ScenarioError> {
    let Some(table) = raw else { return Ok(None) };
    let raw = table.get_ref();
    let mut settings = WebhookSettings {
        tracking: true,
        outbound: true,
        tolerance_s: shipsim_system::webhook::TOLERANCE_S_DEFAULT,
        exception_percent: 5,
        sender: shipsim_system::webhook::SenderConfig::DEFAULT,
        poll_events: None,
        probe_operator: false,
    };
    if let Some(v) = &raw.tracking {
        settings.tracking = *v.get_ref();
    }
    if let Some(v) = &raw.outbound {
        settings.outbound = *v.get_ref();
    }
    if !settings.tracking && !settings.outbound {
        return Err(ctx
            .error(
                table,
                "`[webhooks]` with neither tracking nor outbound does nothing",
            )
            .with_hint("leave the table out to run without webhooks"));
    }
    if let Some(v) = &raw.tolerance_s {
        settings.tolerance_s = ctx.int(&limits::TOLERANCE_S, v)?;
    }
    if let Some(v) = &raw.exception_percent {
        settings.exception_percent = ctx.int(&limits::EXCEPTION_PERCENT, v)?;
    }
    if let Some(v) = &raw.sender_timeout_ms {
        settings.sender.timeout_ms = ctx.int(&limits::SENDER_TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.sender_attempts {
        settings.sender.attempt_count_max = ctx.int(&limits::SENDER_ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.sender_concurrency {
        settings.sender.concurrency = ctx.int(&limits::SENDER_CONCURRENCY, v)? as usize;
    }
    if let Some(poll) = &raw.poll_events {
        if !settings.outbound {
            return Err(ctx
                .error(
                    poll,
                    "`poll_events` needs outbound webhooks: with `outbound = false` there is no feed to read and no receiver to poll it",
                )
                .with_hint("set `outbound = true`, or leave `poll_events` out"));
        }
        let p = poll.get_ref();
        settings.poll_events = Some(PollEvents {
            every_ms: ctx.int(&limits::POLL_EVENTS_EVERY_MS, &p.every_ms)?,
            limit: ctx.int(&limits::POLL_EVENTS_LIMIT, &p.limit)?,
        });
    }
    if let Some(probe) = &raw.probe_operator {
        if *probe.get_ref() && !settings.outbound {
            return Err(ctx
                .error(
                    probe,
                    "`probe_operator` probes the outbox's operator routes: with `outbound = false` there is no outbox",
                )
                .with_hint("set `outbound = true`, or leave `probe_operator` out"));
        }
        settings.probe_operator = *probe.get_ref();
    }
    Ok(Some(settings))
}

fn validate_run(ctx: &Ctx<'_>, raw: Option<&raw::RawRun>) -> Result<RunSettings, ScenarioError> {
    let mut run = RunSettings {
        tick_ms: TICK_MS_DEFAULT,
        latency_ms: (1, 5),
        time_limit_ms: 600_000,
    };
    let Some(raw) = raw else { return Ok(run) };
    if let Some(tick) = &raw.tick_ms {
        run.tick_ms = ctx.int(&limits::TICK_MS, tick)?;
    }
    if let Some(latency) = &raw.latency_ms {
        run.latency_ms = ctx.pair(&limits::RUN_LATENCY_MS, latency)?;
    }
    if let Some(limit) = &raw.time_limit_ms {
        run.time_limit_ms = ctx.int(&limits::TIME_LIMIT_MS, limit)?;
    }
    Ok(run)
}

fn validate_hosts(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawHosts>,
) -> Result<HostSettings, ScenarioError> {
    let mut hosts = HostSettings {
        clients: 1,
        callers: 1,
    };
    let Some(raw) = raw else { return Ok(hosts) };
    if let Some(clients) = &raw.clients {
        hosts.clients = ctx.int(&limits::CLIENTS, clients)?;
    }
    if let Some(callers) = &raw.callers {
        hosts.callers = ctx.int(&limits::CALLERS, callers)?;
        if hosts.callers > hosts.clients {
            return Err(ctx
                .error(
                    callers,
                    format!(
                        "{} callers but only {} client(s)",
                        hosts.callers, hosts.clients
                    ),
                )
                .with_hint("each caller (merchant) needs at least one client host"));
        }
    }
    Ok(hosts)
}

fn validate_workload(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawWorkload>,
) -> Result<WorkloadSettings, ScenarioError> {
    let mut workload = WorkloadSettings {
        operations: 20,
        think_ms: (0, 20),
        mix: None,
        double_submit: 0.0,
        key_in_body: 0.0,
        unserviceable: 0.0,
        reuse_key_with_other_body: 0.0,
        keys_at_length_limit: 0.0,
    };
    let Some(raw) = raw else { return Ok(workload) };
    if let Some(operations) = &raw.operations {
        workload.operations = ctx.int(&limits::OPERATIONS, operations)?;
    }
    if let Some(think) = &raw.think_ms {
        workload.think_ms = ctx.pair(&limits::THINK_MS, think)?;
    }
    if let Some(mix) = &raw.mix {
        let mut entries = BTreeMap::new();
        for (name, weight) in mix.get_ref() {
            let field = limits::mix_field(name.get_ref());
            let weight = ctx.int(field, weight)?;
            if !ctx.topology.operations.iter().any(|o| o == name.get_ref()) {
                let operations = ctx.topology.operations.iter().map(String::as_str);
                let error = ctx.error(
                    name,
                    format!("unknown operation `{}` in `mix`", name.get_ref()),
                );
                let hint = match error::closest(name.get_ref(), operations) {
                    Some(guess) => format!("did you mean `{guess}`?"),
                    None => format!(
                        "the target's operations are: {}",
                        ctx.topology.operations.join(", ")
                    ),
                };
                return Err(error.with_hint(hint));
            }
            entries.insert(name.get_ref().clone(), weight);
        }
        let mix_value = Mix(entries);
        if mix_value.total() == 0 {
            let example = ctx
                .topology
                .operations
                .first()
                .map_or_else(String::new, |o| format!("e.g. mix = {{ {o} = 1 }}"));
            return Err(ctx
                .error(
                    mix,
                    "every weight of `mix` is 0: the clients would do nothing",
                )
                .with_hint(example));
        }
        workload.mix = Some(mix_value);
    }
    workload.double_submit = ctx.probability(&limits::DOUBLE_SUBMIT, raw.double_submit.as_ref())?;
    workload.key_in_body = ctx.probability(&limits::KEY_IN_BODY, raw.key_in_body.as_ref())?;
    workload.unserviceable = ctx.probability(&limits::UNSERVICEABLE, raw.unserviceable.as_ref())?;
    workload.reuse_key_with_other_body = ctx.probability(
        &limits::REUSE_KEY_WITH_OTHER_BODY,
        raw.reuse_key_with_other_body.as_ref(),
    )?;
    workload.keys_at_length_limit = ctx.probability(
        &limits::KEYS_AT_LENGTH_LIMIT,
        raw.keys_at_length_limit.as_ref(),
    )?;
    Ok(workload)
}

fn validate_client(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawClient>,
) -> Result<RetryPolicy, ScenarioError> {
    let mut policy = RetryPolicy {
        timeout_ms_per_attempt: 1_000,
        deadline_ms: 10_000,
        attempt_count_max: 6,
        backoff_ms_base: 50,
        backoff_ms_max: 1_000,
        budget: Some(RETRY_BUDGET_DEFAULT),
        breaker: Some(BREAKER_DEFAULT),
        rate_limit: None,
    };
    let Some(raw) = raw else { return Ok(policy) };
    policy.breaker = client_breaker(ctx, raw)?;
    policy.budget = client_retry_budget(ctx, raw)?;
    if let Some(limit) = &raw.rate_limit {
        let l = limit.get_ref();
        policy.rate_limit = Some(ClientRateLimit {
            burst: ctx.int(&limits::CLIENT_RATE_LIMIT_BURST, &l.burst)?,
            per_second: ctx.int(&limits::CLIENT_RATE_LIMIT_PER_SECOND, &l.per_second)?,
            adaptive: l.adaptive.as_ref().is_none_or(|a| *a.get_ref()),
        });
    }
    if let Some(v) = &raw.timeout_ms {
        policy.timeout_ms_per_attempt = ctx.int(&limits::TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.deadline_ms {
        policy.deadline_ms = ctx.int(&limits::DEADLINE_MS, v)?;
    }
    if let Some(v) = &raw.attempts {
        policy.attempt_count_max = ctx.int(&limits::ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.backoff_ms_base {
        policy.backoff_ms_base = ctx.int(&limits::BACKOFF_MS_BASE, v)?;
    }
    if let Some(v) = &raw.backoff_ms_max {
        policy.backoff_ms_max = ctx.int(&limits::BACKOFF_MS_MAX, v)?;
    }
    policy.validate().map_err(|message| {
        // Point at the key the complaint is about, or the other one of its pair when only
        // that one was written (the first is then at its default).
        let span = if message.starts_with("backoff") {
            first_span([raw.backoff_ms_base.as_ref(), raw.backoff_ms_max.as_ref()])
        } else {
            first_span([raw.deadline_ms.as_ref(), raw.timeout_ms.as_ref()])
        };
        ScenarioError::at(ctx.file, ctx.source, span, format!("[client]: {message}"))
    })?;
    Ok(policy)
}

/// `[client]`'s circuit breaker: the defaults with what the table changes, or none.
fn client_breaker(ctx: &Ctx<'_>, raw: &raw::RawClient) -> Result<Option<Breaker>, ScenarioError> {
    let mut breaker = BREAKER_DEFAULT;
    if let Some(v) = &raw.breaker_failures {
        breaker.failures_to_open = ctx.int(&limits::BREAKER_FAILURES, v)?;
    }
    if let Some(v) = &raw.breaker_cooldown_ms {
        breaker.cooldown_ms = ctx.int(&limits::BREAKER_COOLDOWN_MS, v)?;
    }
    let breaker_off = raw.breaker.as_ref().is_some_and(|on| !*on.get_ref());
    if breaker_off && let Some(v) = raw.breaker_failures.as_ref() {
        return Err(ctx.error(v, "`breaker_failures` is set but `breaker = false`"));
    }
    Ok((!breaker_off).then_some(breaker))
}

/// `[client]`'s retry budget: the defaults with what the table changes, or none.
fn client_retry_budget(
    ctx: &Ctx<'_>,
    raw: &raw::RawClient,
) -> Result<Option<RetryBudget>, ScenarioError> {
    let mut budget = RETRY_BUDGET_DEFAULT;
    if let Some(v) = &raw.retry_budget_percent {
        budget.percent = ctx.int(&limits::RETRY_BUDGET_PERCENT, v)?;
    }
    if let Some(v) = &raw.retry_budget_reserve {
        budget.reserve = ctx.int(&limits::RETRY_BUDGET_RESERVE, v)?;
    }
    let budget_off = raw.retry_budget.as_ref().is_some_and(|on| !*on.get_ref());
    if budget_off
        && let Some(v) = raw
            .retry_budget_percent
            .as_ref()
            .or(raw.retry_budget_reserve.as_ref())
    {
        return Err(ctx.error(
            v,
            "retry budget settings are set but `retry_budget = false`",
        ));
    }
    Ok((!budget_off).then_some(budget))
}

fn validate_service(
    ctx: &Ctx<'_>,
    raw: Option<&raw::RawService>,
) -> Result<ServiceSettings, ScenarioError> {
    let mut service = ServiceSettings::default();
    let Some(raw) = raw else { return Ok(service) };
    if let Some(limit) = &raw.rate_limit {
        let l = limit.get_ref();
        service.rate_limit = Some(RateLimit {
            burst: ctx.int(&limits::RATE_LIMIT_BURST, &l.burst)?,
            per_second: ctx.int(&limits::RATE_LIMIT_PER_SECOND, &l.per_second)?,
        });
    }
    if let Some(latency) = &raw.store_latency_ms {
        service.store_latency_ms = ctx.pair(&limits::STORE_LATENCY_MS, latency)?;
    }
    if let Some(v) = &raw.carrier_timeout_ms {
        service.carrier.timeout_ms_per_attempt = ctx.int(&limits::CARRIER_TIMEOUT_MS, v)?;
    }
    if let Some(v) = &raw.carrier_deadline_ms {
        service.carrier.deadline_ms = ctx.int(&limits::CARRIER_DEADLINE_MS, v)?;
    }
    if let Some(v) = &raw.carrier_attempts {
        service.carrier.attempt_count_max = ctx.int(&limits::CARRIER_ATTEMPTS, v)?;
    }
    if let Some(v) = &raw.lock_lease_ms {
        service.lock_lease_ms = ctx.int(&limits::LOCK_LEASE_MS, v)?;
    }
    if let Some(name) = &raw.store {
        service.store = ServiceStore::ALL
            .into_iter()
            .find(|store| store.name() == name.get_ref())
            .ok_or_else(|| {
                let names = ServiceStore::ALL.map(ServiceStore::name);
                let error = ctx.error(name, format!("unknown store `{}`", name.get_ref()));
                match error::closest(name.get_ref(), names) {
                    Some(guess) => error.with_hint(format!("did you mean `{guess}`?")),
                    None => error.with_hint(format!("one of: {}", names.join(", "))),
                }
            })?;
    }
    if let Some(v) = &raw.idempotency_retention_ms {
        service.idempotency_retention_ms = Some(ctx.int(&limits::IDEMPOTENCY_RETENTION_MS, v)?);
    }
    if let Some(v) = &raw.idempotency_sweep_batch {
        service.idempotency_sweep_batch = Some(ctx.int(&limits::IDEMPOTENCY_SWEEP_BATCH, v)?);
    }
    service.probe_misuse = raw.probe_misuse.as_ref().is_some_and(|v| *v.get_ref());
    service.probe_retention = raw.probe_retention.as_ref().is_some_and(|v| *v.get_ref());
    service.carrier.validate().map_err(|message| {
        let span = first_span([
            raw.carrier_deadline_ms.as_ref(),
            raw.carrier_timeout_ms.as_ref(),
        ]);
        ScenarioError::at(
            ctx.file,
            ctx.source,
            span,
            format!("[service] carrier policy: {message}"),
        )
    })?;
    if service.lock_lease_ms <= service.carrier.deadline_ms {
        let span = first_span([raw.lock_lease_ms.as_ref(), raw.carrier_deadline_ms.as_ref()]);
        return Err(ScenarioError::at(
            ctx.file,
            ctx.source,
            span,
            format!(
                "`lock_lease_ms` ({}) must exceed the carrier deadline ({} ms)",
                service.lock_lease_ms, service.carrier.deadline_ms
            ),
        )
        .with_hint(
            "otherwise a live request's claim expires while it still waits on the carrier",
        ));
    }
    Ok(service)
}

/// The span of the first value written, for a complaint about a relation between keys.
/// One of them is always written: the defaults satisfy every relation.
fn first_span<const N: usize>(values: [Option<&Spanned<u64>>; N]) -> std::ops::Range<usize> {
    values
        .into_iter()
        .flatten()
        .next()
        .map_or(0..0, Spanned::span)
}

#[cfg(test)]
mod secret_rotation_tests {
    use super::Scenario;

    const BASE: &str = "[webhooks]\noutbound = true\n\n[credentials]\nrotate_keys_at_ms = 300\nretire_old_keys_at_ms = 15000\n";

    #[test]
    fn a_secret_rotation_is_parsed_strictly_and_written_back() {
        // Proves the three times are read in order, written back by `to_toml`, and refused
        // with a location when out of order, incomplete, or without outbound webhooks.
        let good = format!(
            "{BASE}rotate_secrets_at_ms = 200\nreceiver_switches_at_ms = 1500\nretire_old_secrets_at_ms = 20000\n"
        );
        let scenario = Scenario::parse("s.toml", "s", &good).expect("valid");
        let secrets = scenario
            .credentials
            .and_then(|c| c.secrets)
            .expect("parsed");
        assert_eq!(
            (
                secrets.rotate_at_ms,
                secrets.receiver_switches_at_ms,
                secrets.retire_old_at_ms
            ),
            (200, 1_500, 20_000)
        );
        let again = Scenario::parse("s.toml", "s", &scenario.to_toml()).expect("written back");
        assert_eq!(again.credentials, scenario.credentials);

        let late = good.replace(
            "receiver_switches_at_ms = 1500",
            "receiver_switches_at_ms = 100",
        );
        let error = Scenario::parse("s.toml", "s", &late)
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:8:27"), "{error}");
        assert!(
            error.contains("not after the rotation at 200 ms"),
            "{error}"
        );

        let partial = format!("{BASE}rotate_secrets_at_ms = 200\n");
        let error = Scenario::parse("s.toml", "s", &partial)
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:7:"), "{error}");
        assert!(error.contains("needs all three"), "{error}");

        let no_outbound = good.replace("outbound = true", "outbound = false");
        let error = Scenario::parse("s.toml", "s", &no_outbound)
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs outbound webhooks"), "{error}");
    }
}

#[cfg(test)]
mod service_store_tests {
    use super::{Scenario, ServiceStore};

    #[test]
    fn the_service_store_is_parsed_strictly_and_written_back() {
        // Proves `[service] store` takes exactly the two names, defaults to memory, is
        // written back by `to_toml` (a repro of a SQLite run replays on SQLite), and that a
        // misspelt or mistyped value is refused at its line and column with a hint.
        let memory = Scenario::parse("s.toml", "s", "[hosts]\nclients = 1\n").expect("valid");
        assert_eq!(memory.service.store, ServiceStore::Memory);
        assert!(
            !memory.to_toml().contains("store ="),
            "the default is not written"
        );

        let sqlite =
            Scenario::parse("s.toml", "s", "[service]\nstore = \"sqlite\"\n").expect("valid");
        assert_eq!(sqlite.service.store, ServiceStore::Sqlite);
        let again = Scenario::parse("s.toml", "s", &sqlite.to_toml()).expect("written back");
        assert_eq!(again.service, sqlite.service);

        let error = Scenario::parse("s.toml", "s", "[service]\nstore = \"sqlit\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:2:9"), "{error}");
        assert!(error.contains("unknown store `sqlit`"), "{error}");
        assert!(error.contains("did you mean `sqlite`?"), "{error}");

        let error = Scenario::parse("s.toml", "s", "[service]\nstore = \"postgres\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("one of: memory, sqlite"), "{error}");

        let error = Scenario::parse("s.toml", "s", "[service]\nstore = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("s.toml:2:"), "{error}");
    }
}
