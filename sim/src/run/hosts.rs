//! Names of the simulated hosts and the selectors scenario files use to point at them.
//!
//! Every run has one `service` (the system under test), the target's other hosts (its
//! downstreams: the reference system's `carrier` and `receiver`, a user's `bank`), clients
//! `client-0` .. `client-N-1`, and the `settler`, a client added after the workload to
//! resolve ambiguous operations.

use std::fmt;

/// The reference service's host name.
pub const SERVICE: &str = "service";
/// The reference carrier's host name.
pub const CARRIER: &str = "carrier";
/// The host that resolves ambiguous operations after the faults heal.
pub const SETTLER: &str = "settler";
/// The reference merchants' webhook receiver (scenarios with outbound webhooks).
pub const RECEIVER: &str = "receiver";
/// The selector of every server host besides `service`.
pub const DOWNSTREAMS: &str = "downstreams";
/// Port every server listens on.
pub const HTTP_PORT: u16 = 80;

/// Host name of client `index`.
#[must_use]
pub fn client_name(index: u32) -> String {
    format!("client-{index}")
}

/// A set of hosts named in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostSel {
    /// `service`: the system under test.
    Service,
    /// Another server host of the target, by name (`carrier`, `bank`).
    Host(String),
    /// `downstreams`: every server host of the target besides `service`.
    Downstreams(Vec<String>),
    /// `clients` or `client-*`: every client.
    Clients,
    /// `client-N`
    Client(u32),
}

impl HostSel {
    /// Parses a selector, checking that it names hosts that exist: `hosts` are the target's
    /// server hosts besides `service`.
    ///
    /// # Errors
    /// A sentence saying what exists, when the selector names nothing.
    pub fn parse(text: &str, clients: u32, hosts: &[String]) -> Result<HostSel, String> {
        let selector = match text {
            SERVICE => HostSel::Service,
            "clients" | "client-*" => HostSel::Clients,
            DOWNSTREAMS if hosts.is_empty() => {
                return Err(
                    "`downstreams` names no host: this target has no hosts besides `service`"
                        .to_string(),
                );
            }
            DOWNSTREAMS => HostSel::Downstreams(hosts.to_vec()),
            other if hosts.iter().any(|h| h == other) => HostSel::Host(other.to_string()),
            other => {
                let index = other
                    .strip_prefix("client-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or_else(|| {
                        let servers: Vec<String> = std::iter::once(SERVICE.to_string())
                            .chain(hosts.iter().cloned())
                            .map(|h| format!("`{h}`"))
                            .collect();
                        format!(
                            "unknown host `{other}`: hosts are {}, `downstreams` (all but `service`), `clients` (or `client-*`) and `client-0` .. `client-{}`",
                            servers.join(", "),
                            clients.saturating_sub(1)
                        )
                    })?;
                if index >= clients {
                    return Err(format!(
                        "host `{other}` does not exist: this scenario has {clients} client(s), \
                         `client-0` .. `client-{}`",
                        clients.saturating_sub(1)
                    ));
                }
                HostSel::Client(index)
            }
        };
        Ok(selector)
    }

    /// The host names selected.
    #[must_use]
    pub fn names(&self, clients: u32) -> Vec<String> {
        match self {
            HostSel::Service => vec![SERVICE.to_string()],
            HostSel::Host(name) => vec![name.clone()],
            HostSel::Downstreams(hosts) => hosts.clone(),
            HostSel::Clients => (0..clients).map(client_name).collect(),
            HostSel::Client(index) => vec![client_name(*index)],
        }
    }

    /// Whether the selection includes host `name`.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        match self {
            HostSel::Service => name == SERVICE,
            HostSel::Host(host) => name == host,
            HostSel::Downstreams(hosts) => hosts.iter().any(|h| h == name),
            HostSel::Clients => name.starts_with("client-"),
            HostSel::Client(index) => name == client_name(*index),
        }
    }

    /// Whether the selection is a server host (where HTTP faults and crashes apply).
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            HostSel::Service | HostSel::Host(_) | HostSel::Downstreams(_)
        )
    }
}

impl fmt::Display for HostSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSel::Service => f.write_str(SERVICE),
            HostSel::Host(name) => f.write_str(name),
            HostSel::Downstreams(_) => f.write_str(DOWNSTREAMS),
            HostSel::Clients => f.write_str("clients"),
            HostSel::Client(index) => write!(f, "client-{index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_check_existence() {
        // Proves selectors resolve to the right hosts and that naming a client beyond the
        // scenario's count is an error that says how many there are.
        let hosts = ["carrier".to_string()];
        assert_eq!(HostSel::parse("service", 2, &hosts), Ok(HostSel::Service));
        assert_eq!(HostSel::parse("client-*", 2, &hosts), Ok(HostSel::Clients));
        assert_eq!(
            HostSel::parse("client-1", 2, &hosts),
            Ok(HostSel::Client(1))
        );
        assert_eq!(
            HostSel::parse("carrier", 2, &hosts),
            Ok(HostSel::Host("carrier".into()))
        );
        let error = HostSel::parse("client-2", 2, &hosts).unwrap_err();
        assert!(error.contains("2 client(s)"), "{error}");
        let error = HostSel::parse("database", 2, &hosts).unwrap_err();
        assert!(error.contains("`service`, `carrier`"), "{error}");
        assert_eq!(
            HostSel::Clients.names(3),
            ["client-0", "client-1", "client-2"]
        );
        assert!(HostSel::Clients.contains("client-7"));
        assert!(!HostSel::Service.contains("carrier"));
    }
}
