//! The host-wide counters: every packet the datapath gives up on is counted here (or, once
//! it reached a port, by the port's own counters), so nothing is lost silently. The names
//! are the reference's kstat names (SPEC §7.9) where it has one.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use opte::packet::ParseError;

macro_rules! counters {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: AtomicU64,)*
        }

        impl $name {
            /// Every counter as `(name, value)`, in declaration order.
            pub fn snapshot(&self) -> Vec<(String, u64)> {
                alloc::vec![$((stringify!($field).to_string(), self.$field.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// Counters of the whole host.
    XdeCounters {
        /// Guest frames (outbound) that failed to parse, by reason.
        out_drop_reject,
        out_drop_unwanted_proto,
        out_drop_truncated,
        out_drop_straddled,
        out_drop_illegal_val,
        out_drop_bad_len,
        out_drop_misc,
        /// Underlay frames (inbound) that failed to parse, by reason; handed back to the OS.
        in_drop_reject,
        in_drop_unwanted_proto,
        in_drop_truncated,
        in_drop_straddled,
        in_drop_illegal_val,
        in_drop_bad_len,
        in_drop_bad_tun_opt,
        in_drop_misc,
        /// Sent to the underlay.
        tx_underlay,
        /// Delivered to another port of this host without touching the wire.
        tx_loopback,
        /// Answered to the guest by the gateway.
        tx_hairpin,
        /// Dropped by the sending port (its own counters say why).
        tx_port_drop,
        /// Rewritten by the port but not encapsulated: nowhere to send it.
        tx_no_encap,
        /// No next hop could be resolved.
        tx_no_route,
        /// Guest loopback found no port for (VNI, MAC).
        tx_loopback_no_port,
        /// Delivered to a local guest from the underlay.
        rx_delivered,
        /// No port for (VNI, inner MAC): handed back to the OS.
        rx_no_port,
        /// Dropped by the receiving port (its own counters say why).
        rx_port_drop,
        /// An inbound hairpin sent back out the receiving link.
        rx_hairpin,
        mcast_tx_local,
        mcast_tx_underlay,
        mcast_tx_external,
        mcast_tx_stale_local,
        mcast_tx_no_fwd_entry,
        mcast_rx_local,
        mcast_rx_stale_local,
        mcast_rx_no_subscribers,
        mcast_tx_pullup_fail,
        mcast_rx_pullup_fail,
        mcast_rx_bad_inner_dst,
        mcast_tx_source_filtered,
        mcast_rx_source_filtered,
        mcast_tx_fwd_source_filtered,
        /// Guest super-frames (TSO/USO) cut into segments for the underlay, and the
        /// segments they made.
        tx_gso_frames,
        tx_gso_segments,
        /// Guest frames whose offload request could not be honoured (an unknown
        /// segmentation type, a size under the floor, a type that is not the frame's).
        out_drop_bad_offload,
        /// Frames handed to a guest as part of a coalesced super-frame, and those frames.
        rx_coalesced_frames,
        rx_coalesced_supers,
        /// TCP segments for a guest whose checksum did not verify: dropped.
        rx_bad_csum,
        /// UDP datagrams of Geneve chunks that arrived whole: coalesced into one frame, or
        /// split into their chunks (not one flow in order, or not vouched for).
        rx_dgrams_merged,
        rx_dgrams_split,
        /// Frames from the underlay that a host steering each port to one worker (the
        /// Linux daemon) received on a worker other than the port's: 0 unless the kernel
        /// steered them otherwise.
        rx_off_worker,
        /// Frames from the underlay larger than a receive ring's slot, cut short by the
        /// kernel: dropped.
        rx_truncated,
        /// Configuration changes the host could not keep (the next change saves the whole
        /// configuration again).
        config_save_failed,
    }
}

/// Add one to a counter.
#[inline]
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Add `n` to a counter.
#[inline]
pub fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl XdeCounters {
    /// Count a guest frame that failed to parse.
    pub fn out_parse_error(&self, e: &ParseError) {
        bump(match e {
            ParseError::Truncated { .. } => &self.out_drop_truncated,
            ParseError::IllegalValue(_) => &self.out_drop_illegal_val,
            ParseError::BadLength(_) => &self.out_drop_bad_len,
            ParseError::Unwanted(_) => &self.out_drop_unwanted_proto,
            ParseError::UnrecognisedTunnelOpt { .. } => &self.out_drop_misc,
        });
    }

    /// Count an underlay frame that failed to parse.
    pub fn in_parse_error(&self, e: &ParseError) {
        bump(match e {
            ParseError::Truncated { .. } => &self.in_drop_truncated,
            ParseError::IllegalValue(_) => &self.in_drop_illegal_val,
            ParseError::BadLength(_) => &self.in_drop_bad_len,
            ParseError::Unwanted(_) => &self.in_drop_unwanted_proto,
            ParseError::UnrecognisedTunnelOpt { .. } => &self.in_drop_bad_tun_opt,
        });
    }

    /// The value of the counter `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.snapshot()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}
