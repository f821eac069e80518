//! Counters of a port and of its layers. Every packet handed to `Port::process` lands in
//! exactly one result counter per direction (`modified`, `hairpin`, or one `drop_*`), and
//! every drop has its own reason counter.

use core::fmt;

/// Why a packet was dropped. Each variant has a counter in [`DirStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A layer denied it: its rule, its default action, or an action's decision.
    Layer {
        layer: &'static str,
        reason: DenyReason,
    },
    /// The network implementation's packet handler refused it.
    HandlePkt,
    /// TCP tracking refused it (a segment that cannot start a flow, say).
    TcpErr,
    /// The unified flow table was full and nothing in it could be evicted.
    UftFull,
    /// The TCP flow table was full and nothing in it could be evicted.
    TcpFull,
    /// A layer flow table was full and nothing in it could be evicted.
    LftFull { layer: &'static str },
    /// An action failed to produce a transform, descriptor or reply (e.g. SNAT exhausted).
    ActionFailed { layer: &'static str },
    /// The transforms could not be applied to this packet.
    TransformFailed,
    /// The port is not running.
    PortNotRunning,
    /// The guest frame carries an 802.1Q tag and the network has no VLANs.
    VlanTagged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A rule's Deny action.
    Rule,
    /// The layer's default action.
    Default,
    /// An action decided to deny (a hairpin with nothing to answer, a NAT for ICMP it cannot
    /// key, ...).
    Action,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Layer { layer, reason } => write!(f, "layer {layer}: {reason:?}"),
            Self::HandlePkt => f.write_str("handle packet"),
            Self::TcpErr => f.write_str("TCP state"),
            Self::UftFull => f.write_str("UFT full"),
            Self::TcpFull => f.write_str("TCP flow table full"),
            Self::LftFull { layer } => write!(f, "layer {layer}: flow table full"),
            Self::ActionFailed { layer } => write!(f, "layer {layer}: action failed"),
            Self::TransformFailed => f.write_str("transform failed"),
            Self::PortNotRunning => f.write_str("port not running"),
            Self::VlanTagged => f.write_str("802.1Q-tagged guest frame"),
        }
    }
}

/// One direction's counters of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub modified: u64,
    pub hairpin: u64,
    pub drop: u64,
    pub drop_layer: u64,
    pub drop_handle_pkt: u64,
    pub drop_tcp_err: u64,
    pub drop_uft_full: u64,
    pub drop_tcp_full: u64,
    pub drop_lft_full: u64,
    pub drop_action_failed: u64,
    pub drop_transform_failed: u64,
    pub drop_not_running: u64,
    pub drop_vlan_tagged: u64,
    pub uft_hit: u64,
    pub uft_miss: u64,
    pub uft_evictions: u64,
}

impl DirStats {
    pub(crate) fn count_drop(&mut self, r: &DropReason) {
        self.drop += 1;
        let c = match r {
            DropReason::Layer { .. } => &mut self.drop_layer,
            DropReason::HandlePkt => &mut self.drop_handle_pkt,
            DropReason::TcpErr => &mut self.drop_tcp_err,
            DropReason::UftFull => &mut self.drop_uft_full,
            DropReason::TcpFull => &mut self.drop_tcp_full,
            DropReason::LftFull { .. } => &mut self.drop_lft_full,
            DropReason::ActionFailed { .. } => &mut self.drop_action_failed,
            DropReason::TransformFailed => &mut self.drop_transform_failed,
            DropReason::PortNotRunning => &mut self.drop_not_running,
            DropReason::VlanTagged => &mut self.drop_vlan_tagged,
        };
        *c += 1;
    }

    /// Packets that reached a result: every processed packet is exactly one of these.
    pub fn results(&self) -> u64 {
        self.modified + self.hairpin + self.drop
    }
}

/// The counters of a port (the reference's port kstats, plus a counter per drop reason).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub r#in: DirStats,
    pub out: DirStats,
    pub tcp_evictions: u64,
}

/// One direction's counters of a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerDirStats {
    pub lft_hit: u64,
    pub lft_miss: u64,
    pub lft_full: u64,
    pub rule_match: u64,
    pub rule_nomatch: u64,
    pub deny: u64,
    pub default_hits: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub r#in: LayerDirStats,
    pub out: LayerDirStats,
    pub evictions: u64,
    pub add_rule_called: u64,
    pub remove_rule_called: u64,
    pub set_rules_called: u64,
}
