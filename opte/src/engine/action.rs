//! What a rule does when it matches: [`Action`], the traits network implementations fill in,
//! and the per-packet [`ActionMeta`] layers pass to each other.

use super::predicate::{DataPredicate, Predicate};
use super::transform::HdrTransform;
use super::view::PacketView;
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use opte_api::{Direction, InnerFlowId, IpAddr};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// Key/value metadata passed through every layer of one slow-path walk (e.g. the router's
/// chosen target, read by the overlay). A handful of entries at most, so a short inline
/// list beats a map; the well-known keys and most values are static strings, so nothing
/// is allocated for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionMeta {
    entries: SmallVec<[(Cow<'static, str>, Cow<'static, str>); 4]>,
}

impl ActionMeta {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `key` to `value`, replacing what it held.
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1.into_owned())
    }

    /// The entries, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

/// Well-known metadata keys.
pub mod meta_keys {
    /// "1" when the destination is inside the VPC (set by the overlay).
    pub const INTERNAL_TARGET: &str = "opte:internal-target";
    /// Set when a NAT descriptor (or tagger) applied an external IP.
    pub const EXTERNAL_IP_APPLIED: &str = "external-ip-applied";
    pub const VNI: &str = "vni";
    pub const ROUTER_TARGET: &str = "router-target";
    pub const ROUTER_TARGET_CLASS: &str = "router-target-class";
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowOrDeny<T> {
    Allow(T),
    Deny,
}

/// Why a static action could not produce a transform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenHtError {
    ResourceExhausted(String),
    Unexpected(String),
}

/// Why a stateful action could not produce a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenDescError {
    ResourceExhausted { name: String },
    Unexpected { msg: String },
}

/// Why a hairpin action could not produce a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenPacketError(pub String);

impl fmt::Display for GenHtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResourceExhausted(s) => write!(f, "resource exhausted: {s}"),
            Self::Unexpected(s) => write!(f, "unexpected: {s}"),
        }
    }
}

impl fmt::Display for GenDescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResourceExhausted { name } => write!(f, "resource exhausted: {name}"),
            Self::Unexpected { msg } => write!(f, "unexpected: {msg}"),
        }
    }
}

/// Predicates an action implies: a rule built with [`super::rule::Rule::new`] starts with them.
pub type ImplicitPreds = (Vec<Predicate>, Vec<DataPredicate>);

/// Changes only the metadata.
pub trait MetaAction: fmt::Display + Send + Sync {
    fn implicit_preds(&self) -> ImplicitPreds {
        (Vec::new(), Vec::new())
    }
    fn mod_meta(
        &self,
        flow: &InnerFlowId,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<()>, String>;
}

/// Produces a transform for each packet; keeps no flow state.
pub trait StaticAction: fmt::Display + Send + Sync {
    fn implicit_preds(&self) -> ImplicitPreds {
        (Vec::new(), Vec::new())
    }
    fn gen_ht(
        &self,
        dir: Direction,
        view: &PacketView,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<HdrTransform>, GenHtError>;
}

/// The flow state a stateful action leaves in the layer flow table: it regenerates the
/// transform for later packets of the flow (either direction). Dropping it releases what it
/// holds (a SNAT port, say).
pub trait ActionDesc: Send + Sync {
    fn gen_ht(&self, dir: Direction, meta: &mut ActionMeta) -> HdrTransform;
    fn name(&self) -> &'static str;
    /// What the descriptor holds, for a migration to carry to another host; `None` for
    /// one that cannot move (its flow is left behind, and starts again over there).
    fn export(&self) -> Option<DescState> {
        None
    }
    /// Whether the descriptor is still right after a soft rule refresh (`set_rules_soft`).
    fn is_valid(&self) -> bool {
        false
    }
}

/// A descriptor's state as it travels between hosts ([`ActionDesc::export`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DescState {
    /// 1:1 NAT of `private` to `external`.
    Nat { private: IpAddr, external: IpAddr },
    /// SNAT of `private`, key `private_key` (source port, or echo identifier), to
    /// `public`:`public_key`, from the pool of protocol `proto` (6, 17, or 1/58 for
    /// echo identifiers).
    SNat {
        proto: u8,
        private: IpAddr,
        public: IpAddr,
        private_key: u16,
        public_key: u16,
    },
}

/// Produces a descriptor when a flow starts.
pub trait StatefulAction: fmt::Display + Send + Sync {
    fn implicit_preds(&self) -> ImplicitPreds {
        (Vec::new(), Vec::new())
    }
    /// The descriptor this action would have made for a flow that another host's action
    /// made as `state` (a migration): `None` if it is not this action's kind, or names
    /// what this action does not own (another private IP, an external IP it lacks, a
    /// port its pool has given out). Taking a SNAT port out of the pool is part of it.
    fn import_desc(&self, _state: &DescState) -> Option<Arc<dyn ActionDesc>> {
        None
    }
    fn gen_desc(
        &self,
        flow: &InnerFlowId,
        view: &PacketView,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<Arc<dyn ActionDesc>>, GenDescError>;
}

/// Answers the packet instead of forwarding it.
pub trait HairpinAction: fmt::Display + Send + Sync {
    fn implicit_preds(&self) -> ImplicitPreds {
        (Vec::new(), Vec::new())
    }
    /// The reply frame, or `Deny` for a request not to be answered.
    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError>;
}

/// What a rule does.
#[derive(Clone)]
pub enum Action {
    /// Pass, with no flow state.
    Allow,
    /// Pass, and remember the flow in the layer flow table (so its reverse passes too).
    StatefulAllow,
    Deny,
    /// Hand the packet to the network implementation.
    HandlePacket,
    Meta(Arc<dyn MetaAction>),
    Static(Arc<dyn StaticAction>),
    Stateful(Arc<dyn StatefulAction>),
    Hairpin(Arc<dyn HairpinAction>),
}

impl Action {
    pub fn implicit_preds(&self) -> ImplicitPreds {
        match self {
            Self::Meta(a) => a.implicit_preds(),
            Self::Static(a) => a.implicit_preds(),
            Self::Stateful(a) => a.implicit_preds(),
            Self::Hairpin(a) => a.implicit_preds(),
            _ => (Vec::new(), Vec::new()),
        }
    }

    pub fn is_deny(&self) -> bool {
        matches!(self, Self::Deny)
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("Allow"),
            Self::StatefulAllow => f.write_str("Stateful Allow"),
            Self::Deny => f.write_str("Deny"),
            Self::HandlePacket => f.write_str("Handle Packet"),
            Self::Meta(a) => write!(f, "Meta: {a}"),
            Self::Static(a) => write!(f, "Static: {a}"),
            Self::Stateful(a) => write!(f, "Stateful: {a}"),
            Self::Hairpin(a) => write!(f, "Hairpin: {a}"),
        }
    }
}

/// What a layer does with a packet no rule matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Allow,
    StatefulAllow,
    Deny,
}

impl fmt::Display for DefaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::StatefulAllow => "stateful allow",
            Self::Deny => "deny",
        })
    }
}

/// A stateful descriptor that changes nothing: the flow is remembered, the packet passes.
pub struct IdentityDesc;

impl ActionDesc for IdentityDesc {
    fn gen_ht(&self, _dir: Direction, _meta: &mut ActionMeta) -> HdrTransform {
        HdrTransform::identity("identity")
    }

    fn name(&self) -> &'static str {
        "identity"
    }

    fn is_valid(&self) -> bool {
        true
    }
}
