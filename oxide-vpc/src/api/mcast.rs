//! Multicast types: replication modes, forwarding next hops and source filters.

use alloc::collections::BTreeSet;
use core::fmt;
use core::str::FromStr;
use opte_api::{IpAddr, Ipv6Addr, ParseError, ParseReason, Vni};
use serde::{Deserialize, Serialize};

/// How a multicast packet is replicated (the 2-bit field of the Oxide Multicast option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Replication {
    External = 0,
    Underlay = 1,
    Both = 2,
    Reserved = 3,
}

impl FromStr for Replication {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "external" => Ok(Self::External),
            "underlay" => Ok(Self::Underlay),
            "both" => Ok(Self::Both),
            _ => Err(ParseError::new(
                "replication",
                s,
                ParseReason::Invalid("expected external, underlay or both"),
            )),
        }
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::External => "external",
            Self::Underlay => "underlay",
            Self::Both => "both",
            Self::Reserved => "reserved",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NextHopV6 {
    pub addr: Ipv6Addr,
    pub vni: Vni,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterMode {
    Include = 0,
    Exclude = 1,
}

/// Which sources a subscriber accepts (RFC 3376 / RFC 3810 style).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceFilter {
    Include(BTreeSet<IpAddr>),
    Exclude(BTreeSet<IpAddr>),
}

impl Default for SourceFilter {
    /// Exclude nothing: any source.
    fn default() -> Self {
        Self::Exclude(BTreeSet::new())
    }
}

impl SourceFilter {
    pub fn allows(&self, src: IpAddr) -> bool {
        match self {
            Self::Include(s) => s.contains(&src),
            Self::Exclude(s) => !s.contains(&src),
        }
    }

    pub fn accepts_any(&self) -> bool {
        matches!(self, Self::Exclude(s) if s.is_empty())
    }

    pub fn mode(&self) -> FilterMode {
        match self {
            Self::Include(_) => FilterMode::Include,
            Self::Exclude(_) => FilterMode::Exclude,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastForwardingNextHop {
    pub next_hop: NextHopV6,
    pub replication: Replication,
    #[serde(default)]
    pub source_filter: SourceFilter,
}
