//! TCP flow tracking: a deliberately small state machine that follows each connection
//! through a port closely enough to expire it at the right time and to let established
//! connections outrank half-open or closing ones when tables fill up.
//!
//! It is not a TCP implementation: it checks flags and a single acknowledgement number, not
//! windows or sequence validity, and it lets the endpoints decide what is legal. `Out` is
//! guest → remote, `In` is remote → guest; the table is keyed by the guest-side (outbound)
//! flow id.

use crate::engine::flow_table::{EvictionPriority, ExpiryPolicy, priority_lerp};
use crate::engine::time::Moment;
use crate::wire::tcp::flags::{ACK, FIN, RST, SYN};
use core::fmt;
use opte_api::{Direction, InnerFlowId, TcpState};

/// Lifetime of a connection still in its handshake (or waiting for its last ACK): short, so
/// unanswered SYNs cannot hold slots for long.
pub const INCIPIENT_EXPIRE_SECS: u64 = 5;
/// Lifetime of a closing connection: TIME-WAIT as long as the most conservative hosts keep it.
pub const TIME_WAIT_EXPIRE_SECS: u64 = 120;
/// Lifetime of an idle established connection: longer than the default keepalive cycle.
pub const KEEPALIVE_EXPIRE_SECS: u64 = 8_000;

/// Idle time before an established connection becomes evictable (and then only barely).
const ESTABLISHED_PROTECT_MS: u64 = 60_000;
/// Idle time before an opening connection becomes evictable; its priority then rises
/// linearly until its expiry.
const OPENING_PROTECT_MS: u64 = 2_500;
/// Idle time before a closing connection becomes evictable; likewise rising to its expiry.
const CLOSING_PROTECT_MS: u64 = 5_000;
/// Priorities of evictable opening and closing connections run over this range.
const LERP_FIRST_PRIO: u16 = 2;
const LERP_LAST_PRIO: u16 = u16::MAX - 1;

/// A segment that the state machine does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpFlowStateError {
    /// A SYN that cannot belong to the tracked connection: an endpoint reused the
    /// 4-tuple before we let go of it. Drop the old state and track a new connection.
    NewFlow {
        dir: Direction,
        state: TcpState,
        flags: u8,
    },
    /// Any other segment the current state does not expect (reordering, duplicates, or
    /// behaviour not modelled). The state is unchanged.
    UnexpectedSegment {
        dir: Direction,
        state: TcpState,
        flags: u8,
    },
}

impl fmt::Display for TcpFlowStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, dir, state, flags) = match self {
            Self::NewFlow { dir, state, flags } => ("SYN reopening a tracked flow", dir, state, flags),
            Self::UnexpectedSegment { dir, state, flags } => ("unexpected segment", dir, state, flags),
        };
        write!(f, "TCP {what}: direction {dir}, state {state}, flags {flags:#04x}")
    }
}

impl core::error::Error for TcpFlowStateError {}

/// The tracked state of one connection, and the last sequence and acknowledgement numbers
/// seen from each side (`None` until that side sent one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlowState {
    pub tcp_state: TcpState,
    pub guest_seq: Option<u32>,
    pub guest_ack: Option<u32>,
    pub remote_seq: Option<u32>,
    pub remote_ack: Option<u32>,
}

impl Default for TcpFlowState {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpFlowState {
    /// A connection not seen yet: `Closed`, no numbers.
    pub const fn new() -> Self {
        Self {
            tcp_state: TcpState::Closed,
            guest_seq: None,
            guest_ack: None,
            remote_seq: None,
            remote_ack: None,
        }
    }

    /// Runs one segment (its `flags`, `seq` and `ack` fields) travelling in `dir` through
    /// the state machine and returns the new state.
    ///
    /// On success the sender's sequence number is recorded, and its acknowledgement number
    /// if the segment carries ACK. On error nothing changes: a SYN the state cannot accept is
    /// [`TcpFlowStateError::NewFlow`], anything else
    /// [`TcpFlowStateError::UnexpectedSegment`].
    pub fn process(
        &mut self,
        dir: Direction,
        flags: u8,
        seq: u32,
        ack: u32,
    ) -> Result<TcpState, TcpFlowStateError> {
        let state = self.tcp_state;
        let next = match dir {
            Direction::In => self.next_inbound(flags, ack),
            Direction::Out => Self::next_outbound(state, flags),
        };
        let Some(next) = next else {
            return Err(if has(flags, SYN) {
                TcpFlowStateError::NewFlow { dir, state, flags }
            } else {
                TcpFlowStateError::UnexpectedSegment { dir, state, flags }
            });
        };
        let acked = has(flags, ACK).then_some(ack);
        match dir {
            Direction::In => {
                self.remote_seq = Some(seq);
                self.remote_ack = acked.or(self.remote_ack);
            }
            Direction::Out => {
                self.guest_seq = Some(seq);
                self.guest_ack = acked.or(self.guest_ack);
            }
        }
        self.tcp_state = next;
        Ok(next)
    }

    /// Remote → guest. `None`: the segment is not valid in this state.
    fn next_inbound(&self, flags: u8, ack: u32) -> Option<TcpState> {
        use TcpState::*;
        if has(flags, RST) {
            return Some(Closed);
        }
        // True when the remote acknowledges everything up to and including the guest's
        // last segment, i.e. the guest's FIN.
        let acks_guest_fin = self.guest_seq.is_some_and(|s| ack == s.wrapping_add(1));
        let syn = has(flags, SYN);
        let fin = has(flags, FIN);
        let ackf = has(flags, ACK);
        match self.tcp_state {
            // A remote opening a connection to the guest: assume it listens.
            Closed if syn => Some(Listen),
            // Data on a connection we forgot (expired here, alive at both ends): revive it.
            // The guest answers at once with an ACK or a RST, which settles the question.
            Closed if ackf => Some(Established),
            // The remote retransmits its SYN.
            Listen if syn => Some(Listen),
            SynSent if syn && ackf => Some(Established),
            SynRcvd if ackf => Some(Established),
            SynRcvd if syn => Some(SynRcvd),
            Established if syn => None,
            // The remote closes first: the guest enters passive close.
            Established if fin => Some(CloseWait),
            Established => Some(Established),
            // FIN retransmits, or ACKs of the guest's data.
            CloseWait if fin || ackf => Some(CloseWait),
            LastAck if ackf && acks_guest_fin => Some(Closed),
            LastAck if ackf => Some(LastAck),
            FinWait1 if fin && ackf => Some(TimeWait),
            FinWait1 if ackf && acks_guest_fin => Some(FinWait2),
            FinWait1 if ackf => Some(FinWait1),
            FinWait2 if fin && acks_guest_fin => Some(TimeWait),
            FinWait2 if ackf => Some(FinWait2),
            TimeWait if fin || ackf => Some(TimeWait),
            _ => None,
        }
    }

    /// Guest → remote. `None`: the segment is not valid in this state.
    fn next_outbound(state: TcpState, flags: u8) -> Option<TcpState> {
        use TcpState::*;
        if has(flags, RST) {
            return Some(Closed);
        }
        let syn = has(flags, SYN);
        let fin = has(flags, FIN);
        let ackf = has(flags, ACK);
        match state {
            Closed if syn => Some(SynSent),
            // The guest answers data of a connection we forgot: revive it.
            Closed if ackf => Some(Established),
            Listen if syn && ackf => Some(SynRcvd),
            SynSent if syn => Some(SynSent),
            SynRcvd if syn && ackf => Some(SynRcvd),
            Established if syn => None,
            // The guest closes first: active close.
            Established if fin => Some(FinWait1),
            Established => Some(Established),
            FinWait1 if fin || ackf => Some(FinWait1),
            // The remote may still send data; the guest ACKs it.
            FinWait2 if ackf => Some(FinWait2),
            TimeWait if ackf => Some(TimeWait),
            CloseWait if fin => Some(LastAck),
            CloseWait => Some(CloseWait),
            LastAck if fin || ackf => Some(LastAck),
            _ => None,
        }
    }
}

const fn has(flags: u8, flag: u8) -> bool {
    flags & flag == flag
}

/// A TCP table entry: one tracked connection and its traffic counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlowEntry {
    pub state: TcpFlowState,
    /// The guest-side flow id (the table key).
    pub outbound_id: InnerFlowId,
    /// The flow id of inbound packets as they arrive (before any NAT).
    pub inbound_id: InnerFlowId,
    pub segs_in: u64,
    pub segs_out: u64,
    /// Whole-packet lengths.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl TcpFlowEntry {
    /// A fresh entry in `Closed`, counters at zero.
    pub const fn new(outbound_id: InnerFlowId, inbound_id: InnerFlowId) -> Self {
        Self {
            state: TcpFlowState::new(),
            outbound_id,
            inbound_id,
            segs_in: 0,
            segs_out: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub const fn tcp_state(&self) -> TcpState {
        self.state.tcp_state
    }

    /// Runs a segment of a `pkt_len`-byte packet through the state machine (see
    /// [`TcpFlowState::process`]) and counts it, unless it is [`TcpFlowStateError::NewFlow`]:
    /// that packet belongs to the connection that replaces this one.
    pub fn process(
        &mut self,
        dir: Direction,
        flags: u8,
        seq: u32,
        ack: u32,
        pkt_len: usize,
    ) -> Result<TcpState, TcpFlowStateError> {
        let res = self.state.process(dir, flags, seq, ack);
        if !matches!(res, Err(TcpFlowStateError::NewFlow { .. })) {
            let len = u64::try_from(pkt_len).unwrap_or(u64::MAX);
            let (segs, bytes) = match dir {
                Direction::In => (&mut self.segs_in, &mut self.bytes_in),
                Direction::Out => (&mut self.segs_out, &mut self.bytes_out),
            };
            *segs = segs.saturating_add(1);
            *bytes = bytes.saturating_add(len);
        }
        res
    }
}

/// The TCP table's policy: expiry and eviction priority depend on the connection's state.
///
/// | states | expiry | eviction priority by idle time |
/// |---|---|---|
/// | Established | 8000 s | Protected below 60 s, then `Evictable(1)` |
/// | Listen, SynSent, SynRcvd, LastAck | 5 s | Protected up to 2.5 s, then 2 rising to 65534 at 5 s |
/// | CloseWait, FinWait1, FinWait2, TimeWait | 120 s | Protected up to 5 s, then 2 rising to 65534 at 120 s |
/// | Closed | at once | `Evictable(65535)` |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpExpiry;

impl TcpExpiry {
    /// Idle time after which an entry in `state` expires, in milliseconds.
    pub const fn expiry_ms(state: TcpState) -> u64 {
        use TcpState::*;
        let secs = match state {
            TimeWait | CloseWait | FinWait1 | FinWait2 => TIME_WAIT_EXPIRE_SECS,
            SynSent | SynRcvd | Listen | LastAck => INCIPIENT_EXPIRE_SECS,
            Established => KEEPALIVE_EXPIRE_SECS,
            Closed => 0,
        };
        secs * 1000
    }

    /// The eviction priority of an entry in `state`, idle for `idle_ms`.
    pub fn priority(state: TcpState, idle_ms: u64) -> EvictionPriority {
        use TcpState::*;
        let rising = |protect_ms: u64| {
            if idle_ms <= protect_ms {
                return EvictionPriority::Protected;
            }
            let end_ms = Self::expiry_ms(state);
            let prio = priority_lerp(protect_ms, LERP_FIRST_PRIO, end_ms, LERP_LAST_PRIO, idle_ms);
            EvictionPriority::Evictable(prio.unwrap_or(LERP_LAST_PRIO))
        };
        match state {
            Closed => EvictionPriority::Evictable(u16::MAX),
            Established if idle_ms >= ESTABLISHED_PROTECT_MS => EvictionPriority::Evictable(1),
            Established => EvictionPriority::Protected,
            Listen | SynSent | SynRcvd | LastAck => rising(OPENING_PROTECT_MS),
            CloseWait | FinWait1 | FinWait2 | TimeWait => rising(CLOSING_PROTECT_MS),
        }
    }

    /// Until when an entry in `state`, last hit at `last_hit`, stays protected; `None` if it
    /// never is. The port passes this to [`crate::engine::flow_table::FlowEntry::protect_parents_until`]
    /// after each segment, so a healthy connection shields the flow entries it depends on.
    pub const fn protected_until(state: TcpState, last_hit: Moment) -> Option<Moment> {
        use TcpState::*;
        // [`Self::priority`] protects while the whole idle milliseconds are below 60 000,
        // and up to and including 2 500 / 5 000: the windows end at those bounds (exclusive).
        let window_ms = match state {
            Closed => return None,
            Established => ESTABLISHED_PROTECT_MS,
            Listen | SynSent | SynRcvd | LastAck => OPENING_PROTECT_MS + 1,
            CloseWait | FinWait1 | FinWait2 | TimeWait => CLOSING_PROTECT_MS + 1,
        };
        Some(last_hit.plus_millis(window_ms))
    }
}

impl<K> ExpiryPolicy<K, TcpFlowEntry> for TcpExpiry {
    fn is_expired(&self, _key: &K, entry: &TcpFlowEntry, last_hit: Moment, now: Moment) -> bool {
        now.millis_since(last_hit) >= Self::expiry_ms(entry.tcp_state())
    }

    fn eviction_priority(
        &self,
        _key: &K,
        entry: &TcpFlowEntry,
        last_hit: Moment,
        now: Moment,
    ) -> EvictionPriority {
        Self::priority(entry.tcp_state(), now.millis_since(last_hit))
    }
}
