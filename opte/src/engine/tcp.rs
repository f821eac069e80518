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
use serde::{Deserialize, Serialize};

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
            Self::NewFlow { dir, state, flags } => {
                ("SYN reopening a tracked flow", dir, state, flags)
            }
            Self::UnexpectedSegment { dir, state, flags } => {
                ("unexpected segment", dir, state, flags)
            }
        };
        write!(
            f,
            "TCP {what}: direction {dir}, state {state}, flags {flags:#04x}"
        )
    }
}

impl core::error::Error for TcpFlowStateError {}

/// The tracked state of one connection, and the last sequence and acknowledgement numbers
/// seen from each side (`None` until that side sent one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
        // The steady state, checked first: data and ACKs of an established connection
        // change nothing but the recorded numbers.
        if state == TcpState::Established && flags & (SYN | FIN | RST) == 0 {
            self.record(dir, flags, seq, ack);
            return Ok(state);
        }
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
        self.record(dir, flags, seq, ack);
        self.tcp_state = next;
        Ok(next)
    }

    /// Record the sender's sequence number, and its acknowledgement number if the segment
    /// carries ACK.
    #[inline]
    fn record(&mut self, dir: Direction, flags: u8, seq: u32, ack: u32) {
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
            Closed if syn && !ackf => Some(Listen),
            // Data on a connection we forgot (expired here, alive at both ends): revive it.
            // The guest answers at once with an ACK or a RST, which settles the question.
            // A SYN+ACK is such a segment too: the answer to a SYN whose entry expired.
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
            Closed if syn && !ackf => Some(SynSent),
            // The guest answers data (or, with a SYN+ACK, the SYN) of a connection we
            // forgot: revive it.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[inline]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::flow_table::{FlowTable, Lifetime};
    use crate::wire::tcp::flags::PSH;
    use Direction::{In, Out};
    use TcpState::*;
    use alloc::string::ToString;
    use core::num::NonZeroU32;
    use opte_api::{AddrPair, Ipv4Addr};

    /// The guest's last sequence number in the table below; `GUEST_FIN_ACK` acknowledges it.
    const GUEST_SEQ: u32 = 1000;
    const GUEST_FIN_ACK: u32 = GUEST_SEQ + 1;
    const OTHER_ACK: u32 = 500;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Outcome {
        To(TcpState),
        NewFlow,
        Unexpected,
    }
    use Outcome::{NewFlow, To, Unexpected};

    fn in_state(tcp_state: TcpState) -> TcpFlowState {
        TcpFlowState {
            tcp_state,
            guest_seq: Some(GUEST_SEQ),
            guest_ack: Some(7),
            remote_seq: Some(6),
            remote_ack: Some(GUEST_SEQ),
        }
    }

    fn flow() -> InnerFlowId {
        InnerFlowId::with_ports(
            6,
            AddrPair::V4 {
                src: Ipv4Addr::from([10, 0, 0, 5]),
                dst: Ipv4Addr::from([203, 0, 113, 9]),
            },
            40_000,
            443,
        )
    }

    #[test]
    fn every_transition_in_both_directions() {
        #[rustfmt::skip]
        let table: &[(Direction, TcpState, u8, u32, Outcome)] = &[
            (In, Closed, ACK, 1, To(Established)),
            (In, Closed, SYN, 0, To(Listen)),
            (In, Closed, SYN | ACK, 1, To(Established)),
            (In, Closed, FIN, 0, Unexpected),
            (In, Closed, 0, 0, Unexpected),
            (In, Listen, SYN, 0, To(Listen)),
            (In, Listen, ACK, 1, Unexpected),
            (In, Listen, FIN, 0, Unexpected),
            (In, SynSent, SYN | ACK, 1, To(Established)),
            (In, SynSent, SYN, 0, NewFlow),
            (In, SynSent, ACK, 1, Unexpected),
            (In, SynRcvd, ACK, 1, To(Established)),
            (In, SynRcvd, SYN, 0, To(SynRcvd)),
            (In, SynRcvd, FIN, 0, Unexpected),
            (In, Established, FIN | ACK, 1, To(CloseWait)),
            (In, Established, SYN, 0, NewFlow),
            (In, Established, ACK, 1, To(Established)),
            (In, Established, PSH | ACK, 1, To(Established)),
            (In, Established, 0, 0, To(Established)),
            (In, CloseWait, FIN, 0, To(CloseWait)),
            (In, CloseWait, ACK, 1, To(CloseWait)),
            (In, CloseWait, SYN, 0, NewFlow),
            (In, CloseWait, 0, 0, Unexpected),
            (In, LastAck, ACK, GUEST_FIN_ACK, To(Closed)),
            (In, LastAck, ACK, OTHER_ACK, To(LastAck)),
            (In, LastAck, FIN, GUEST_FIN_ACK, Unexpected),
            (In, LastAck, SYN, 0, NewFlow),
            (In, FinWait1, FIN | ACK, OTHER_ACK, To(TimeWait)),
            (In, FinWait1, ACK, GUEST_FIN_ACK, To(FinWait2)),
            (In, FinWait1, ACK, OTHER_ACK, To(FinWait1)),
            (In, FinWait1, FIN, GUEST_FIN_ACK, Unexpected),
            (In, FinWait1, SYN, 0, NewFlow),
            (In, FinWait2, FIN, GUEST_FIN_ACK, To(TimeWait)),
            (In, FinWait2, FIN | ACK, GUEST_FIN_ACK, To(TimeWait)),
            (In, FinWait2, FIN | ACK, OTHER_ACK, To(FinWait2)),
            (In, FinWait2, ACK, GUEST_FIN_ACK, To(FinWait2)),
            (In, FinWait2, FIN, OTHER_ACK, Unexpected),
            (In, FinWait2, SYN, 0, NewFlow),
            (In, TimeWait, FIN, 0, To(TimeWait)),
            (In, TimeWait, ACK, 1, To(TimeWait)),
            (In, TimeWait, SYN, 0, NewFlow),
            (In, TimeWait, 0, 0, Unexpected),
            (Out, Closed, SYN, 0, To(SynSent)),
            (Out, Closed, SYN | ACK, 1, To(Established)),
            (Out, Closed, ACK, 1, To(Established)),
            (Out, Closed, FIN, 0, Unexpected),
            (Out, Listen, SYN | ACK, 1, To(SynRcvd)),
            (Out, Listen, SYN, 0, NewFlow),
            (Out, Listen, ACK, 1, Unexpected),
            (Out, SynSent, SYN, 0, To(SynSent)),
            (Out, SynSent, ACK, 1, Unexpected),
            (Out, SynRcvd, SYN | ACK, 1, To(SynRcvd)),
            (Out, SynRcvd, SYN, 0, NewFlow),
            (Out, SynRcvd, ACK, 1, Unexpected),
            (Out, Established, FIN | ACK, 1, To(FinWait1)),
            (Out, Established, SYN, 0, NewFlow),
            (Out, Established, ACK, 1, To(Established)),
            (Out, Established, 0, 0, To(Established)),
            (Out, FinWait1, FIN, 0, To(FinWait1)),
            (Out, FinWait1, ACK, 1, To(FinWait1)),
            (Out, FinWait1, 0, 0, Unexpected),
            (Out, FinWait1, SYN, 0, NewFlow),
            (Out, FinWait2, ACK, 1, To(FinWait2)),
            (Out, FinWait2, FIN, 0, Unexpected),
            (Out, FinWait2, SYN, 0, NewFlow),
            (Out, TimeWait, ACK, 1, To(TimeWait)),
            (Out, TimeWait, FIN, 0, Unexpected),
            (Out, TimeWait, SYN, 0, NewFlow),
            (Out, CloseWait, FIN | ACK, 1, To(LastAck)),
            (Out, CloseWait, ACK, 1, To(CloseWait)),
            (Out, CloseWait, 0, 0, To(CloseWait)),
            (Out, CloseWait, SYN, 0, To(CloseWait)),
            (Out, LastAck, FIN, 0, To(LastAck)),
            (Out, LastAck, ACK, 1, To(LastAck)),
            (Out, LastAck, 0, 0, Unexpected),
            (Out, LastAck, SYN, 0, NewFlow),
        ];
        for &(dir, from, flags, ack, want) in table {
            let mut st = in_state(from);
            let got = match st.process(dir, flags, 77, ack) {
                Ok(s) => To(s),
                Err(TcpFlowStateError::NewFlow { .. }) => NewFlow,
                Err(TcpFlowStateError::UnexpectedSegment { .. }) => Unexpected,
            };
            assert_eq!(got, want, "{dir} {from} flags {flags:#04x} ack {ack}");
            match got {
                To(s) => assert_eq!(st.tcp_state, s),
                _ => assert_eq!(st, in_state(from), "an error changes nothing"),
            }
        }
        // RST closes from anywhere, both ways, whatever else it carries.
        for from in TcpState::ALL {
            for dir in [In, Out] {
                for flags in [RST, RST | ACK, RST | SYN] {
                    let mut st = in_state(from);
                    assert_eq!(st.process(dir, flags, 1, 2), Ok(Closed), "{dir} {from}");
                }
            }
        }
    }

    #[test]
    fn syn_on_invalid_transition_is_new_flow_else_unexpected() {
        let mut st = in_state(FinWait2);
        assert_eq!(
            st.process(Out, SYN, 5, 0),
            Err(TcpFlowStateError::NewFlow {
                dir: Out,
                state: FinWait2,
                flags: SYN
            })
        );
        assert_eq!(
            st.process(Out, FIN, 5, 0),
            Err(TcpFlowStateError::UnexpectedSegment {
                dir: Out,
                state: FinWait2,
                flags: FIN
            })
        );
        assert_eq!(
            st.process(In, SYN, 5, 0).unwrap_err().to_string(),
            "TCP SYN reopening a tracked flow: direction IN, state FIN_WAIT_2, flags 0x02"
        );
        assert_eq!(
            st.process(Out, FIN, 5, 0).unwrap_err().to_string(),
            "TCP unexpected segment: direction OUT, state FIN_WAIT_2, flags 0x01"
        );
    }

    #[test]
    fn segments_record_the_senders_seq_and_ack() {
        let mut st = TcpFlowState::new();
        st.process(Out, SYN, 100, 0).unwrap();
        assert_eq!((st.guest_seq, st.guest_ack), (Some(100), None));
        st.process(In, SYN | ACK, 900, 101).unwrap();
        assert_eq!((st.remote_seq, st.remote_ack), (Some(900), Some(101)));
        st.process(Out, ACK, 101, 901).unwrap();
        assert_eq!((st.guest_seq, st.guest_ack), (Some(101), Some(901)));
        // A segment without ACK leaves the last acknowledgement in place.
        st.process(In, 0, 901, 5).unwrap();
        assert_eq!((st.remote_seq, st.remote_ack), (Some(901), Some(101)));
        assert_eq!(st.tcp_state, Established);
    }

    #[test]
    fn active_close_by_the_guest_reaches_time_wait() {
        let mut st = TcpFlowState::new();
        st.process(Out, SYN, 100, 0).unwrap();
        st.process(In, SYN | ACK, 900, 101).unwrap();
        st.process(Out, ACK, 101, 901).unwrap();
        assert_eq!(st.process(Out, FIN | ACK, 101, 901), Ok(FinWait1));
        // A stale ACK does not acknowledge the FIN; the right one does.
        assert_eq!(st.process(In, ACK, 901, 101), Ok(FinWait1));
        assert_eq!(st.process(In, ACK, 901, 102), Ok(FinWait2));
        assert_eq!(st.process(In, FIN | ACK, 901, 102), Ok(TimeWait));
        assert_eq!(st.process(Out, ACK, 102, 902), Ok(TimeWait));
    }

    #[test]
    fn passive_close_by_the_guest_reaches_closed() {
        let mut st = TcpFlowState::new();
        assert_eq!(st.process(In, SYN, 900, 0), Ok(Listen));
        assert_eq!(st.process(Out, SYN | ACK, 100, 901), Ok(SynRcvd));
        assert_eq!(st.process(In, ACK, 901, 101), Ok(Established));
        assert_eq!(st.process(In, FIN | ACK, 901, 101), Ok(CloseWait));
        assert_eq!(st.process(Out, ACK, 101, 902), Ok(CloseWait));
        assert_eq!(st.process(Out, FIN | ACK, 101, 902), Ok(LastAck));
        assert_eq!(st.process(In, ACK, 902, 102), Ok(Closed));
    }

    #[test]
    fn fin_ack_compares_with_wrapping_sequence_numbers() {
        let mut st = in_state(LastAck);
        st.guest_seq = Some(u32::MAX);
        assert_eq!(st.process(In, ACK, 1, 0), Ok(Closed));
        // With no guest segment seen, no ACK can acknowledge its FIN.
        let mut st = in_state(LastAck);
        st.guest_seq = None;
        assert_eq!(st.process(In, ACK, 1, 1), Ok(LastAck));
    }

    #[test]
    fn entry_counts_segments_and_bytes_except_on_new_flow() {
        let mut e = TcpFlowEntry::new(flow(), flow().mirror());
        e.process(Out, SYN, 100, 0, 74).unwrap();
        e.process(In, SYN | ACK, 900, 101, 74).unwrap();
        e.process(Out, ACK, 101, 901, 66).unwrap();
        // Unexpected segments are still forwarded, hence counted.
        assert!(e.process(In, 0, 1, 1, 60).is_ok());
        let mut closed = e;
        closed.process(In, RST, 1, 1, 54).unwrap();
        assert!(closed.process(In, FIN, 1, 1, 54).is_err());
        assert_eq!((closed.segs_in, closed.bytes_in), (4, 74 + 60 + 54 + 54));
        // A SYN reopening the flow belongs to the next connection.
        assert!(matches!(
            e.process(Out, SYN, 5, 0, 74),
            Err(TcpFlowStateError::NewFlow { .. })
        ));
        assert_eq!((e.segs_out, e.bytes_out), (2, 74 + 66));
        assert_eq!((e.segs_in, e.bytes_in), (2, 74 + 60));
        assert_eq!(e.tcp_state(), Established);
        assert_eq!(e.inbound_id, flow().mirror());
    }

    #[test]
    fn expiry_depends_on_state() {
        let expected = [
            (Closed, 0),
            (Listen, 5),
            (SynSent, 5),
            (SynRcvd, 5),
            (LastAck, 5),
            (Established, 8000),
            (CloseWait, 120),
            (FinWait1, 120),
            (FinWait2, 120),
            (TimeWait, 120),
        ];
        let hit = Moment::from_secs(10);
        for (state, secs) in expected {
            let mut e = TcpFlowEntry::new(flow(), flow());
            e.state.tcp_state = state;
            let ttl = Moment::from_secs(10 + secs);
            assert_eq!(TcpExpiry::expiry_ms(state), secs * 1000);
            if secs > 0 {
                let before = Moment::from_nanos(ttl.as_nanos() - 1_000_000);
                assert!(!TcpExpiry.is_expired(&(), &e, hit, before), "{state}");
            }
            assert!(TcpExpiry.is_expired(&(), &e, hit, ttl), "{state}");
        }
    }

    #[test]
    fn tcp_table_reaps_half_open_flows_long_before_established_ones() {
        let limit = NonZeroU32::new(4).unwrap();
        let mut table = FlowTable::new("tcp_flows", limit, TcpExpiry, 9);
        let mut syn_only = TcpFlowEntry::new(flow(), flow().mirror());
        syn_only.process(Out, SYN, 1, 0, 60).unwrap();
        let mut open = syn_only;
        open.process(In, SYN | ACK, 9, 2, 60).unwrap();
        let t0 = Moment::from_secs(1);
        table
            .add_linked(1u8, syn_only, t0, Lifetime::new(t0), &[])
            .unwrap();
        table.add(2u8, open, t0).unwrap();
        let mut gone = alloc::vec::Vec::new();
        table.expire_flows(t0.plus_secs(5), |k, e| gone.push((k, e.tcp_state())));
        assert_eq!(gone, [(1, SynSent)]);
        assert_eq!(
            table.get(&2).map(|e| e.state().tcp_state()),
            Some(Established)
        );
    }

    #[test]
    fn opening_tcp_eviction_prio_increases_over_time() {
        for state in [Listen, SynSent, SynRcvd, LastAck] {
            assert_eq!(TcpExpiry::priority(state, 0), EvictionPriority::Protected);
            assert_eq!(
                TcpExpiry::priority(state, 2_500),
                EvictionPriority::Protected
            );
            assert_eq!(
                TcpExpiry::priority(state, 2_501),
                EvictionPriority::Evictable(28)
            );
            assert_eq!(
                TcpExpiry::priority(state, 3_750),
                EvictionPriority::Evictable(32_768)
            );
            assert_eq!(
                TcpExpiry::priority(state, 5_000),
                EvictionPriority::Evictable(65_534)
            );
            assert_eq!(
                TcpExpiry::priority(state, 90_000),
                EvictionPriority::Evictable(65_534)
            );
            let mut last = EvictionPriority::Protected;
            for idle in (0..=6_000).step_by(50) {
                let p = TcpExpiry::priority(state, idle);
                assert!(p >= last, "{state} at {idle} ms: {p:?} < {last:?}");
                last = p;
            }
        }
    }

    #[test]
    fn established_tcp_eviction_prio_unchanging() {
        let e = EvictionPriority::Evictable(1);
        assert_eq!(
            TcpExpiry::priority(Established, 0),
            EvictionPriority::Protected
        );
        assert_eq!(
            TcpExpiry::priority(Established, 59_999),
            EvictionPriority::Protected
        );
        for idle in [60_000, 61_000, 3_600_000, 7_999_999] {
            assert_eq!(TcpExpiry::priority(Established, idle), e);
        }
    }

    #[test]
    fn closing_tcp_eviction_prio_rises_until_time_wait_expiry() {
        for state in [CloseWait, FinWait1, FinWait2, TimeWait] {
            assert_eq!(
                TcpExpiry::priority(state, 5_000),
                EvictionPriority::Protected
            );
            assert_eq!(
                TcpExpiry::priority(state, 62_500),
                EvictionPriority::Evictable(32_768)
            );
            assert_eq!(
                TcpExpiry::priority(state, 120_000),
                EvictionPriority::Evictable(65_534)
            );
        }
        assert_eq!(
            TcpExpiry::priority(Closed, 0),
            EvictionPriority::Evictable(u16::MAX)
        );
    }

    #[test]
    fn protection_horizon_matches_the_priority() {
        let hit = Moment::from_secs(100);
        assert_eq!(TcpExpiry::protected_until(Closed, hit), None);
        for state in TcpState::ALL.into_iter().filter(|s| *s != Closed) {
            let until = TcpExpiry::protected_until(state, hit).unwrap();
            let last_protected_ns = until.as_nanos() - hit.as_nanos() - 1;
            assert_eq!(
                TcpExpiry::priority(state, last_protected_ns / 1_000_000),
                EvictionPriority::Protected,
                "{state}"
            );
            assert_ne!(
                TcpExpiry::priority(state, until.millis_since(hit)),
                EvictionPriority::Protected,
                "{state}"
            );
        }
    }
}
