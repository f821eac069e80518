//! The firewall layer: stateful, default deny inbound (RFD 63 "implied deny inbound") and
//! stateful allow outbound. The control plane's rules translate one to one into engine
//! rules: allow becomes a stateful allow (the reply is admitted by the flow entry), deny a
//! deny; the rule's priority is kept.

use crate::api::{Address, FirewallAction, FirewallRule, IcmpFilter, Ports, ProtoFilter};
use alloc::vec;
use alloc::vec::Vec;
use opte::engine::action::{Action, meta_keys};
use opte::engine::predicate::{Ipv4AddrMatch, Ipv6AddrMatch, Match, Predicate};
use opte::engine::rule::Rule;
use opte::wire::ether::ETHER_TYPE_ARP;
use opte_api::{Direction, IpAddr, IpCidr, Protocol};

pub const NAME: &str = "firewall";

/// The engine rule for a firewall rule.
pub fn engine_rule(r: &FirewallRule) -> Rule {
    let action = match r.action {
        FirewallAction::Allow => Action::StatefulAllow,
        FirewallAction::Deny => Action::Deny,
    };
    let mut rule = Rule::new(r.priority, action);
    let out = r.direction == Direction::Out;
    match r.filters.hosts {
        Address::Any => {}
        Address::Ip(IpAddr::Ip4(a)) => rule.add_predicate(if out {
            Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Exact(a)])
        } else {
            Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Exact(a)])
        }),
        Address::Ip(IpAddr::Ip6(a)) => rule.add_predicate(if out {
            Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Exact(a)])
        } else {
            Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Exact(a)])
        }),
        Address::Subnet(IpCidr::Ip4(c)) => rule.add_predicate(if out {
            Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(c)])
        } else {
            Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Prefix(c)])
        }),
        Address::Subnet(IpCidr::Ip6(c)) => rule.add_predicate(if out {
            Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(c)])
        } else {
            Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Prefix(c)])
        }),
        Address::Vni(v) => rule.add_predicate(Predicate::Meta(
            meta_keys::VNI.into(),
            super::meta::vni_meta(v),
        )),
    }
    let icmp = |rule: &mut Rule, p: Protocol, f: &Option<IcmpFilter>, v6: bool| {
        rule.add_predicate(Predicate::InnerIpProto(vec![p]));
        if let Some(f) = f {
            let ty = vec![Match::Exact(f.ty)];
            rule.add_predicate(if v6 {
                Predicate::Icmpv6MsgType(ty)
            } else {
                Predicate::IcmpMsgType(ty)
            });
            if let Some(c) = &f.codes {
                let codes = vec![Match::range(c.clone())];
                rule.add_predicate(if v6 {
                    Predicate::Icmpv6MsgCode(codes)
                } else {
                    Predicate::IcmpMsgCode(codes)
                });
            }
        }
    };
    match &r.filters.protocol {
        ProtoFilter::Any => {}
        ProtoFilter::Arp => rule.add_predicate(Predicate::InnerEtherType(vec![ETHER_TYPE_ARP])),
        ProtoFilter::Tcp => rule.add_predicate(Predicate::InnerIpProto(vec![Protocol::TCP])),
        ProtoFilter::Udp => rule.add_predicate(Predicate::InnerIpProto(vec![Protocol::UDP])),
        ProtoFilter::Icmp(f) => icmp(&mut rule, Protocol::ICMP, f, false),
        ProtoFilter::Icmpv6(f) => icmp(&mut rule, Protocol::ICMPv6, f, true),
        ProtoFilter::Other(p) => rule.add_predicate(Predicate::InnerIpProto(vec![*p])),
    }
    if let Ports::PortList(l) = &r.filters.ports {
        rule.add_predicate(Predicate::InnerDstPort(port_ranges(l)));
    }
    rule
}

/// Ports sorted, deduplicated and collapsed into contiguous ranges.
pub fn port_ranges(ports: &[u16]) -> Vec<Match<u16>> {
    let mut p = ports.to_vec();
    p.sort_unstable();
    p.dedup();
    let mut out = Vec::new();
    let mut it = p.into_iter();
    let Some(mut start) = it.next() else {
        return out;
    };
    let mut end = start;
    for x in it {
        if end.checked_add(1) == Some(x) {
            end = x;
        } else {
            out.push(Match::range(start..=end));
            start = x;
            end = x;
        }
    }
    out.push(Match::range(start..=end));
    out
}

/// Engine rules for a whole rule set: (inbound, outbound).
pub fn engine_rules(rules: &[FirewallRule]) -> (Vec<Rule>, Vec<Rule>) {
    let (mut rin, mut rout) = (Vec::new(), Vec::new());
    for r in rules {
        match r.direction {
            Direction::In => rin.push(engine_rule(r)),
            Direction::Out => rout.push(engine_rule(r)),
        }
    }
    (rin, rout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_predicate_simplification() {
        assert_eq!(
            port_ranges(&[80, 22, 81, 82, 443, 22, 65535, 65534]),
            vec![
                Match::Exact(22),
                Match::Range(80..=82),
                Match::Exact(443),
                Match::Range(65534..=65535)
            ]
        );
        assert!(port_ranges(&[]).is_empty());
        let r: FirewallRule = "dir=in action=allow priority=5 protocol=tcp port=1,2,3,10"
            .parse()
            .unwrap();
        let rule = engine_rule(&r);
        assert!(rule.preds.contains(&Predicate::InnerDstPort(vec![
            Match::Range(1..=3),
            Match::Exact(10)
        ])));
        assert!(matches!(rule.action, Action::StatefulAllow));
        assert_eq!(rule.priority, 5);
    }

    #[test]
    fn hosts_match_the_remote_end() {
        let r: FirewallRule = "dir=out action=deny priority=1 hosts=subnet=10.0.0.0/8"
            .parse()
            .unwrap();
        let rule = engine_rule(&r);
        assert!(matches!(rule.preds[0], Predicate::InnerDstIp4(_)));
        assert!(matches!(rule.action, Action::Deny));
        let r: FirewallRule = "dir=in action=allow priority=1 hosts=vni=99"
            .parse()
            .unwrap();
        assert_eq!(
            engine_rule(&r).preds,
            vec![Predicate::Meta("vni".into(), "99".into())]
        );
        let r: FirewallRule = "dir=in action=allow priority=1".parse().unwrap();
        assert!(engine_rule(&r).preds.is_empty());
    }
}
