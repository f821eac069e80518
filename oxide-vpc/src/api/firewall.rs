//! The firewall rule model and its text form:
//!
//! `dir=in|out action=allow|deny priority=N [hosts=any|ip=A|subnet=C|vni=N]
//! [protocol=any|arp|tcp|udp|icmp[:T[,C[-C]]]|icmp6[:…]|N] [port=any|P[,P…]]`
//!
//! Words are space separated and case-insensitive; `dir`, `action` and `priority` are
//! required, the rest default to `any`. `Display` prints the same form, so the two
//! round-trip. A parse error names the word that was wrong and why.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;
use core::str::FromStr;
use opte_api::{Direction, IpAddr, IpCidr, Protocol, Vni};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirewallAction {
    Allow,
    Deny,
}

/// The remote end a rule is about: the destination going out, the source coming in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Address {
    Any,
    Subnet(IpCidr),
    Ip(IpAddr),
    /// Any guest of that VPC (traffic from outside the rack never matches).
    Vni(Vni),
}

/// An ICMP type and optionally a range of codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpFilter {
    pub ty: u8,
    pub codes: Option<RangeInclusive<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtoFilter {
    Any,
    Arp,
    Tcp,
    Udp,
    Icmp(Option<IcmpFilter>),
    Icmpv6(Option<IcmpFilter>),
    Other(Protocol),
}

/// Destination ports (TCP/UDP); never port 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ports {
    Any,
    PortList(Vec<u16>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub hosts: Address,
    pub protocol: ProtoFilter,
    pub ports: Ports,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            hosts: Address::Any,
            protocol: ProtoFilter::Any,
            ports: Ports::Any,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    pub direction: Direction,
    pub filters: Filters,
    pub action: FirewallAction,
    pub priority: u16,
}

impl FirewallRule {
    /// The default inbound rules of a VPC's guests (RFD 63), as the control plane
    /// installs them: from any guest of VPC `vni`, SSH, and ICMP, at priority 65534.
    pub fn vpc_defaults(vni: Vni) -> Vec<Self> {
        let allow = |hosts, protocol, ports| Self {
            direction: Direction::In,
            filters: Filters {
                hosts,
                protocol,
                ports,
            },
            action: FirewallAction::Allow,
            priority: 65534,
        };
        alloc::vec![
            allow(Address::Vni(vni), ProtoFilter::Any, Ports::Any),
            allow(
                Address::Any,
                ProtoFilter::Tcp,
                Ports::PortList(alloc::vec![22])
            ),
            allow(Address::Any, ProtoFilter::Icmp(None), Ports::Any),
        ]
    }
}

/// What was wrong with a firewall rule's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FwRuleParseError {
    #[error("bad word {word:?} in firewall rule: {reason}")]
    BadWord { word: String, reason: String },
    #[error("firewall rule lacks {0}=")]
    Missing(&'static str),
}

fn bad(word: &str, reason: impl Into<String>) -> FwRuleParseError {
    FwRuleParseError::BadWord {
        word: word.into(),
        reason: reason.into(),
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Subnet(c) => write!(f, "subnet={c}"),
            Self::Ip(a) => write!(f, "ip={a}"),
            Self::Vni(v) => write!(f, "vni={}", v.as_u32()),
        }
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            None if s == "any" => Ok(Self::Any),
            Some(("ip", a)) => a.parse().map(Self::Ip).map_err(|e| e.to_string()),
            Some(("subnet", c)) => c.parse().map(Self::Subnet).map_err(|e| e.to_string()),
            Some(("vni", v)) => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| alloc::format!("VNI {v:?} is not a decimal number"))?;
                Vni::new(n)
                    .map(Self::Vni)
                    .ok_or_else(|| alloc::format!("VNI {n} exceeds {}", Vni::MAX))
            }
            _ => Err("expected any, ip=ADDR, subnet=CIDR or vni=N".into()),
        }
    }
}

impl fmt::Display for IcmpFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ty)?;
        match &self.codes {
            None => Ok(()),
            Some(r) if r.start() == r.end() => write!(f, ",{}", r.start()),
            Some(r) => write!(f, ",{}-{}", r.start(), r.end()),
        }
    }
}

impl FromStr for IcmpFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str, what: &str| {
            t.parse::<u8>()
                .map_err(|_| alloc::format!("ICMP {what} {t:?} is not a number 0-255"))
        };
        let (ty, codes) = match s.split_once(',') {
            None => (num(s, "type")?, None),
            Some((t, c)) => {
                let r = match c.split_once('-') {
                    None => {
                        let c = num(c, "code")?;
                        c..=c
                    }
                    Some((a, b)) => num(a, "code")?..=num(b, "code")?,
                };
                if r.start() > r.end() {
                    return Err(alloc::format!("ICMP code range {c:?} is empty"));
                }
                (num(t, "type")?, Some(r))
            }
        };
        Ok(Self { ty, codes })
    }
}

impl fmt::Display for ProtoFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Arp => f.write_str("arp"),
            Self::Tcp => f.write_str("tcp"),
            Self::Udp => f.write_str("udp"),
            Self::Icmp(None) => f.write_str("icmp"),
            Self::Icmp(Some(i)) => write!(f, "icmp:{i}"),
            Self::Icmpv6(None) => f.write_str("icmp6"),
            Self::Icmpv6(Some(i)) => write!(f, "icmp6:{i}"),
            Self::Other(p) => write!(f, "{}", u8::from(*p)),
        }
    }
}

impl FromStr for ProtoFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, filt) = match s.split_once(':') {
            Some((n, f)) => (n, Some(f.parse::<IcmpFilter>()?)),
            None => (s, None),
        };
        match (name, filt) {
            ("any", None) => Ok(Self::Any),
            ("arp", None) => Ok(Self::Arp),
            ("tcp", None) => Ok(Self::Tcp),
            ("udp", None) => Ok(Self::Udp),
            ("icmp", f) => Ok(Self::Icmp(f)),
            ("icmp6", f) => Ok(Self::Icmpv6(f)),
            (n, None) => match n.parse::<u8>() {
                Ok(6) => Ok(Self::Tcp),
                Ok(17) => Ok(Self::Udp),
                Ok(p) => Ok(Self::Other(Protocol::from(p))),
                Err(_) => Err(
                    "expected any, arp, tcp, udp, icmp[:T[,C[-C]]], icmp6[:…] or a protocol number"
                        .into(),
                ),
            },
            (_, Some(_)) => Err("only icmp and icmp6 take a :TYPE filter".into()),
        }
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::PortList(l) => {
                for (i, p) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Ports {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "any" || s == "any," {
            return Ok(Self::Any);
        }
        let mut l = Vec::new();
        for p in s.split(',') {
            match p.parse::<u16>() {
                Ok(0) => return Err("port 0 is not a valid destination port".into()),
                Ok(n) => l.push(n),
                Err(_) => return Err(alloc::format!("port {p:?} is not a number 1-65535")),
            }
        }
        Ok(Self::PortList(l))
    }
}

impl fmt::Display for FirewallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::In => "in",
            Direction::Out => "out",
        };
        let action = match self.action {
            FirewallAction::Allow => "allow",
            FirewallAction::Deny => "deny",
        };
        write!(f, "dir={dir} action={action} priority={}", self.priority)?;
        let fl = &self.filters;
        if fl.hosts != Address::Any {
            write!(f, " hosts={}", fl.hosts)?;
        }
        if fl.protocol != ProtoFilter::Any {
            write!(f, " protocol={}", fl.protocol)?;
        }
        if fl.ports != Ports::Any {
            write!(f, " port={}", fl.ports)?;
        }
        Ok(())
    }
}

impl FromStr for FirewallRule {
    type Err = FwRuleParseError;
    fn from_str(s: &str) -> Result<Self, FwRuleParseError> {
        let lower = s.to_ascii_lowercase();
        let (mut dir, mut action, mut priority) = (None, None, None);
        let mut filters = Filters::default();
        let mut seen: Vec<&str> = Vec::new();
        for word in lower.split_ascii_whitespace() {
            let Some((key, val)) = word.split_once('=') else {
                return Err(bad(word, "expected KEY=VALUE"));
            };
            if seen.contains(&key) {
                return Err(bad(word, alloc::format!("{key}= given twice")));
            }
            seen.push(key);
            match key {
                "dir" => {
                    dir = Some(match val {
                        "in" => Direction::In,
                        "out" => Direction::Out,
                        _ => return Err(bad(word, "expected dir=in or dir=out")),
                    })
                }
                "action" => {
                    action = Some(match val {
                        "allow" => FirewallAction::Allow,
                        "deny" => FirewallAction::Deny,
                        _ => return Err(bad(word, "expected action=allow or action=deny")),
                    })
                }
                "priority" => {
                    priority = Some(
                        val.parse::<u16>()
                            .map_err(|_| bad(word, "priority must be a number 0-65535"))?,
                    )
                }
                "hosts" => filters.hosts = val.parse().map_err(|e: String| bad(word, e))?,
                "protocol" => filters.protocol = val.parse().map_err(|e: String| bad(word, e))?,
                "port" => filters.ports = val.parse().map_err(|e: String| bad(word, e))?,
                _ => {
                    return Err(bad(
                        word,
                        "unknown key; expected dir, action, priority, hosts, protocol or port",
                    ));
                }
            }
        }
        Ok(Self {
            direction: dir.ok_or(FwRuleParseError::Missing("dir"))?,
            filters,
            action: action.ok_or(FwRuleParseError::Missing("action"))?,
            priority: priority.ok_or(FwRuleParseError::Missing("priority"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn vpc_defaults_are_the_rfd63_rules() {
        let vni = Vni::new(7777u32).unwrap();
        let want: Vec<FirewallRule> = [
            "dir=in action=allow priority=65534 hosts=vni=7777",
            "dir=in action=allow priority=65534 protocol=tcp port=22",
            "dir=in action=allow priority=65534 protocol=icmp",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(FirewallRule::vpc_defaults(vni), want);
    }

    #[test]
    fn ports_from_str_good() {
        assert_eq!("any".parse::<Ports>().unwrap(), Ports::Any);
        assert_eq!("any,".parse::<Ports>().unwrap(), Ports::Any);
        assert_eq!("22".parse::<Ports>().unwrap(), Ports::PortList(vec![22]));
        assert_eq!(
            "22,443,8080".parse::<Ports>().unwrap(),
            Ports::PortList(vec![22, 443, 8080])
        );
    }

    #[test]
    fn ports_from_str_bad() {
        for s in ["0", "", "22,", "x", "65536", "22,,80", "-1"] {
            assert!(s.parse::<Ports>().is_err(), "{s}");
        }
    }

    #[test]
    fn parse_good_and_bad_address() {
        assert_eq!("any".parse::<Address>().unwrap(), Address::Any);
        assert!(matches!(
            "ip=10.0.0.1".parse::<Address>().unwrap(),
            Address::Ip(_)
        ));
        assert!(matches!(
            "subnet=fd00::/64".parse::<Address>().unwrap(),
            Address::Subnet(IpCidr::Ip6(_))
        ));
        assert_eq!(
            "vni=7".parse::<Address>().unwrap(),
            Address::Vni(Vni::new(7).unwrap())
        );
        for s in [
            "ip=10.0.0",
            "subnet=10.0.0.0/33",
            "vni=16777216",
            "vni=x",
            "host=1",
        ] {
            assert!(s.parse::<Address>().is_err(), "{s}");
        }
    }

    #[test]
    fn parse_good_and_bad_proto_filter() {
        assert_eq!("tcp".parse::<ProtoFilter>().unwrap(), ProtoFilter::Tcp);
        assert_eq!(
            "icmp:8".parse::<ProtoFilter>().unwrap(),
            ProtoFilter::Icmp(Some(IcmpFilter { ty: 8, codes: None }))
        );
        assert_eq!(
            "icmp6:1,0-3".parse::<ProtoFilter>().unwrap(),
            ProtoFilter::Icmpv6(Some(IcmpFilter {
                ty: 1,
                codes: Some(0..=3)
            }))
        );
        assert_eq!(
            "47".parse::<ProtoFilter>().unwrap(),
            ProtoFilter::Other(Protocol::from(47))
        );
        for s in ["icmp:300", "icmp:3,5-1", "tcp:1", "gre", "icmp:x"] {
            assert!(s.parse::<ProtoFilter>().is_err(), "{s}");
        }
    }

    #[test]
    fn rules_round_trip_through_text() {
        for s in [
            "dir=in action=allow priority=10 protocol=tcp port=22",
            "dir=out action=deny priority=0 hosts=subnet=10.0.0.0/24 protocol=udp port=53,123",
            "dir=in action=allow priority=65534 hosts=vni=1287581",
            "dir=in action=allow priority=7 hosts=ip=fd00::5 protocol=icmp6:128",
            "dir=in action=allow priority=7 protocol=icmp:3,0-4",
            "dir=out action=allow priority=1 protocol=arp",
        ] {
            let r: FirewallRule = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(r.to_string().parse::<FirewallRule>().unwrap(), r);
        }
        let r: FirewallRule = "DIR=IN ACTION=ALLOW PRIORITY=9 PROTOCOL=TCP"
            .parse()
            .unwrap();
        assert_eq!(r.filters.protocol, ProtoFilter::Tcp);
    }

    #[test]
    fn errors_name_the_bad_word() {
        let e = "dir=in action=allow priority=10 port=0"
            .parse::<FirewallRule>()
            .unwrap_err();
        assert!(matches!(&e, FwRuleParseError::BadWord { word, .. } if word == "port=0"));
        assert!(e.to_string().contains("port 0"), "{e}");
        let e = "dir=sideways action=allow priority=1"
            .parse::<FirewallRule>()
            .unwrap_err();
        assert!(matches!(&e, FwRuleParseError::BadWord { word, .. } if word == "dir=sideways"));
        assert_eq!(
            "dir=in priority=1".parse::<FirewallRule>().unwrap_err(),
            FwRuleParseError::Missing("action")
        );
        assert_eq!(
            "action=deny priority=1"
                .parse::<FirewallRule>()
                .unwrap_err(),
            FwRuleParseError::Missing("dir")
        );
        assert_eq!(
            "dir=in action=deny".parse::<FirewallRule>().unwrap_err(),
            FwRuleParseError::Missing("priority")
        );
        let e = "dir=in action=deny priority=1 priority=2"
            .parse::<FirewallRule>()
            .unwrap_err();
        assert!(e.to_string().contains("twice"));
        let e = "dir=in action=deny priority=1 colour=red"
            .parse::<FirewallRule>()
            .unwrap_err();
        assert!(matches!(&e, FwRuleParseError::BadWord { word, .. } if word == "colour=red"));
    }
}
