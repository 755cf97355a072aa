//! Names of the simulated hosts and the selectors scenario files use to point at them.
//!
//! The topology is fixed: one `service`, one `carrier`, clients `client-0` .. `client-N-1`,
//! and the `settler`, a client added after the workload to resolve ambiguous operations.

use std::fmt;

/// The reference service's host name.
pub const SERVICE: &str = "service";
/// The carrier's host name.
pub const CARRIER: &str = "carrier";
/// The host that resolves ambiguous operations after the faults heal.
pub const SETTLER: &str = "settler";
/// The merchants' webhook receiver (scenarios with outbound webhooks).
pub const RECEIVER: &str = "receiver";
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
    /// `service`
    Service,
    /// `carrier`
    Carrier,
    /// `receiver`
    Receiver,
    /// `clients` or `client-*`: every client.
    Clients,
    /// `client-N`
    Client(u32),
}

impl HostSel {
    /// Parses a selector, checking that it names hosts that exist.
    ///
    /// # Errors
    /// A sentence saying what exists, when the selector names nothing.
    pub fn parse(text: &str, clients: u32) -> Result<HostSel, String> {
        let selector = match text {
            SERVICE => HostSel::Service,
            CARRIER => HostSel::Carrier,
            RECEIVER => HostSel::Receiver,
            "clients" | "client-*" => HostSel::Clients,
            other => {
                let index = other
                    .strip_prefix("client-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .ok_or_else(|| {
                        format!(
                            "unknown host `{other}`: hosts are `service`, `carrier`, `receiver`, \
                             `clients` (or `client-*`) and `client-0` .. `client-{}`",
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
            HostSel::Carrier => vec![CARRIER.to_string()],
            HostSel::Receiver => vec![RECEIVER.to_string()],
            HostSel::Clients => (0..clients).map(client_name).collect(),
            HostSel::Client(index) => vec![client_name(*index)],
        }
    }

    /// Whether the selection includes host `name`.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        match self {
            HostSel::Service => name == SERVICE,
            HostSel::Carrier => name == CARRIER,
            HostSel::Receiver => name == RECEIVER,
            HostSel::Clients => name.starts_with("client-"),
            HostSel::Client(index) => name == client_name(*index),
        }
    }

    /// Whether the selection is a server host (where HTTP faults and crashes apply).
    #[must_use]
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            HostSel::Service | HostSel::Carrier | HostSel::Receiver
        )
    }
}

impl fmt::Display for HostSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSel::Service => f.write_str(SERVICE),
            HostSel::Carrier => f.write_str(CARRIER),
            HostSel::Receiver => f.write_str(RECEIVER),
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
        assert_eq!(HostSel::parse("service", 2), Ok(HostSel::Service));
        assert_eq!(HostSel::parse("client-*", 2), Ok(HostSel::Clients));
        assert_eq!(HostSel::parse("client-1", 2), Ok(HostSel::Client(1)));
        let error = HostSel::parse("client-2", 2).unwrap_err();
        assert!(error.contains("2 client(s)"), "{error}");
        assert!(HostSel::parse("database", 2).is_err());
        assert_eq!(
            HostSel::Clients.names(3),
            ["client-0", "client-1", "client-2"]
        );
        assert!(HostSel::Clients.contains("client-7"));
        assert!(!HostSel::Service.contains("carrier"));
    }
}
