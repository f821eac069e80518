//! DNS domain names, kept both as text and in the RFC 1035 §3.1 wire form that DHCP options
//! carry (hostname, domain, search list).
//!
//! Not a DNS resolver or message parser: compression pointers are refused, not followed.

use crate::text::{ParseError, ParseReason};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// A DNS domain name, e.g. `foo.bar.com` or the fully-qualified `foo.bar.com.`.
///
/// Labels may hold any UTF-8 except `.`; LDH (letters, digits, hyphen) is recommended but
/// not enforced. The text is at most 253 bytes, not counting a final `.`; each label is
/// 1 to 63 bytes, so the wire form is at most 255 bytes.
///
/// Serialises as its text, and deserialising validates it the same way `FromStr` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DomainName {
    // The text as given.
    name: String,
    // Length-prefixed labels ending with the zero-length root label.
    encoded: Vec<u8>,
}

/// Why a wire-form domain name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireNameError {
    /// The buffer was empty.
    #[error("bad wire-form domain name: empty buffer")]
    Empty,
    /// A label length byte above 63 (which includes compression pointers).
    #[error(
        "bad wire-form domain name: label at offset {offset} has length byte {len:#04x}; labels \
         are 1 to 63 bytes and compression pointers are not accepted"
    )]
    BadLabelLength {
        /// Offset of the length byte.
        offset: usize,
        /// The length byte.
        len: u8,
    },
    /// The buffer ended before the zero-length root label.
    #[error("bad wire-form domain name: buffer ends at {len} bytes before the root label")]
    Truncated {
        /// The buffer's length.
        len: usize,
    },
    /// No root label within the first 255 bytes.
    #[error("bad wire-form domain name: longer than 255 bytes")]
    TooLong,
    /// A label was not UTF-8.
    #[error("bad wire-form domain name: label at offset {offset} is not UTF-8")]
    NotUtf8 {
        /// Offset of the label's length byte.
        offset: usize,
    },
    /// A label held a `.`, which the text form cannot express.
    #[error("bad wire-form domain name: label at offset {offset} contains '.'")]
    DotInLabel {
        /// Offset of the label's length byte.
        offset: usize,
    },
    /// Only the root label: no usable name.
    #[error("bad wire-form domain name: only the root label")]
    RootOnly,
}

impl DomainName {
    /// The most bytes of text, not counting a final `.`.
    pub const MAX_TEXT_LEN: usize = 253;
    /// The most bytes of wire form.
    pub const MAX_ENCODED_LEN: usize = 255;
    /// The most bytes in one label.
    pub const MAX_LABEL_LEN: usize = 63;

    /// The text, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The RFC 1035 §3.1 wire form: each label prefixed by its length, then a zero byte.
    ///
    /// `"quuz.bar.com"` encodes as `b"\x04quuz\x03bar\x03com\x00"`.
    pub fn encode(&self) -> &[u8] {
        &self.encoded
    }

    /// Decode the wire-form name at the start of `buf`, returning it and the number of bytes
    /// it took; bytes after the root label are left alone. The text form of a decoded name
    /// is fully qualified (ends with `.`).
    pub fn from_wire(buf: &[u8]) -> Result<(Self, usize), WireNameError> {
        if buf.is_empty() {
            return Err(WireNameError::Empty);
        }
        let mut name = String::new();
        let mut offset = 0;
        loop {
            if offset >= Self::MAX_ENCODED_LEN {
                return Err(WireNameError::TooLong);
            }
            let Some(&len) = buf.get(offset) else {
                return Err(WireNameError::Truncated { len: buf.len() });
            };
            if len == 0 {
                break;
            }
            if usize::from(len) > Self::MAX_LABEL_LEN {
                return Err(WireNameError::BadLabelLength { offset, len });
            }
            let start = offset + 1;
            let end = start + usize::from(len);
            let Some(label) = buf.get(start..end) else {
                return Err(WireNameError::Truncated { len: buf.len() });
            };
            let label =
                core::str::from_utf8(label).map_err(|_| WireNameError::NotUtf8 { offset })?;
            if label.contains('.') {
                return Err(WireNameError::DotInLabel { offset });
            }
            name.push_str(label);
            name.push('.');
            offset = end;
        }
        if name.is_empty() {
            return Err(WireNameError::RootOnly);
        }
        let used = offset + 1;
        let encoded = buf
            .get(..used)
            .map(<[u8]>::to_vec)
            .ok_or(WireNameError::Truncated { len: buf.len() })?;
        Ok((Self { name, encoded }, used))
    }
}

impl TryFrom<&[u8]> for DomainName {
    type Error = WireNameError;

    /// `from_wire`, ignoring any bytes after the name.
    fn try_from(buf: &[u8]) -> Result<Self, Self::Error> {
        Self::from_wire(buf).map(|(name, _)| name)
    }
}

impl FromStr for DomainName {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseError::new("domain name", s, reason);
        if s.is_empty() {
            return Err(err(ParseReason::Empty));
        }
        if s.starts_with('.') {
            return Err(err(ParseReason::Invalid(
                "a domain name may not start with '.'",
            )));
        }
        let relative = s.strip_suffix('.').unwrap_or(s);
        if relative.len() > Self::MAX_TEXT_LEN {
            return Err(err(ParseReason::TooLong {
                len: relative.len(),
                max: Self::MAX_TEXT_LEN,
            }));
        }
        let mut encoded = Vec::with_capacity(relative.len() + 2);
        for (i, label) in relative.split('.').enumerate() {
            let len = label.len();
            let len_byte = u8::try_from(len).ok().filter(|l| (1..=63).contains(l));
            let Some(len_byte) = len_byte else {
                return Err(err(ParseReason::Label { index: i + 1, len }));
            };
            encoded.push(len_byte);
            encoded.extend_from_slice(label.as_bytes());
        }
        encoded.push(0);
        Ok(Self {
            name: String::from(s),
            encoded,
        })
    }
}

impl TryFrom<String> for DomainName {
    type Error = ParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DomainName> for String {
    fn from(name: DomainName) -> Self {
        name.name
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn test_domain_name() {
        let orig = "foo.bar.com";
        let encoded = b"\x03foo\x03bar\x03com\x00";

        let name: DomainName = orig.parse().unwrap();
        assert_eq!(name.to_string(), orig);
        assert_eq!(name.name(), orig);
        assert_eq!(name.encode(), encoded);

        // The wire form decodes to the fully-qualified name with the same encoding.
        let decoded = DomainName::try_from(encoded.as_slice()).unwrap();
        assert_eq!(decoded.name(), "foo.bar.com.");
        assert_eq!(decoded.encode(), encoded);

        // FQDNs encode like their relative form.
        let fqdn: DomainName = "foo.bar.com.".parse().unwrap();
        assert_eq!(fqdn.encode(), encoded);

        // Malformed text.
        assert!("a".repeat(256).parse::<DomainName>().is_err());
        assert!(".foo.bar".parse::<DomainName>().is_err());
        assert!("foo..bar".parse::<DomainName>().is_err());
        assert!("".parse::<DomainName>().is_err());
        assert!(".".parse::<DomainName>().is_err());

        // Malformed wire form.
        assert_eq!(
            DomainName::try_from(b"\xffnonono".as_slice()),
            Err(WireNameError::BadLabelLength {
                offset: 0,
                len: 0xff
            })
        );

        // Trailing bytes are not part of the name.
        let longer = b"\x03foo\x03bar\x03com\x00someextrabytes";
        let (prefix, used) = DomainName::from_wire(longer).unwrap();
        assert_eq!(prefix.name(), "foo.bar.com.");
        assert_eq!(used, 13);
        assert_eq!(prefix.encode(), &longer[..13]);
    }

    #[test]
    fn text_errors_say_which_rule_broke() {
        let e = "foo..bar".parse::<DomainName>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad domain name \"foo..bar\": label 2 is 0 bytes long; labels are 1 to 63 bytes"
        );
        let long_label = alloc::format!("{}.com", "a".repeat(64));
        let e = long_label.parse::<DomainName>().unwrap_err();
        assert_eq!(e.reason(), &ParseReason::Label { index: 1, len: 64 });
        let e = ".foo".parse::<DomainName>().unwrap_err();
        assert_eq!(
            e.reason(),
            &ParseReason::Invalid("a domain name may not start with '.'")
        );
    }

    #[test]
    fn length_limits_line_up_between_text_and_wire() {
        // 4 labels of 63 plus 3 dots = 255 > 253.
        let label = "a".repeat(63);
        let too_long = [label.as_str(); 4].join(".");
        let e = too_long.parse::<DomainName>().unwrap_err();
        assert_eq!(e.reason(), &ParseReason::TooLong { len: 255, max: 253 });

        // The longest name: 253 bytes of text, 255 of wire form, and it round-trips.
        let longest = alloc::format!("{}.{}", [label.as_str(); 3].join("."), "b".repeat(61));
        assert_eq!(longest.len(), 253);
        let name: DomainName = longest.parse().unwrap();
        assert_eq!(name.encode().len(), 255);
        let back = DomainName::try_from(name.encode()).unwrap();
        assert_eq!(back.encode(), name.encode());
        assert_eq!(
            back.name().parse::<DomainName>().unwrap().encode(),
            name.encode()
        );
        assert!(alloc::format!("{longest}.").parse::<DomainName>().is_ok());
    }

    #[test]
    fn bad_wire_forms() {
        assert_eq!(DomainName::try_from(&[][..]), Err(WireNameError::Empty));
        assert_eq!(DomainName::try_from(&[0][..]), Err(WireNameError::RootOnly));
        assert_eq!(
            DomainName::try_from(&b"\x03fo"[..]),
            Err(WireNameError::Truncated { len: 3 })
        );
        assert_eq!(
            DomainName::try_from(&b"\x03foo"[..]),
            Err(WireNameError::Truncated { len: 4 })
        );
        assert_eq!(
            DomainName::try_from(&b"\x03f.o\x00"[..]),
            Err(WireNameError::DotInLabel { offset: 0 })
        );
        assert_eq!(
            DomainName::try_from(&b"\x02\xff\xfe\x00"[..]),
            Err(WireNameError::NotUtf8 { offset: 0 })
        );
        // Compression pointer.
        assert!(matches!(
            DomainName::try_from(&b"\x03foo\xc0\x0c"[..]),
            Err(WireNameError::BadLabelLength {
                offset: 4,
                len: 0xc0
            })
        ));
        // Five 63-byte labels never reach a root label within 255 bytes.
        let mut huge = alloc::vec::Vec::new();
        for _ in 0..5 {
            huge.push(63);
            huge.extend_from_slice(&[b'a'; 63]);
        }
        huge.push(0);
        assert_eq!(
            DomainName::try_from(huge.as_slice()),
            Err(WireNameError::TooLong)
        );
    }

    #[test]
    fn serde_carries_text_and_validates() {
        let name: DomainName = "oxide.computer".parse().unwrap();
        let bytes = postcard::to_allocvec(&name).unwrap();
        assert_eq!(bytes, b"\x0eoxide.computer");
        assert_eq!(postcard::from_bytes::<DomainName>(&bytes), Ok(name));
        assert!(postcard::from_bytes::<DomainName>(b"\x08foo..bar").is_err());
    }
}
