//! Text forms: the one error type for parsing operator-typed text (`FromStr`), and the serde
//! glue for values that are text to people (JSON) and raw bytes on the wire (postcard).
//!
//! Not for packet parsing: malformed packets are the engine's business and never produce a
//! `ParseError`.

use alloc::string::String;

/// Inputs longer than this are clipped in error messages, so a hostile string cannot make an
/// error message arbitrarily large.
const INPUT_CLIP: usize = 96;

/// Text that could not be parsed as the named kind of value.
///
/// Displays as `bad WHAT "INPUT": REASON`, for example
/// `bad IPv4 CIDR "10.0.0.0/33": prefix length 33 exceeds 32`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad {what} {input:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: ParseReason,
}

impl ParseError {
    /// An error for `input`, which was meant to be a `what`.
    pub fn new(what: &'static str, input: &str, reason: ParseReason) -> Self {
        Self {
            what,
            input: clip(input),
            reason,
        }
    }

    /// The kind of value that was expected, e.g. `"IPv4 address"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The text that was seen (clipped to a bounded length).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why the text was rejected.
    pub fn reason(&self) -> &ParseReason {
        &self.reason
    }

    /// The same reason, reported against an enclosing value: a CIDR whose address part is
    /// bad is reported as a bad CIDR, quoting the whole CIDR.
    pub(crate) fn within(self, what: &'static str, input: &str) -> Self {
        Self::new(what, input, self.reason)
    }
}

/// Why a piece of text was rejected; the `Display` says what was expected and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseReason {
    /// Nothing was given.
    #[error("empty input")]
    Empty,
    /// The text is longer than the value allows.
    #[error("length {len} exceeds the maximum of {max}")]
    TooLong {
        /// The length seen.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// The value has the wrong number of separated parts.
    #[error("expected {expected} {part}, saw {seen}")]
    WrongCount {
        /// What the parts are, e.g. `"octets"`.
        part: &'static str,
        /// How many there must be.
        expected: usize,
        /// How many there were.
        seen: usize,
    },
    /// A required part is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A part is not a number of the required form.
    #[error("{field} {seen:?} is not {expected}")]
    NotNumber {
        /// Which part, e.g. `"octet"`.
        field: &'static str,
        /// The text of that part.
        seen: String,
        /// The form required, e.g. `"a decimal number"`.
        expected: &'static str,
    },
    /// A number is larger than the field allows.
    #[error("{field} {value} exceeds {max}")]
    OutOfRange {
        /// Which field, e.g. `"prefix length"`.
        field: &'static str,
        /// The value seen.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// A DNS label is empty or longer than 63 bytes.
    #[error("label {index} is {len} bytes long; labels are 1 to 63 bytes")]
    Label {
        /// The label's position, counting from 1.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The text breaks a rule of the value's syntax; the message states the rule.
    #[error("{0}")]
    Invalid(&'static str),
}

impl ParseReason {
    /// `NotNumber`, with the offending text clipped to a bounded length.
    pub(crate) fn not_number(field: &'static str, seen: &str, expected: &'static str) -> Self {
        Self::NotNumber {
            field,
            seen: clip(seen),
            expected,
        }
    }
}

/// Parse a decimal number of at most `max`, naming the field in errors.
pub(crate) fn parse_decimal(field: &'static str, s: &str, max: u64) -> Result<u64, ParseReason> {
    let not_number = |expected| ParseReason::not_number(field, s, expected);
    // `u64::from_str` alone would also take a leading '+'.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_number("a decimal number"));
    }
    match s.parse::<u64>() {
        Ok(value) if value <= max => Ok(value),
        Ok(value) => Err(ParseReason::OutOfRange { field, value, max }),
        // All digits, so the only failure left is overflow of u64.
        Err(_) => Err(not_number("a decimal number of a usable size")),
    }
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(INPUT_CLIP) {
        None => String::from(s),
        Some((end, _)) => {
            let mut out = String::from(s.get(..end).unwrap_or_default());
            out.push('…');
            out
        }
    }
}

/// Implements serde for a fixed-size byte value (an address, a VNI): its text form in
/// human-readable formats (JSON, for `opteadm --json`), its raw bytes in compact ones
/// (postcard, where it encodes exactly like a struct holding `[u8; N]`).
///
/// The type must have `bytes(&self) -> [u8; N]`, `Display`, `FromStr<Err: Display>`, and
/// the given constructor from `[u8; N]`.
macro_rules! serde_text_or_bytes {
    ($ty:ty, $n:literal, $from_bytes:path) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    serde::Serialize::serialize(&self.bytes(), s)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = <alloc::string::String as serde::Deserialize>::deserialize(d)?;
                    text.parse().map_err(<D::Error as serde::de::Error>::custom)
                } else {
                    <[u8; $n] as serde::Deserialize>::deserialize(d).map($from_bytes)
                }
            }
        }
    };
}
pub(crate) use serde_text_or_bytes;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parse_error_names_value_input_and_reason() {
        let e = ParseError::new(
            "IPv4 CIDR",
            "10.0.0.0/33",
            ParseReason::OutOfRange {
                field: "prefix length",
                value: 33,
                max: 32,
            },
        );
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"10.0.0.0/33\": prefix length 33 exceeds 32"
        );
        assert_eq!(e.what(), "IPv4 CIDR");
        assert_eq!(e.input(), "10.0.0.0/33");
    }

    #[test]
    fn long_input_is_clipped_in_errors() {
        let long = "x".repeat(1000);
        let e = ParseError::new("VNI", &long, ParseReason::Empty);
        assert_eq!(e.input().chars().count(), INPUT_CLIP + 1);
        assert!(e.input().ends_with('…'));
    }

    #[test]
    fn decimal_rejects_signs_spaces_and_overflow() {
        assert_eq!(parse_decimal("n", "42", 100), Ok(42));
        assert!(matches!(
            parse_decimal("n", "+4", 100),
            Err(ParseReason::NotNumber { .. })
        ));
        assert!(matches!(
            parse_decimal("n", " 4", 100),
            Err(ParseReason::NotNumber { .. })
        ));
        assert!(matches!(
            parse_decimal("n", "", 100),
            Err(ParseReason::NotNumber { .. })
        ));
        assert_eq!(
            parse_decimal("n", "101", 100),
            Err(ParseReason::OutOfRange {
                field: "n",
                value: 101,
                max: 100
            })
        );
        assert!(matches!(
            parse_decimal("n", "99999999999999999999999", 100),
            Err(ParseReason::NotNumber { .. })
        ));
    }
}
