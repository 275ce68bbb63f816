//! `ballast simulate`: loads the config as `ballast run` does, turns the named
//! `[[autoscalegroup]]` into the engine's policy with the same conversion the engine uses
//! ([`crate::autoscale::policy`]), replays the trace through [`autoscaler::simulate`] and prints
//! one JSON event per line; `--chart` also writes the run as an SVG.

use std::io::{self, Write};

use anyhow::{Context, bail};
use autoscaler::simulate::{self, Options, Trace};

use crate::autoscale::policy::policy;
use crate::cli::SimulateArgs;
use crate::config::AppConfig;

pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let path = &args.config;
    let config = AppConfig::load(path)
        .with_context(|| format!("cannot simulate with {}", path.display()))?;
    let groups = &config.proxy.autoscale_groups;
    let Some(group) = groups.iter().find(|g| g.name == args.group) else {
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        if names.is_empty() {
            bail!("{} has no [[autoscalegroup]]", path.display());
        }
        bail!(
            "{} has no autoscalegroup `{}`; its groups: {}",
            path.display(),
            args.group,
            names.join(", ")
        );
    };
    let policy = policy(group);
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read the trace {}", args.trace.display()))?;
    let trace =
        Trace::parse(&text, &policy).with_context(|| format!("trace {}", args.trace.display()))?;
    let options = Options {
        provision_delay: args.provision_delay,
        deprovision_delay: args.deprovision_delay,
    };
    let events = simulate::run(&policy, &trace, options);

    if let Some(chart) = &args.chart {
        let title = format!(
            "autoscalegroup {}: {} replayed",
            group.name,
            args.trace.display()
        );
        let svg = simulate::chart::svg(&title, &policy, &trace, &events)?;
        std::fs::write(chart, svg)
            .with_context(|| format!("cannot write the chart {}", chart.display()))?;
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let printed = events
        .iter()
        .try_for_each(|event| writeln!(out, "{event}"))
        .and_then(|()| out.flush());
    match printed {
        // A reader that stopped early (`| head`) is not an error.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_default_delays_are_the_libraries() {
        let cli = Cli::parse_from([
            "ballast", "simulate", "--config", "c.toml", "--group", "g", "--trace", "t.csv",
        ]);
        let Command::Simulate(args) = cli.command else {
            panic!("not simulate");
        };
        let defaults = autoscaler::simulate::Options::default();
        assert_eq!(args.provision_delay, defaults.provision_delay);
        assert_eq!(args.deprovision_delay, defaults.deprovision_delay);
    }
}
