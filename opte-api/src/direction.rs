//! The direction a packet travels through a port.

use crate::text::{ParseError, ParseReason};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// The direction a packet travels through a port.
///
/// `Out` is guest → network, `In` is network → guest. The numeric discriminants (1, 2) are
/// the ones probes report; postcard encodes the variant index (0, 1). Displays as `IN` /
/// `OUT`; parses `in` / `out` in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Direction {
    /// Network → guest.
    In = 1,
    /// Guest → network.
    Out = 2,
}

impl Direction {
    /// The other direction.
    pub const fn opposite(self) -> Self {
        match self {
            Self::In => Self::Out,
            Self::Out => Self::In,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "IN",
            Self::Out => "OUT",
        })
    }
}

impl FromStr for Direction {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("in") {
            Ok(Self::In)
        } else if s.eq_ignore_ascii_case("out") {
            Ok(Self::Out)
        } else {
            Err(ParseError::new(
                "direction",
                s,
                ParseReason::Invalid("expected \"in\" or \"out\""),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn direction_text_round_trips_case_insensitively() {
        assert_eq!("in".parse(), Ok(Direction::In));
        assert_eq!("IN".parse(), Ok(Direction::In));
        assert_eq!("Out".parse(), Ok(Direction::Out));
        assert_eq!(Direction::In.to_string(), "IN");
        assert_eq!(Direction::Out.to_string(), "OUT");
        for d in [Direction::In, Direction::Out] {
            assert_eq!(d.to_string().parse(), Ok(d));
        }
        let e = "inbound".parse::<Direction>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad direction \"inbound\": expected \"in\" or \"out\""
        );
    }

    #[test]
    fn direction_numbers_and_postcard_index() {
        assert_eq!(Direction::In as u8, 1);
        assert_eq!(Direction::Out as u8, 2);
        assert_eq!(postcard::to_allocvec(&Direction::In).unwrap(), [0]);
        assert_eq!(postcard::to_allocvec(&Direction::Out).unwrap(), [1]);
        assert_eq!(postcard::from_bytes::<Direction>(&[1]), Ok(Direction::Out));
        assert!(postcard::from_bytes::<Direction>(&[2]).is_err());
        assert_eq!(Direction::In.opposite(), Direction::Out);
    }
}
