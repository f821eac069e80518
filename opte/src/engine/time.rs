//! Time as the engine sees it: a monotonic [`Moment`] handed in by the host.
//!
//! The engine never reads a clock (DESIGN.md §3): every call that needs "now" takes it as an
//! argument, so tests drive expiry by advancing a number instead of sleeping.

use core::fmt;

/// A point on the host's monotonic clock, in nanoseconds from an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(u64);

impl Moment {
    pub const ZERO: Self = Self(0);

    pub const fn from_nanos(ns: u64) -> Self {
        Self(ns)
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// This moment plus `ms` milliseconds.
    pub const fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }

    /// This moment plus `s` seconds.
    pub const fn plus_secs(self, s: u64) -> Self {
        Self(self.0.saturating_add(s.saturating_mul(1_000_000_000)))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub const fn millis_since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0) / 1_000_000
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn arithmetic_saturates_and_converts() {
        let t = Moment::from_secs(2).plus_millis(500);
        assert_eq!(t.as_millis(), 2500);
        assert_eq!(t.millis_since(Moment::from_secs(1)), 1500);
        assert_eq!(Moment::from_secs(1).millis_since(t), 0);
        assert_eq!(
            Moment::from_nanos(u64::MAX).plus_secs(1).as_nanos(),
            u64::MAX
        );
        assert_eq!(t.to_string(), "2.500000000s");
    }
}
