//! The router layer: longest prefix first, custom routes before system routes of the same
//! length. A route's target is recorded as metadata for NAT and the overlay; a drop target
//! denies. Outbound without a route is denied; inbound is allowed (the overlay and gateway
//! already checked who it is for). Multicast destinations are always allowed out (the
//! overlay's M2P decides where they go).

use super::meta::RouterAction;
use crate::api::{RouterClass, RouterTarget};
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec;
use opte::engine::action::Action;
use opte::engine::predicate::{Ipv4AddrMatch, Ipv6AddrMatch, Predicate};
use opte::engine::rule::Rule;
use opte_api::{IpAddr, IpCidr, Ipv4Cidr, Ipv6Cidr, OpteError};

pub const NAME: &str = "router";

/// The built-in rule letting multicast out.
pub fn multicast_rule() -> Rule {
    let mut r = Rule::new(0, Action::Allow);
    r.add_predicate(Predicate::Any(vec![
        Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(Ipv4Cidr::MCAST)]),
        Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(Ipv6Cidr::MCAST)]),
    ]));
    r
}

/// Longest prefix first; custom before system at the same length.
pub fn priority(dest: IpCidr, class: RouterClass) -> u16 {
    let max: u16 = match dest {
        IpCidr::Ip4(_) => 32,
        IpCidr::Ip6(_) => 128,
    };
    let class_bit = match class {
        RouterClass::Custom => 0,
        RouterClass::System => 1,
    };
    (((max - u16::from(dest.prefix_len())) << 1) | class_bit) + 10
}

/// The rule of one route, or `InvalidRouterEntry` for a multicast destination or a target
/// of the other IP family.
pub fn make_rule(
    dest: IpCidr,
    target: RouterTarget,
    class: RouterClass,
) -> Result<Rule, OpteError> {
    let invalid = || OpteError::InvalidRouterEntry {
        dest: dest.to_string(),
        target: target.to_string(),
    };
    if dest.ip().is_multicast() {
        return Err(invalid());
    }
    let same_family = matches!(
        (dest, target),
        (_, RouterTarget::Drop | RouterTarget::InternetGateway(_))
            | (IpCidr::Ip4(_), RouterTarget::Ip(IpAddr::Ip4(_)))
            | (IpCidr::Ip6(_), RouterTarget::Ip(IpAddr::Ip6(_)))
            | (IpCidr::Ip4(_), RouterTarget::VpcSubnet(IpCidr::Ip4(_)))
            | (IpCidr::Ip6(_), RouterTarget::VpcSubnet(IpCidr::Ip6(_)))
    );
    if !same_family {
        return Err(invalid());
    }
    let action = match target {
        RouterTarget::Drop => Action::Deny,
        t => Action::Meta(Arc::new(RouterAction::new(t))),
    };
    let mut r = Rule::new(priority(dest, class), action);
    r.add_predicate(match dest {
        IpCidr::Ip4(c) => Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(c)]),
        IpCidr::Ip6(c) => Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(c)]),
    });
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_order_longest_prefix_then_custom() {
        let c = |s: &str| s.parse::<IpCidr>().unwrap();
        assert_eq!(priority(c("10.0.0.1/32"), RouterClass::Custom), 10);
        assert_eq!(priority(c("10.0.0.1/32"), RouterClass::System), 11);
        assert_eq!(priority(c("0.0.0.0/0"), RouterClass::System), 75);
        assert_eq!(priority(c("::/0"), RouterClass::System), 267);
        assert!(
            priority(c("10.0.0.0/24"), RouterClass::System)
                < priority(c("10.0.0.0/16"), RouterClass::Custom)
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let c = |s: &str| s.parse::<IpCidr>().unwrap();
        let t = |s: &str| s.parse::<RouterTarget>().unwrap();
        let rc = RouterClass::System;
        assert!(make_rule(c("224.0.0.0/4"), t("ig"), rc).is_err());
        assert!(make_rule(c("ff04::/16"), t("drop"), rc).is_err());
        assert!(make_rule(c("10.0.0.0/8"), t("ip6=fd00::1"), rc).is_err());
        assert!(make_rule(c("fd00::/64"), t("sub4=10.0.0.0/8"), rc).is_err());
        assert!(make_rule(c("fd00::/64"), t("ig"), rc).is_ok());
        assert!(make_rule(c("10.0.0.0/8"), t("drop"), rc).is_ok());
        assert!(matches!(
            make_rule(c("10.0.0.0/8"), t("ip6=fd00::1"), rc),
            Err(OpteError::InvalidRouterEntry { .. })
        ));
    }
}
