//! Router targets and classes, and the UUIDs that name internet gateways. Each has a text
//! form (`FromStr` and `Display` round-trip) used by `opteadm` and by the router's action
//! metadata, which the NAT and overlay layers read back.

use alloc::collections::{BTreeMap, BTreeSet};
use core::fmt;
use core::str::FromStr;
use opte_api::{IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, ParseError, ParseReason};
use serde::{Deserialize, Serialize};

/// Internet gateways are named by UUID (RFC 9562), in hyphenated text form.
pub use uuid::Uuid;

/// External IP → the internet gateways it may be used through.
pub type InternetGatewayMap = BTreeMap<IpAddr, BTreeSet<Uuid>>;

/// Where the router sends a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RouterTarget {
    Drop,
    /// Boundary services, optionally through one named internet gateway.
    InternetGateway(Option<Uuid>),
    /// A guest (an instance acting as a router), by its private address.
    Ip(IpAddr),
    /// A VPC subnet: the destination itself is a guest.
    VpcSubnet(IpCidr),
}

impl RouterTarget {
    /// The value of the `router-target-class` metadata this target sets.
    pub fn class_meta(&self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::InternetGateway(_) => "ig",
            Self::Ip(_) => "ip",
            Self::VpcSubnet(_) => "subnet",
        }
    }
}

impl fmt::Display for RouterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Drop => f.write_str("drop"),
            Self::InternetGateway(None) => f.write_str("ig"),
            Self::InternetGateway(Some(u)) => write!(f, "ig={u}"),
            Self::Ip(IpAddr::Ip4(a)) => write!(f, "ip4={a}"),
            Self::Ip(IpAddr::Ip6(a)) => write!(f, "ip6={a}"),
            Self::VpcSubnet(IpCidr::Ip4(c)) => write!(f, "sub4={c}"),
            Self::VpcSubnet(IpCidr::Ip6(c)) => write!(f, "sub6={c}"),
        }
    }
}

impl FromStr for RouterTarget {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let within = |e: ParseError| ParseError::new("router target", s, e.reason().clone());
        match s.split_once('=') {
            None if s == "drop" => Ok(Self::Drop),
            None if s == "ig" => Ok(Self::InternetGateway(None)),
            Some(("ig", u)) => Ok(Self::InternetGateway(Some(u.parse::<Uuid>().map_err(
                |_| {
                    ParseError::new(
                        "router target",
                        s,
                        ParseReason::Invalid("expected ig=UUID (8-4-4-4-12 hexadecimal digits)"),
                    )
                },
            )?))),
            Some(("ip4", a)) => Ok(Self::Ip(IpAddr::Ip4(
                a.parse::<Ipv4Addr>().map_err(within)?,
            ))),
            Some(("ip6", a)) => Ok(Self::Ip(IpAddr::Ip6(
                a.parse::<Ipv6Addr>().map_err(within)?,
            ))),
            Some(("sub4", c)) => Ok(Self::VpcSubnet(IpCidr::Ip4(
                c.parse::<Ipv4Cidr>().map_err(within)?,
            ))),
            Some(("sub6", c)) => Ok(Self::VpcSubnet(IpCidr::Ip6(
                c.parse::<Ipv6Cidr>().map_err(within)?,
            ))),
            _ => Err(ParseError::new(
                "router target",
                s,
                ParseReason::Invalid("expected drop, ig, ig=UUID, ip4=, ip6=, sub4= or sub6="),
            )),
        }
    }
}

/// Who installed a route: the system (VPC subnets, defaults) or the user (custom routers).
/// At equal prefix length a custom route wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RouterClass {
    System,
    Custom,
}

impl fmt::Display for RouterClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::System => "system",
            Self::Custom => "custom",
        })
    }
}

impl FromStr for RouterClass {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "system" => Ok(Self::System),
            "custom" => Ok(Self::Custom),
            _ => Err(ParseError::new(
                "router class",
                s,
                ParseReason::Invalid("expected system or custom"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn router_targets_round_trip() {
        for s in [
            "drop",
            "ig",
            "ig=0123abcd-0000-4000-8000-00000000beef",
            "ip4=172.30.0.6",
            "ip6=fd00::6",
            "sub4=172.30.4.0/22",
            "sub6=fd00:1::/64",
        ] {
            let t: RouterTarget = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        let e = "ip4=300.1.1.1".parse::<RouterTarget>().unwrap_err();
        assert_eq!(e.what(), "router target");
        assert!("gateway".parse::<RouterTarget>().is_err());
        assert!("ig=xyz".parse::<RouterTarget>().is_err());
        assert_eq!(
            "custom".parse::<RouterClass>().unwrap(),
            RouterClass::Custom
        );
        assert!("Custom".parse::<RouterClass>().is_err());
    }
}
