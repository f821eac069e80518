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
        Self { priority, preds, data_preds, action }
    }

    /// A rule with no predicates: it matches every packet.
    pub fn match_any(priority: u16, action: Action) -> Self {
        Self { priority, preds: Vec::new(), data_preds: Vec::new(), action }
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
        self.rules.insert(pos, RuleEntry { id, hits: 0, rule });
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
        self.rules.iter().find(|e| e.rule.same_predicates(rule)).map(|e| e.id)
    }

    /// The first matching rule, its hit counted.
    pub fn find_match(
        &mut self,
        v: &PacketView,
        meta: &ActionMeta,
        pkt: &Packet,
        m: &InnerMeta,
    ) -> Option<&RuleEntry> {
        let e = self.rules.iter_mut().find(|e| e.rule.is_match(v, meta, pkt, m))?;
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
