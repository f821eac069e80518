//! TCP connection states, as the engine's TCP flow tracking names them.
//!
//! Not the state machine itself: transitions live in the engine.

use crate::text::{ParseError, ParseReason};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// The state of a tracked TCP connection (RFC 9293 §3.3.2 names).
///
/// The discriminants 0–9 are the numbers probes report. Displays as the RFC's upper-case
/// name (`ESTABLISHED`, `SYN_SENT`, ...); parses those names in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum TcpState {
    /// No connection.
    Closed = 0,
    /// Waiting for a connection request.
    Listen = 1,
    /// SYN sent, waiting for SYN+ACK.
    SynSent = 2,
    /// SYN received and answered, waiting for the final ACK.
    SynRcvd = 3,
    /// Open: data flows both ways.
    Established = 4,
    /// The remote has closed; waiting for the local close.
    CloseWait = 5,
    /// Both closed, waiting for the ACK of the local FIN.
    LastAck = 6,
    /// Local FIN sent, waiting for its ACK or the remote FIN.
    FinWait1 = 7,
    /// Local FIN acknowledged, waiting for the remote FIN.
    FinWait2 = 8,
    /// Both closed; waiting out stray segments.
    TimeWait = 9,
}

impl TcpState {
    /// Every state, in discriminant order.
    pub const ALL: [TcpState; 10] = [
        Self::Closed,
        Self::Listen,
        Self::SynSent,
        Self::SynRcvd,
        Self::Established,
        Self::CloseWait,
        Self::LastAck,
        Self::FinWait1,
        Self::FinWait2,
        Self::TimeWait,
    ];

    /// The state's conventional name, as displayed.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Listen => "LISTEN",
            Self::SynSent => "SYN_SENT",
            Self::SynRcvd => "SYN_RCVD",
            Self::Established => "ESTABLISHED",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::FinWait1 => "FIN_WAIT_1",
            Self::FinWait2 => "FIN_WAIT_2",
            Self::TimeWait => "TIME_WAIT",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TcpState {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ParseError::new(
                    "TCP state",
                    s,
                    ParseReason::Invalid(
                        "expected CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, CLOSE_WAIT, \
                     LAST_ACK, FIN_WAIT_1, FIN_WAIT_2 or TIME_WAIT",
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_numbers_and_round_trip() {
        let names = [
            "CLOSED",
            "LISTEN",
            "SYN_SENT",
            "SYN_RCVD",
            "ESTABLISHED",
            "CLOSE_WAIT",
            "LAST_ACK",
            "FIN_WAIT_1",
            "FIN_WAIT_2",
            "TIME_WAIT",
        ];
        for (n, (state, name)) in TcpState::ALL.into_iter().zip(names).enumerate() {
            assert_eq!(state as usize, n);
            assert_eq!(state.to_string(), name);
            assert_eq!(name.parse(), Ok(state));
            assert_eq!(name.to_lowercase().parse(), Ok(state));
            let bytes = postcard::to_allocvec(&state).unwrap();
            assert_eq!(postcard::from_bytes::<TcpState>(&bytes), Ok(state));
        }
        assert!("ESTABLISH".parse::<TcpState>().is_err());
    }
}
