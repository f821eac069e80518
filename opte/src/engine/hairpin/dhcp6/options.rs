//! DHCPv6 options (RFC 8415 §21, DNS servers and domain list of RFC 3646, SNTP servers of
//! RFC 4075, client FQDN of RFC 4704): zero-copy views over a message's bytes, and their
//! emission.
//!
//! An [`Options`] list is walked once when it is made, nested lists included, so that a
//! malformed option anywhere is an error up front; after that, iterating it cannot fail.
//! Nesting (IA_NA and IA_TA hold options, and IAAddr holds options) is limited to
//! [`MAX_DEPTH`] lists, so no message makes the walk recurse without bound.

use crate::engine::hairpin::GenErr;
use alloc::vec::Vec;
use core::fmt;
use opte_api::{Ipv6Addr, MacAddr};

/// Option codes.
pub mod code {
    pub const CLIENT_ID: u16 = 1;
    pub const SERVER_ID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IA_TA: u16 = 4;
    pub const IA_ADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const ELAPSED_TIME: u16 = 8;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
    pub const SNTP_SERVERS: u16 = 31;
    pub const FQDN: u16 = 39;
}

/// Status codes (RFC 8415 §21.13).
pub mod status {
    pub const SUCCESS: u16 = 0;
    pub const UNSPEC_FAIL: u16 = 1;
    pub const NO_ADDRS_AVAIL: u16 = 2;
    pub const NO_BINDING: u16 = 3;
    pub const NOT_ON_LINK: u16 = 4;
    pub const USE_MULTICAST: u16 = 5;
}

/// The most option lists one chain of nesting may hold, the message's own list included.
pub const MAX_DEPTH: usize = 8;
/// Bytes of an option's code and length.
pub const OPTION_HDR_LEN: usize = 4;
/// DUID type 3, link-layer address (RFC 8415 §11.4).
pub const DUID_TYPE_LL: u16 = 3;
/// Hardware type 1, Ethernet (RFC 826).
pub const HW_TYPE_ETHERNET: u16 = 1;

/// A DHCPv6 message or option that breaks the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dhcp6Error {
    /// Shorter than the 4-byte message type and transaction id.
    ShortMessage { len: usize },
    /// An option header or body runs past the end of the bytes that hold it.
    Truncated { code: u16, need: usize, have: usize },
    /// An option's length breaks its format's rule (`expected` says which).
    BadLength {
        code: u16,
        len: usize,
        expected: &'static str,
    },
    /// Options nested in more than [`MAX_DEPTH`] lists.
    ExceededMaxDepth,
    /// An option body to emit does not fit the 16-bit length field.
    TooLong { code: u16, len: usize },
}

impl Dhcp6Error {
    /// A fixed description, for [`GenErr`].
    pub const fn detail(&self) -> &'static str {
        match self {
            Self::ShortMessage { .. } => "DHCPv6 message shorter than its 4-byte header",
            Self::Truncated { .. } => "DHCPv6 option runs past the end of its container",
            Self::BadLength { .. } => "DHCPv6 option length breaks its format",
            Self::ExceededMaxDepth => "DHCPv6 options nested more than 8 deep",
            Self::TooLong { .. } => "DHCPv6 reply option longer than 65535 bytes",
        }
    }
}

impl fmt::Display for Dhcp6Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortMessage { len } => {
                write!(f, "DHCPv6 message is {len} bytes, need at least 4")
            }
            Self::Truncated { code, need, have } => write!(
                f,
                "DHCPv6 option {code}: needs {need} bytes, {have} left in its container"
            ),
            Self::BadLength {
                code,
                len,
                expected,
            } => write!(f, "DHCPv6 option {code}: length {len}, expected {expected}"),
            Self::ExceededMaxDepth => {
                write!(f, "DHCPv6 options nested in more than {MAX_DEPTH} lists")
            }
            Self::TooLong { code, len } => {
                write!(
                    f,
                    "DHCPv6 option {code}: {len} bytes do not fit a 16-bit length"
                )
            }
        }
    }
}

impl From<Dhcp6Error> for GenErr {
    fn from(e: Dhcp6Error) -> Self {
        match e {
            Dhcp6Error::TooLong { .. } => Self::Unexpected(e.detail()),
            _ => Self::Malformed(e.detail()),
        }
    }
}

fn bad_len(code: u16, len: usize, expected: &'static str) -> Dhcp6Error {
    Dhcp6Error::BadLength {
        code,
        len,
        expected,
    }
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map_or(0, u16::from_be_bytes)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// A DHCP Unique Identifier: type code and identifier, 3 to 130 bytes (RFC 8415 §11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duid<'a>(&'a [u8]);

impl<'a> Duid<'a> {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 130;

    pub fn new(bytes: &'a [u8], code: u16) -> Result<Self, Dhcp6Error> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(bad_len(code, bytes.len(), "3 to 130 (a DUID)"))
        }
    }

    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn duid_type(&self) -> u16 {
        be_u16(self.0, 0)
    }
}

/// The DUID-LL of an Ethernet interface: type 3, hardware type 1, the MAC.
pub fn duid_ll(mac: MacAddr) -> [u8; 10] {
    let mut d = [0u8; 10];
    let (head, addr) = d.split_at_mut(4);
    head.copy_from_slice(&[0, DUID_TYPE_LL as u8, 0, HW_TYPE_ETHERNET as u8]);
    addr.copy_from_slice(&mac.bytes());
    d
}

/// An Identity Association for Non-temporary Addresses (RFC 8415 §21.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaNa<'a> {
    pub iaid: u32,
    pub t1: u32,
    pub t2: u32,
    pub options: Options<'a>,
}

/// An Identity Association for Temporary Addresses (RFC 8415 §21.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaTa<'a> {
    pub iaid: u32,
    pub options: Options<'a>,
}

/// An address inside an IA (RFC 8415 §21.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaAddr<'a> {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
    pub options: Options<'a>,
}

/// The option codes a client asks for (RFC 8415 §21.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionRequest<'a>(&'a [u8]);

impl<'a> OptionRequest<'a> {
    pub fn codes(&self) -> impl Iterator<Item = u16> + 'a {
        self.0.chunks_exact(2).map(|c| be_u16(c, 0))
    }

    pub fn contains(&self, code: u16) -> bool {
        self.codes().any(|c| c == code)
    }
}

/// A status code and its UTF-8 message (RFC 8415 §21.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusCode<'a> {
    pub code: u16,
    pub message: &'a [u8],
}

/// A list of IPv6 addresses (DNS or SNTP servers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpList<'a>(&'a [u8]);

impl<'a> IpList<'a> {
    pub fn addrs(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.0
            .chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok().map(Ipv6Addr::from_const))
    }
}

/// A domain search list: RFC 1035 wire-form names, concatenated (RFC 3646 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainList<'a>(&'a [u8]);

impl<'a> DomainList<'a> {
    /// Check that `bytes` is a run of whole wire-form names: labels of 1 to 63 bytes (no
    /// compression), each name ending with the root label within 255 bytes.
    fn new(bytes: &'a [u8]) -> Result<Self, Dhcp6Error> {
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = split_wire_name(rest)
                .map(|(_, r)| r)
                .ok_or_else(|| bad_len(code::DOMAIN_LIST, bytes.len(), "whole wire-form names"))?;
        }
        Ok(Self(bytes))
    }

    /// Each name in wire form, root label included.
    pub fn wire_names(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            let (name, r) = split_wire_name(rest)?;
            rest = r;
            Some(name)
        })
    }
}

/// The first wire-form name of `b` and what follows it.
fn split_wire_name(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut at = 0;
    loop {
        let len = usize::from(*b.get(at)?);
        if len == 0 {
            let end = at + 1;
            return (end <= 255).then(|| b.split_at_checked(end)).flatten();
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
}

/// The client FQDN option: flags and a (possibly partial) wire-form name (RFC 4704 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fqdn<'a> {
    pub flags: u8,
    pub name: &'a [u8],
}

/// One option, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dhcp6Option<'a> {
    ClientId(Duid<'a>),
    ServerId(Duid<'a>),
    IaNa(IaNa<'a>),
    IaTa(IaTa<'a>),
    IaAddr(IaAddr<'a>),
    OptionRequest(OptionRequest<'a>),
    /// Hundredths of a second since the client began this exchange.
    ElapsedTime(u16),
    StatusCode(StatusCode<'a>),
    RapidCommit,
    DnsServers(IpList<'a>),
    DomainList(DomainList<'a>),
    SntpServers(IpList<'a>),
    Fqdn(Fqdn<'a>),
    /// Any other option, uninterpreted.
    Other {
        code: u16,
        data: &'a [u8],
    },
}

/// The code, body and remainder of the option at the front of `bytes`.
fn split_option(bytes: &[u8]) -> Result<(u16, &[u8], &[u8]), Dhcp6Error> {
    let have = bytes.len();
    if have < OPTION_HDR_LEN {
        let code = if have >= 2 { be_u16(bytes, 0) } else { 0 };
        return Err(Dhcp6Error::Truncated {
            code,
            need: OPTION_HDR_LEN,
            have,
        });
    }
    let code = be_u16(bytes, 0);
    let len = usize::from(be_u16(bytes, 2));
    let data = bytes.get(OPTION_HDR_LEN..OPTION_HDR_LEN + len);
    let rest = bytes.get(OPTION_HDR_LEN + len..);
    match (data, rest) {
        (Some(d), Some(r)) => Ok((code, d, r)),
        _ => Err(Dhcp6Error::Truncated {
            code,
            need: OPTION_HDR_LEN + len,
            have,
        }),
    }
}

impl<'a> Dhcp6Option<'a> {
    /// The option at the front of `bytes` (as at the top of a message), and what follows.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), Dhcp6Error> {
        Self::parse_at(bytes, 0)
    }

    fn parse_at(bytes: &'a [u8], depth: usize) -> Result<(Self, &'a [u8]), Dhcp6Error> {
        let (code, data, rest) = split_option(bytes)?;
        Ok((Self::decode(code, data, depth)?, rest))
    }

    /// Interpret an option body found in a list at `depth`.
    pub(super) fn decode(code: u16, data: &'a [u8], depth: usize) -> Result<Self, Dhcp6Error> {
        let len = data.len();
        let nested = |at: usize| Options::parse_at(data.get(at..).unwrap_or(&[]), depth + 1);
        let ip_list = || {
            if len.is_multiple_of(16) {
                Ok(IpList(data))
            } else {
                Err(bad_len(code, len, "a multiple of 16"))
            }
        };
        Ok(match code {
            code::CLIENT_ID => Self::ClientId(Duid::new(data, code)?),
            code::SERVER_ID => Self::ServerId(Duid::new(data, code)?),
            code::IA_NA => {
                if len < 12 {
                    return Err(bad_len(code, len, "at least 12"));
                }
                Self::IaNa(IaNa {
                    iaid: be_u32(data, 0),
                    t1: be_u32(data, 4),
                    t2: be_u32(data, 8),
                    options: nested(12)?,
                })
            }
            code::IA_TA => {
                if len < 4 {
                    return Err(bad_len(code, len, "at least 4"));
                }
                Self::IaTa(IaTa {
                    iaid: be_u32(data, 0),
                    options: nested(4)?,
                })
            }
            code::IA_ADDR => {
                let addr = data
                    .get(..16)
                    .and_then(|a| <[u8; 16]>::try_from(a).ok())
                    .filter(|_| len >= 24)
                    .ok_or(bad_len(code, len, "at least 24"))?;
                Self::IaAddr(IaAddr {
                    addr: Ipv6Addr::from_const(addr),
                    preferred: be_u32(data, 16),
                    valid: be_u32(data, 20),
                    options: nested(24)?,
                })
            }
            code::ORO => {
                if !len.is_multiple_of(2) {
                    return Err(bad_len(code, len, "a multiple of 2"));
                }
                Self::OptionRequest(OptionRequest(data))
            }
            code::ELAPSED_TIME => {
                if len != 2 {
                    return Err(bad_len(code, len, "2"));
                }
                Self::ElapsedTime(be_u16(data, 0))
            }
            code::STATUS_CODE => {
                if len < 2 {
                    return Err(bad_len(code, len, "at least 2"));
                }
                Self::StatusCode(StatusCode {
                    code: be_u16(data, 0),
                    message: data.get(2..).unwrap_or(&[]),
                })
            }
            code::RAPID_COMMIT => {
                if len != 0 {
                    return Err(bad_len(code, len, "0"));
                }
                Self::RapidCommit
            }
            code::DNS_SERVERS => Self::DnsServers(ip_list()?),
            code::SNTP_SERVERS => Self::SntpServers(ip_list()?),
            code::DOMAIN_LIST => Self::DomainList(DomainList::new(data)?),
            code::FQDN => {
                let (&flags, name) = data.split_first().ok_or(bad_len(code, len, "at least 1"))?;
                Self::Fqdn(Fqdn { flags, name })
            }
            _ => Self::Other { code, data },
        })
    }

    pub const fn code(&self) -> u16 {
        match self {
            Self::ClientId(_) => code::CLIENT_ID,
            Self::ServerId(_) => code::SERVER_ID,
            Self::IaNa(_) => code::IA_NA,
            Self::IaTa(_) => code::IA_TA,
            Self::IaAddr(_) => code::IA_ADDR,
            Self::OptionRequest(_) => code::ORO,
            Self::ElapsedTime(_) => code::ELAPSED_TIME,
            Self::StatusCode(_) => code::STATUS_CODE,
            Self::RapidCommit => code::RAPID_COMMIT,
            Self::DnsServers(_) => code::DNS_SERVERS,
            Self::DomainList(_) => code::DOMAIN_LIST,
            Self::SntpServers(_) => code::SNTP_SERVERS,
            Self::Fqdn(_) => code::FQDN,
            Self::Other { code, .. } => *code,
        }
    }

    /// Append the option, header and body, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Dhcp6Error> {
        let code = self.code();
        put_option(out, code, |out| {
            match self {
                Self::ClientId(d) | Self::ServerId(d) => out.extend_from_slice(d.as_bytes()),
                Self::IaNa(ia) => {
                    for v in [ia.iaid, ia.t1, ia.t2] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    out.extend_from_slice(ia.options.as_bytes());
                }
                Self::IaTa(ia) => {
                    out.extend_from_slice(&ia.iaid.to_be_bytes());
                    out.extend_from_slice(ia.options.as_bytes());
                }
                Self::IaAddr(a) => {
                    put_ia_addr_body(out, a.addr, a.preferred, a.valid);
                    out.extend_from_slice(a.options.as_bytes());
                }
                Self::OptionRequest(OptionRequest(b))
                | Self::DnsServers(IpList(b))
                | Self::SntpServers(IpList(b))
                | Self::DomainList(DomainList(b))
                | Self::Other { data: b, .. } => out.extend_from_slice(b),
                Self::ElapsedTime(t) => out.extend_from_slice(&t.to_be_bytes()),
                Self::StatusCode(s) => {
                    out.extend_from_slice(&s.code.to_be_bytes());
                    out.extend_from_slice(s.message);
                }
                Self::RapidCommit => {}
                Self::Fqdn(q) => {
                    out.push(q.flags);
                    out.extend_from_slice(q.name);
                }
            }
            Ok(())
        })
    }
}

/// A well-formed list of options: every option, and every nested list, has been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    bytes: &'a [u8],
    depth: usize,
}

impl<'a> Options<'a> {
    /// A message's top-level option list.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Dhcp6Error> {
        Self::parse_at(bytes, 0)
    }

    fn parse_at(bytes: &'a [u8], depth: usize) -> Result<Self, Dhcp6Error> {
        if depth >= MAX_DEPTH && !bytes.is_empty() {
            return Err(Dhcp6Error::ExceededMaxDepth);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = Dhcp6Option::parse_at(rest, depth)?.1;
        }
        Ok(Self { bytes, depth })
    }

    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter {
            rest: self.bytes,
            depth: self.depth,
        }
    }

    /// The first option with this code.
    pub fn find(&self, code: u16) -> Option<Dhcp6Option<'a>> {
        self.decoded(code).next()
    }

    pub fn contains(&self, code: u16) -> bool {
        self.raw().any(|(c, _)| c == code)
    }

    /// Every option with this code, in order. Only those are decoded: looking for an
    /// option reads just the headers of the others.
    pub fn decoded(self, code: u16) -> impl Iterator<Item = Dhcp6Option<'a>> + 'a {
        let depth = self.depth;
        self.raw()
            .filter(move |(c, _)| *c == code)
            .filter_map(move |(c, data)| Dhcp6Option::decode(c, data, depth).ok())
    }

    /// Each option's code and body, undecoded.
    pub(super) fn raw(self) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        let mut rest = self.bytes;
        // The list was checked when it was made, so splitting never fails; if it did, the
        // walk would just end.
        core::iter::from_fn(move || {
            let (code, data, r) = split_option(rest).ok()?;
            rest = r;
            Some((code, data))
        })
    }
}

impl<'a> IntoIterator for Options<'a> {
    type Item = Dhcp6Option<'a>;
    type IntoIter = OptionIter<'a>;

    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

/// The options of an [`Options`] list, in order.
pub struct OptionIter<'a> {
    rest: &'a [u8],
    depth: usize,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Dhcp6Option<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // The list was checked when it was made, so this never fails; if it did, the walk
        // would just end.
        let (opt, rest) = Dhcp6Option::parse_at(self.rest, self.depth).ok()?;
        self.rest = rest;
        Some(opt)
    }
}

/// Append an option whose body `body` writes, filling in its length afterwards.
pub fn put_option(
    out: &mut Vec<u8>,
    code: u16,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Dhcp6Error>,
) -> Result<(), Dhcp6Error> {
    let start = out.len();
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    body(out)?;
    let len = out.len() - start - OPTION_HDR_LEN;
    let l = u16::try_from(len).map_err(|_| Dhcp6Error::TooLong { code, len })?;
    if let Some(f) = out.get_mut(start + 2..start + 4) {
        f.copy_from_slice(&l.to_be_bytes());
    }
    Ok(())
}

/// Append an option with a ready-made body.
pub fn put_raw(out: &mut Vec<u8>, code: u16, data: &[u8]) -> Result<(), Dhcp6Error> {
    put_option(out, code, |out| {
        out.extend_from_slice(data);
        Ok(())
    })
}

/// The fixed part of an IAAddr body: address, preferred and valid lifetimes.
pub fn put_ia_addr_body(out: &mut Vec<u8>, addr: Ipv6Addr, preferred: u32, valid: u32) {
    out.extend_from_slice(&addr.bytes());
    out.extend_from_slice(&preferred.to_be_bytes());
    out.extend_from_slice(&valid.to_be_bytes());
}

/// Append a Status Code option.
pub fn put_status(out: &mut Vec<u8>, status: u16, message: &str) -> Result<(), Dhcp6Error> {
    put_option(out, code::STATUS_CODE, |out| {
        out.extend_from_slice(&status.to_be_bytes());
        out.extend_from_slice(message.as_bytes());
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests;
