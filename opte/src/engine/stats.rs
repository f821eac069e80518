//! Counters of a port and of its layers. Every packet handed to `Port::process` lands in
//! exactly one result counter per direction (`modified`, `hairpin`, or one `drop_*`), and
//! every drop has its own reason counter.
//!
//! The counter structs serialise (serde), so a host can hand them to `opteadm` as they are.

use core::fmt;
use serde::{Deserialize, Serialize};

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
    /// An action had nothing left to give a new flow (every SNAT port in use).
    Exhausted { layer: &'static str },
    /// The transforms could not be applied to this packet.
    TransformFailed,
    /// The port is not running.
    PortNotRunning,
    /// The guest frame carries an 802.1Q tag and the network has no VLANs.
    VlanTagged,
    /// A later IP fragment of a datagram whose first fragment the port has not passed
    /// (recently): without it, the fragment's flow is unknown (see `engine::frag`).
    UnknownFragment,
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
            Self::Exhausted { layer } => write!(f, "layer {layer}: resource exhausted"),
            Self::TransformFailed => f.write_str("transform failed"),
            Self::PortNotRunning => f.write_str("port not running"),
            Self::VlanTagged => f.write_str("802.1Q-tagged guest frame"),
            Self::UnknownFragment => f.write_str("IP fragment of an unknown datagram"),
        }
    }
}

/// One direction's counters of a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    pub drop_exhausted: u64,
    pub drop_transform_failed: u64,
    pub drop_not_running: u64,
    pub drop_vlan_tagged: u64,
    pub drop_unknown_fragment: u64,
    pub uft_hit: u64,
    pub uft_miss: u64,
    pub uft_evictions: u64,
    /// Datagrams the fragment table forgot, while still fresh, to make room for newer ones.
    pub frag_evictions: u64,
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
            DropReason::Exhausted { .. } => &mut self.drop_exhausted,
            DropReason::TransformFailed => &mut self.drop_transform_failed,
            DropReason::PortNotRunning => &mut self.drop_not_running,
            DropReason::VlanTagged => &mut self.drop_vlan_tagged,
            DropReason::UnknownFragment => &mut self.drop_unknown_fragment,
        };
        *c += 1;
    }

    /// Packets that reached a result: every processed packet is exactly one of these.
    pub fn results(&self) -> u64 {
        self.modified + self.hairpin + self.drop
    }
}

/// The counters of a port (the reference's port kstats, plus a counter per drop reason).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    pub r#in: DirStats,
    pub out: DirStats,
    pub tcp_evictions: u64,
}

/// One direction's counters of a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDirStats {
    pub lft_hit: u64,
    pub lft_miss: u64,
    pub lft_full: u64,
    pub rule_match: u64,
    pub rule_nomatch: u64,
    pub deny: u64,
    pub default_hits: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStats {
    pub r#in: LayerDirStats,
    pub out: LayerDirStats,
    pub evictions: u64,
    pub add_rule_called: u64,
    pub remove_rule_called: u64,
    pub set_rules_called: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_port() -> PortStats {
        let mut s = PortStats::default();
        s.r#in.modified = 7;
        s.r#in.count_drop(&DropReason::UftFull);
        s.out.hairpin = 3;
        s.out.count_drop(&DropReason::Layer {
            layer: "firewall",
            reason: DenyReason::Default,
        });
        s.out.uft_hit = u64::MAX;
        s.tcp_evictions = 11;
        s
    }

    fn sample_layer() -> LayerStats {
        LayerStats {
            r#in: LayerDirStats {
                lft_hit: 1,
                lft_miss: 2,
                lft_full: 3,
                rule_match: 4,
                rule_nomatch: 5,
                deny: 6,
                default_hits: 7,
            },
            out: LayerDirStats {
                deny: 9,
                ..LayerDirStats::default()
            },
            evictions: 10,
            add_rule_called: 11,
            remove_rule_called: 12,
            set_rules_called: 13,
        }
    }

    #[test]
    fn counters_round_trip_through_postcard_and_json() {
        let port = sample_port();
        let bytes = postcard::to_allocvec(&port).unwrap();
        assert_eq!(postcard::from_bytes::<PortStats>(&bytes).unwrap(), port);
        let layer = sample_layer();
        let bytes = postcard::to_allocvec(&layer).unwrap();
        assert_eq!(postcard::from_bytes::<LayerStats>(&bytes).unwrap(), layer);

        let json = serde_json::to_string(&port).unwrap();
        assert_eq!(serde_json::from_str::<PortStats>(&json).unwrap(), port);
        let json = serde_json::to_string(&layer).unwrap();
        assert_eq!(serde_json::from_str::<LayerStats>(&json).unwrap(), layer);
    }

    #[test]
    fn json_names_the_directions_in_and_out() {
        let v: serde_json::Value = serde_json::to_value(sample_port()).unwrap();
        assert_eq!(v["in"]["modified"], 7);
        assert_eq!(v["in"]["drop_uft_full"], 1);
        assert_eq!(v["out"]["drop_layer"], 1);
        assert_eq!(v["out"]["uft_hit"], u64::MAX);
        assert_eq!(v["tcp_evictions"], 11);
        let v: serde_json::Value = serde_json::to_value(sample_layer()).unwrap();
        assert_eq!(v["in"]["default_hits"], 7);
        assert_eq!(v["out"]["deny"], 9);
        assert_eq!(v["set_rules_called"], 13);
    }
}
