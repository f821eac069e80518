//! DHCP configuration a port hands its guest (names, DNS servers), the DHCPv4 reply kinds,
//! and the RFC 3442 classless static route encoding.
//!
//! Not the DHCP server: building replies is the engine's hairpin code.

use crate::cidr::Ipv4Cidr;
use crate::dns::DomainName;
use crate::ip::{Ipv4Addr, Ipv6Addr};
use crate::text::{ParseError, ParseReason};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// Per-guest DHCP (v4 and v6) options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpCfg {
    /// The guest's host name.
    pub hostname: Option<DomainName>,
    /// The guest's domain; with `hostname` it forms the FQDN.
    pub host_domain: Option<DomainName>,
    /// Domains the guest's resolver appends to relative names.
    pub domain_search_list: Vec<DomainName>,
    /// IPv4 DNS servers for the guest.
    pub dns4_servers: Vec<Ipv4Addr>,
    /// IPv6 DNS servers for the guest.
    pub dns6_servers: Vec<Ipv6Addr>,
}

impl DhcpCfg {
    /// Append the guest's FQDN in wire form to `buf`: the hostname's labels, then the
    /// domain's, then one root label. Appends nothing without a hostname; a domain without
    /// a hostname is not a name for the guest.
    pub fn push_fqdn(&self, buf: &mut Vec<u8>) {
        let Some(hostname) = &self.hostname else {
            return;
        };
        let host = hostname.encode();
        match &self.host_domain {
            // Drop the hostname's root label; the domain's ends the name.
            Some(domain) => {
                buf.extend_from_slice(host.strip_suffix(&[0]).unwrap_or(host));
                buf.extend_from_slice(domain.encode());
            }
            None => buf.extend_from_slice(host),
        }
    }
}

/// Which DHCPv4 reply a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DhcpReplyType {
    /// DHCPOFFER, answering DHCPDISCOVER.
    Offer,
    /// DHCPACK, answering DHCPREQUEST.
    Ack,
}

impl fmt::Display for DhcpReplyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Offer => "OFFER",
            Self::Ack => "ACK",
        })
    }
}

impl FromStr for DhcpReplyType {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("offer") {
            Ok(Self::Offer)
        } else if s.eq_ignore_ascii_case("ack") {
            Ok(Self::Ack)
        } else {
            Err(ParseError::new(
                "DHCP reply type",
                s,
                ParseReason::Invalid("expected \"OFFER\" or \"ACK\""),
            ))
        }
    }
}

/// A classless static route (DHCP option 121): a subnet and the router to reach it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubnetRouterPair {
    /// The destination subnet.
    pub subnet: Ipv4Cidr,
    /// The next hop.
    pub router: Ipv4Addr,
}

impl SubnetRouterPair {
    /// A route to `subnet` via `router`.
    pub const fn new(subnet: Ipv4Cidr, router: Ipv4Addr) -> Self {
        Self { subnet, router }
    }

    /// The length of the RFC 3442 encoding: one width byte, the significant octets of the
    /// subnet, and the four router octets.
    pub const fn encoded_len(&self) -> usize {
        1 + self.significant_octets() + 4
    }

    /// Append the RFC 3442 encoding to `buf`: the prefix length, then only the octets of the
    /// subnet address the prefix covers (`ceil(len / 8)` of them), then the router.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.push(self.subnet.prefix_len());
        let subnet = self.subnet.ip().bytes();
        buf.extend(subnet.iter().take(self.significant_octets()));
        buf.extend_from_slice(&self.router.bytes());
    }

    const fn significant_octets(&self) -> usize {
        (self.subnet.prefix_len() as usize).div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn dhcp_fqdn() {
        let no_host = DhcpCfg {
            hostname: None,
            ..Default::default()
        };
        let only_host = DhcpCfg {
            hostname: "mybox".parse().ok(),
            ..Default::default()
        };
        let with_domain = DhcpCfg {
            host_domain: "oxide.computer".parse().ok(),
            ..only_host.clone()
        };
        let domain_no_host = DhcpCfg {
            host_domain: "oxide.computer".parse().ok(),
            ..no_host.clone()
        };

        let mut space = alloc::vec![];
        no_host.push_fqdn(&mut space);
        assert!(space.is_empty());

        only_host.push_fqdn(&mut space);
        assert_eq!(space, b"\x05mybox\x00");

        space.clear();
        with_domain.push_fqdn(&mut space);
        assert_eq!(space, b"\x05mybox\x05oxide\x08computer\x00");

        space.clear();
        domain_no_host.push_fqdn(&mut space);
        assert!(space.is_empty());

        // A fully-qualified hostname still joins with the domain cleanly.
        let fq = DhcpCfg {
            hostname: "mybox.".parse().ok(),
            ..with_domain.clone()
        };
        space.clear();
        fq.push_fqdn(&mut space);
        assert_eq!(space, b"\x05mybox\x05oxide\x08computer\x00");
    }

    #[test]
    fn dhcp_cfg_postcard_round_trip() {
        let cfg = DhcpCfg {
            hostname: "mybox".parse().ok(),
            host_domain: "oxide.computer".parse().ok(),
            domain_search_list: alloc::vec!["a.example".parse().unwrap()],
            dns4_servers: alloc::vec![Ipv4Addr::from([8, 8, 8, 8])],
            dns6_servers: alloc::vec!["2001:4860:4860::8888".parse().unwrap()],
        };
        let bytes = postcard::to_allocvec(&cfg).unwrap();
        assert_eq!(postcard::from_bytes::<DhcpCfg>(&bytes), Ok(cfg));
    }

    #[test]
    fn reply_type_text() {
        assert_eq!(DhcpReplyType::Offer.to_string(), "OFFER");
        assert_eq!(DhcpReplyType::Ack.to_string(), "ACK");
        for t in [DhcpReplyType::Offer, DhcpReplyType::Ack] {
            assert_eq!(t.to_string().parse(), Ok(t));
        }
        assert!("nak".parse::<DhcpReplyType>().is_err());
    }

    #[test]
    fn rfc3442_encoding() {
        let enc = |cidr: &str, router: [u8; 4]| {
            let pair = SubnetRouterPair::new(cidr.parse().unwrap(), router.into());
            let mut buf = alloc::vec![];
            pair.encode_into(&mut buf);
            assert_eq!(buf.len(), pair.encoded_len());
            buf
        };
        // The examples of RFC 3442 §1.
        assert_eq!(enc("0.0.0.0/0", [10, 0, 0, 1]), [0, 10, 0, 0, 1]);
        assert_eq!(enc("10.0.0.0/8", [10, 0, 0, 1]), [8, 10, 10, 0, 0, 1]);
        assert_eq!(
            enc("10.17.0.0/16", [10, 0, 0, 1]),
            [16, 10, 17, 10, 0, 0, 1]
        );
        assert_eq!(
            enc("10.27.129.0/24", [10, 0, 0, 1]),
            [24, 10, 27, 129, 10, 0, 0, 1]
        );
        assert_eq!(
            enc("10.229.0.128/25", [10, 0, 0, 1]),
            [25, 10, 229, 0, 128, 10, 0, 0, 1]
        );
        assert_eq!(
            enc("10.198.122.47/32", [10, 0, 0, 1]),
            [32, 10, 198, 122, 47, 10, 0, 0, 1]
        );
    }
}
