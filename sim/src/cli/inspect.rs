//! `shipsim check` and `shipsim list`: validate scenarios, list what exists; run nothing.

use std::path::PathBuf;

use clap::Args;
use shipsim_system::bugs::Bug;

use crate::fault::CATALOGUE;
use crate::oracle::OracleKind;

use super::*;

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// Scenario files or directories.
    #[arg(required_unless_present = "api")]
    paths: Vec<PathBuf>,
    /// A target description: check it (and the downstream specs it names), and the
    /// scenarios against it.
    #[arg(long)]
    api: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub(super) struct ListArgs {
    /// Scenario names only, one per line.
    #[arg(long)]
    scenarios: bool,
    /// Fault kinds only, one per line.
    #[arg(long)]
    faults: bool,
    /// Oracles only, one per line.
    #[arg(long)]
    oracles: bool,
    /// Planted bugs only, one per line.
    #[arg(long)]
    bugs: bool,
    /// Dangerous moments (for `reach = [...]`) only, one per line.
    #[arg(long)]
    moments: bool,
    /// Where scenarios live.
    #[arg(long, default_value = "scenarios")]
    dir: PathBuf,
}

pub(super) fn check(args: &CheckArgs) -> Result<(), Failure> {
    let topology = match &args.api {
        None => crate::scenario::Topology::reference(),
        Some(path) => {
            let description = load_description(path)?;
            let samples = description
                .samples(0)
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
            if description.kinds().is_empty() {
                outln!(
                    "ok  {}  ({}: a webhook receiver only)",
                    description.name,
                    path.display()
                );
            } else {
                outln!(
                    "ok  {}  ({}: {} kind(s), {} downstream(s); operations {})",
                    description.name,
                    path.display(),
                    description.kinds().len(),
                    description.downstreams.len(),
                    description.topology().operations.join(", ")
                );
            }
            for sample in samples {
                outln!("    {sample}");
            }
            if let Some(receiver) = &description.receiver {
                outln!(
                    "    receiver: events {}, signed {}, read back {} (sequence {}, applied {}); test it with `shipsim live-receiver`",
                    receiver.events.label(),
                    receiver.scheme,
                    receiver.read_back.label(),
                    receiver.sequence,
                    receiver.applied
                );
            }
            description.topology()
        }
    };
    let scenarios = if args.paths.is_empty() {
        Vec::new()
    } else {
        load_scenarios_for(&args.paths, &topology)?
    };
    for scenario in &scenarios {
        outln!(
            "ok  {}  ({}: {} fault(s), {} client(s), seeds {})",
            scenario.name,
            scenario.path,
            scenario.faults.len(),
            scenario.hosts.clients,
            scenario.seeds
        );
        let cost = scenario.cost();
        if cost.is_heavy() {
            outln!("    heavy: {}", cost.describe());
        }
    }
    Ok(())
}

pub(super) fn list(args: &ListArgs) -> Result<(), Failure> {
    if args.faults {
        CATALOGUE.iter().for_each(|k| outln!("{}", k.name));
        return Ok(());
    }
    if args.oracles {
        OracleKind::ALL.iter().for_each(|o| outln!("{}", o.name()));
        return Ok(());
    }
    if args.bugs {
        Bug::ALL.iter().for_each(|b| outln!("{}", b.name()));
        return Ok(());
    }
    if args.moments {
        crate::reach::Moment::ALL
            .iter()
            .for_each(|m| outln!("{}", m.name()));
        return Ok(());
    }
    let scenarios = load_scenarios(std::slice::from_ref(&args.dir))?;
    if args.scenarios {
        scenarios.iter().for_each(|s| outln!("{}", s.name));
        return Ok(());
    }
    outln!("Scenarios ({}):", args.dir.display());
    for scenario in &scenarios {
        outln!("  {:<28} {}", scenario.name, scenario.description);
    }
    outln!("\nFault kinds (every kind also takes start_ms, end_ms | duration_ms, stream):");
    for param in crate::fault::WINDOW_PARAMS {
        if let Some(limit) = &param.limit {
            outln!("      {}: {}; {limit}", param.name, param.doc);
        }
    }
    for kind in CATALOGUE {
        outln!("  {:<20} [{}] {}", kind.name, kind.family, kind.summary);
        for param in kind.params {
            let required = if param.required { " (required)" } else { "" };
            match &param.limit {
                Some(limit) => outln!("      {}{required}: {}; {limit}", param.name, param.doc),
                None => outln!("      {}{required}: {}", param.name, param.doc),
            }
        }
    }
    outln!("\nOracles:");
    for oracle in OracleKind::ALL {
        outln!("  {:<20} {}", oracle.name(), oracle.describe());
    }
    outln!(
        "\nDangerous moments (counted in every report; a scenario requires some with reach = [...]):"
    );
    for moment in crate::reach::Moment::ALL {
        outln!("  {:<30} {}", moment.name(), moment.describe());
    }
    outln!("\nPlanted bugs (--bug NAME):");
    for bug in Bug::ALL {
        outln!("  {:<28} {}", bug.name(), bug.describe());
    }
    Ok(())
}
