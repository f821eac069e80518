//! Rules and the per-direction rule table of a layer.
//!
//! Rules are kept in ascending priority (0 first). Among equal priorities a new `Deny` goes
//! before all existing rules of that priority and a new non-`Deny` before the first existing
//! non-`Deny`: deny wins ties, and newer rules of a kind come first.

use super::action::{Action, ActionMeta};
use super::predicate::{DataPredicate, Predicate};
use super::view::PacketView;
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use alloc::string::ToString;
use alloc::vec::Vec;
use opte_api::{RuleDump, RuleId};

#[derive(Clone, Debug)]
pub struct Rule {
    pub priority: u16,
    pub preds: Vec<Predicate>,
    pub data_preds: Vec<DataPredicate>,
    pub action: Action,
}

impl Rule {
    /// A rule seeded with its action's implicit predicates.
    pub fn new(priority: u16, action: Action) -> Self {
        let (preds, data_preds) = action.implicit_preds();
        Self {
            priority,
            preds,
            data_preds,
            action,
        }
    }

    /// A rule with no predicates: it matches every packet.
    pub fn match_any(priority: u16, action: Action) -> Self {
        Self {
            priority,
            preds: Vec::new(),
            data_preds: Vec::new(),
            action,
        }
    }

    pub fn add_predicate(&mut self, p: Predicate) {
        self.preds.push(p);
    }

    pub fn add_predicates(&mut self, ps: impl IntoIterator<Item = Predicate>) {
        self.preds.extend(ps);
    }

    pub fn add_data_predicate(&mut self, p: DataPredicate) {
        self.data_preds.push(p);
    }

    pub fn clear_preds(&mut self) {
        self.preds.clear();
        self.data_preds.clear();
    }

    #[inline]
    pub fn is_match(&self, v: &PacketView, meta: &ActionMeta, pkt: &Packet, m: &InnerMeta) -> bool {
        self.preds.iter().all(|p| p.is_match(v, meta))
            && self.data_preds.iter().all(|p| p.is_match(pkt, m))
    }

    /// Same predicates, in any order (priority and action not compared).
    pub fn same_predicates(&self, other: &Rule) -> bool {
        fn same<T: PartialEq>(a: &[T], b: &[T]) -> bool {
            a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
        }
        same(&self.preds, &other.preds) && same(&self.data_preds, &other.data_preds)
    }

    pub fn dump(&self) -> RuleDump {
        RuleDump {
            priority: self.priority,
            predicates: self.preds.iter().map(ToString::to_string).collect(),
            data_predicates: self.data_preds.iter().map(ToString::to_string).collect(),
            action: self.action.to_string(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RuleEntry {
    pub id: RuleId,
    pub hits: u64,
    pub rule: Rule,
    /// What the rule's predicates require of every packet it matches, checked before them.
    pre: Prefilter,
}

/// The single ether type and IP protocol a rule's predicates demand, if they name one: a
/// packet of another kind skips the rule with two compares instead of a walk of its
/// predicates. It only ever rejects packets the predicates would reject too.
#[derive(Clone, Copy, Debug, Default)]
struct Prefilter {
    ether_type: Option<u16>,
    proto: Option<u8>,
}

impl Prefilter {
    fn of(rule: &Rule) -> Self {
        let mut f = Self::default();
        for p in &rule.preds {
            match p {
                Predicate::InnerEtherType(l) if l.len() == 1 => f.ether_type = l.first().copied(),
                Predicate::InnerIpProto(l) if l.len() == 1 => {
                    f.proto = l.first().map(|&p| u8::from(p));
                }
                _ => {}
            }
        }
        f
    }

    #[inline]
    fn admits(&self, v: &PacketView) -> bool {
        self.ether_type.is_none_or(|e| e == v.ether_type)
            && self.proto.is_none_or(|p| v.ip.is_some_and(|(q, _)| q == p))
    }
}

/// One direction's rules of a layer.
#[derive(Clone, Debug, Default)]
pub struct RuleTable {
    rules: Vec<RuleEntry>,
    next_id: RuleId,
}

impl RuleTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert by priority; returns the new rule's id. Ids are never reused.
    pub fn add(&mut self, rule: Rule) -> RuleId {
        let id = self.next_id;
        self.next_id += 1;
        let deny = rule.action.is_deny();
        let pos = self
            .rules
            .iter()
            .position(|e| {
                e.rule.priority > rule.priority
                    || (e.rule.priority == rule.priority && (deny || !e.rule.action.is_deny()))
            })
            .unwrap_or(self.rules.len());
        let pre = Prefilter::of(&rule);
        self.rules.insert(
            pos,
            RuleEntry {
                id,
                hits: 0,
                rule,
                pre,
            },
        );
        id
    }

    pub fn remove(&mut self, id: RuleId) -> Option<Rule> {
        let pos = self.rules.iter().position(|e| e.id == id)?;
        Some(self.rules.remove(pos).rule)
    }

    /// Replace every rule (ids keep counting up).
    pub fn set(&mut self, rules: Vec<Rule>) {
        self.rules.clear();
        for r in rules {
            self.add(r);
        }
    }

    /// The first rule whose predicates equal `rule`'s.
    pub fn find(&self, rule: &Rule) -> Option<RuleId> {
        self.rules
            .iter()
            .find(|e| e.rule.same_predicates(rule))
            .map(|e| e.id)
    }

    /// The first matching rule, its hit counted.
    pub fn find_match(
        &mut self,
        v: &PacketView,
        meta: &ActionMeta,
        pkt: &Packet,
        m: &InnerMeta,
    ) -> Option<&RuleEntry> {
        let e = self
            .rules
            .iter_mut()
            .find(|e| e.pre.admits(v) && e.rule.is_match(v, meta, pkt, m))?;
        e.hits += 1;
        Some(e)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &RuleEntry> {
        self.rules.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::samples;
    use crate::engine::predicate::{EtherAddrMatch, Ipv4AddrMatch, Match};
    use crate::engine::view::Parsed;
    use crate::packet::parse::parse_guest;
    use alloc::boxed::Box;
    use alloc::vec;
    use opte_api::{Ipv4Addr, Ipv4Cidr, Protocol};

    fn ctx(name: &str) -> (Packet, InnerMeta, PacketView) {
        let s = samples::all().into_iter().find(|s| s.name == name).unwrap();
        let mut pkt = s.packet();
        let m = parse_guest(&mut pkt).unwrap();
        let v = PacketView::new(&pkt, &Parsed::Guest(m));
        (pkt, m, v)
    }

    #[test]
    fn rule_matching_needs_every_predicate() {
        let (pkt, m, v) = ctx("V4-Tcp-OUT-0B");
        let meta = ActionMeta::new();
        let mut r = Rule::new(1, Action::Allow);
        assert!(
            r.is_match(&v, &meta, &pkt, &m),
            "no predicates: matches all"
        );
        r.add_predicate(Predicate::InnerIpProto(vec![Protocol::UDP, Protocol::TCP]));
        let cidr = Ipv4Cidr::new_checked(Ipv4Addr::from_const([172, 30, 0, 0]), 22).unwrap();
        r.add_predicate(Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Prefix(cidr)]));
        r.add_predicate(Predicate::InnerDstPort(vec![Match::range(1..=1023)]));
        assert!(r.is_match(&v, &meta, &pkt, &m));
        r.add_predicate(Predicate::InnerEtherDst(vec![EtherAddrMatch::Multicast]));
        assert!(!r.is_match(&v, &meta, &pkt, &m));
        r.preds.pop();
        r.add_predicate(Predicate::Not(Box::new(Predicate::InnerSrcPort(vec![
            Match::Exact(10010),
        ]))));
        assert!(!r.is_match(&v, &meta, &pkt, &m));
        // IPv6 predicates never match an IPv4 packet.
        let any6 = Predicate::InnerSrcIp6(vec![crate::engine::predicate::Ipv6AddrMatch::Exact(
            samples::GUEST_IP6,
        )]);
        assert!(!any6.is_match(&v, &meta));
        assert!(
            Predicate::Any(vec![
                any6.clone(),
                Predicate::InnerIpProto(vec![Protocol::TCP])
            ])
            .is_match(&v, &meta)
        );
        assert!(
            !Predicate::All(vec![any6, Predicate::InnerIpProto(vec![Protocol::TCP])])
                .is_match(&v, &meta)
        );
    }

    #[test]
    fn meta_predicate_reads_action_metadata() {
        let (_, _, v) = ctx("V4-Udp-OUT-0B");
        let mut meta = ActionMeta::new();
        let p = Predicate::Meta("router-target-class".into(), "ig".into());
        assert!(!p.is_match(&v, &meta));
        meta.insert("router-target-class", "ig");
        assert!(p.is_match(&v, &meta));
    }

    #[test]
    fn ordering_by_priority_with_deny_winning_ties() {
        let mut t = RuleTable::new();
        let a = t.add(Rule::match_any(10, Action::Allow));
        let b = t.add(Rule::match_any(5, Action::Allow));
        let c = t.add(Rule::match_any(10, Action::Deny));
        let d = t.add(Rule::match_any(10, Action::Allow));
        let e = t.add(Rule::match_any(10, Action::Deny));
        let order: Vec<RuleId> = t.iter().map(|r| r.id).collect();
        assert_eq!(order, vec![b, e, c, d, a]);
        // Ids keep counting across a replace.
        t.set(vec![Rule::match_any(1, Action::Allow)]);
        assert_eq!(t.iter().next().unwrap().id, 5);
        assert!(t.remove(5).is_some());
        assert!(t.remove(5).is_none());
    }

    #[test]
    fn find_rule_compares_predicate_sets_in_any_order() {
        let mut t = RuleTable::new();
        let mut r = Rule::new(10, Action::Allow);
        r.add_predicate(Predicate::InnerIpProto(vec![Protocol::TCP]));
        r.add_predicate(Predicate::InnerDstPort(vec![Match::Exact(22)]));
        let id = t.add(r);
        let mut q = Rule::new(99, Action::Deny);
        q.add_predicate(Predicate::InnerDstPort(vec![Match::Exact(22)]));
        q.add_predicate(Predicate::InnerIpProto(vec![Protocol::TCP]));
        assert_eq!(t.find(&q), Some(id));
        q.preds.pop();
        assert_eq!(t.find(&q), None);
    }

    #[test]
    fn hits_are_counted_and_dumps_render_predicates() {
        let (pkt, m, v) = ctx("V4-Tcp-OUT-0B");
        let mut t = RuleTable::new();
        let mut r = Rule::new(7, Action::Deny);
        r.add_predicate(Predicate::InnerDstPort(vec![
            Match::range(80..=80),
            Match::range(1000..=2000),
        ]));
        t.add(r);
        let meta = ActionMeta::new();
        assert!(t.find_match(&v, &meta, &pkt, &m).is_some());
        assert!(t.find_match(&v, &meta, &pkt, &m).is_some());
        let e = t.iter().next().unwrap();
        assert_eq!(e.hits, 2);
        let d = e.rule.dump();
        assert_eq!(d.priority, 7);
        assert_eq!(
            d.predicates,
            vec!["inner.ulp.dst=80,1000..=2000".to_string()]
        );
        assert_eq!(d.action, "Deny");
    }

    #[test]
    fn data_predicate_ranges_handle_unknown_values() {
        let s = samples::hairpin("Hairpin-DHCPv6", "Solicit").unwrap();
        let mut pkt = s.packet();
        let m = parse_guest(&mut pkt).unwrap();
        assert!(DataPredicate::Dhcpv6MsgType(Match::Exact(1)).is_match(&pkt, &m));
        assert!(DataPredicate::Dhcpv6MsgType(Match::range(0..=200)).is_match(&pkt, &m));
        assert!(!DataPredicate::Dhcpv6MsgType(Match::range(2..=255)).is_match(&pkt, &m));
        assert!(
            DataPredicate::Not(Box::new(DataPredicate::Dhcpv6MsgType(Match::Exact(3))))
                .is_match(&pkt, &m)
        );
        // A TCP packet has no DHCP body: never a match.
        let (pkt, m, _) = ctx("V4-Tcp-OUT-0B");
        assert!(!DataPredicate::DhcpMsgType(Match::range(0..=255)).is_match(&pkt, &m));
    }
}
