//! The DHCPv4 server of the gateway (RFC 2131, options of RFC 2132): a DHCPDISCOVER gets a
//! DHCPOFFER and a DHCPREQUEST a DHCPACK, for the one address the port leases its guest.
//!
//! The lease is fixed by configuration, so the server keeps no state: every answer is a
//! function of the request and the [`Dhcp4Config`]. Not a general DHCP server: no relay
//! agents, no address pools, no option overload (RFC 2131 option 52) on either side.

use super::{GenErr, HairpinReply, ReplyFrame, ipv4_info, udp_request};
use crate::build::{L3Repr, UlpRepr};
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use crate::wire::ether::{ETHER_TYPE_IPV4, EtherRepr};
use crate::wire::ip4::Ipv4Repr;
use crate::wire::proto;
use crate::wire::udp::UdpRepr;
use alloc::vec::Vec;
use opte_api::{DhcpCfg, Ipv4Addr, Ipv4PrefixLen, MacAddr, SubnetRouterPair};
use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// DHCP message types (option 53, RFC 2132 §9.6).
pub mod msg_type {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
}

/// The option codes this server reads or writes.
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS_SERVERS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    /// RFC 3397.
    pub const DOMAIN_SEARCH: u8 = 119;
    /// RFC 3442.
    pub const CLASSLESS_ROUTES: u8 = 121;
    pub const END: u8 = 255;
}

/// The lease time offered, in seconds (one day). The lease never really ends: the address
/// belongs to the guest for the port's life, and renewals are always acknowledged.
pub const LEASE_SECS: u32 = 86_400;
/// At most this many DNS servers are offered, the first of the configuration's list.
pub const MAX_DNS_SERVERS: usize = 3;
pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
const FLAG_BROADCAST: u16 = 0x8000;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The longest option body; longer values are split into consecutive options (RFC 3396).
const MAX_OPTION_LEN: usize = 255;
/// RFC 1542 §2.1: relay agents and old clients may drop BOOTP messages shorter than 300
/// octets, so replies are padded to it.
const MIN_MESSAGE_LEN: usize = 300;
const REPLY_TTL: u8 = 64;

/// The fixed part of a BOOTP/DHCP message (RFC 2131 §2), magic cookie included.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BootpHdr {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: [u8; 4],
    pub secs: U16,
    pub flags: U16,
    pub ciaddr: [u8; 4],
    pub yiaddr: [u8; 4],
    pub siaddr: [u8; 4],
    pub giaddr: [u8; 4],
    pub chaddr: [u8; 16],
    pub sname: [u8; 64],
    pub file: [u8; 128],
    pub magic: [u8; 4],
}

impl BootpHdr {
    pub const LEN: usize = 240;
}

/// A DHCP message from a client: the fixed header, checked, and an option list that has been
/// walked once and found to be well formed.
#[derive(Clone, Copy, Debug)]
pub struct Dhcp4Message<'a> {
    pub hdr: &'a BootpHdr,
    options: &'a [u8],
}

impl<'a> Dhcp4Message<'a> {
    /// Check the length and magic cookie, and that every option lies within the message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, GenErr> {
        let (hdr, options) = BootpHdr::ref_from_prefix(bytes)
            .map_err(|_| GenErr::Malformed("DHCP message shorter than its 240-byte header"))?;
        if hdr.magic != MAGIC_COOKIE {
            return Err(GenErr::Malformed("DHCP magic cookie is not 99.130.83.99"));
        }
        let msg = Self { hdr, options };
        for o in msg.options() {
            o?;
        }
        Ok(msg)
    }

    /// The options in order, pads skipped, up to the End option or the message's end.
    pub fn options(&self) -> Dhcp4Options<'a> {
        Dhcp4Options { rest: self.options }
    }

    /// The body of the first option with this code.
    pub fn option(&self, code: u8) -> Option<&'a [u8]> {
        self.options()
            .filter_map(Result::ok)
            .find_map(|(c, data)| (c == code).then_some(data))
    }

    /// The DHCP message type; `None` for a plain BOOTP message.
    pub fn message_type(&self) -> Option<u8> {
        match self.option(opt::MESSAGE_TYPE)? {
            [t] => Some(*t),
            _ => None,
        }
    }

    fn option_addr(&self, code: u8) -> Option<Ipv4Addr> {
        let b: [u8; 4] = self.option(code)?.try_into().ok()?;
        Some(Ipv4Addr::from_const(b))
    }
}

/// Iterates DHCP options as `(code, body)`; a malformed option is yielded as an error once,
/// and ends the walk.
pub struct Dhcp4Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Dhcp4Options<'a> {
    type Item = Result<(u8, &'a [u8]), GenErr>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, tail) = self.rest.split_first()?;
            match code {
                opt::PAD => self.rest = tail,
                opt::END => {
                    self.rest = &[];
                    return None;
                }
                _ => {
                    let data = tail
                        .split_first()
                        .and_then(|(&len, d)| d.get(..usize::from(len)).map(|b| (b, len)));
                    let Some((data, len)) = data else {
                        self.rest = &[];
                        return Some(Err(GenErr::Malformed(
                            "DHCP option runs past the end of the message",
                        )));
                    };
                    self.rest = tail.get(1 + usize::from(len)..).unwrap_or(&[]);
                    return Some(Ok((code, data)));
                }
            }
        }
    }
}

/// The DHCPv4 message type of a UDP payload, for the data predicate: `None` unless the
/// payload is a well-formed DHCP message with a one-byte option 53.
pub fn dhcp4_message_type(body: &[u8]) -> Option<u8> {
    Dhcp4Message::parse(body).ok()?.message_type()
}

/// What the server leases and tells its one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp4Config {
    pub client_mac: MacAddr,
    pub client_ip: Ipv4Addr,
    pub gw_mac: MacAddr,
    pub gw_ip: Ipv4Addr,
    /// The prefix length of the subnet mask option.
    pub prefix_len: Ipv4PrefixLen,
    /// Classless static routes (option 121), in order.
    pub routes: Vec<SubnetRouterPair>,
    pub cfg: DhcpCfg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReplyKind {
    Offer,
    Ack,
    /// The client asked for an address that is not its own (it moved, say).
    Nak,
}

impl ReplyKind {
    const fn msg_type(self) -> u8 {
        match self {
            Self::Offer => msg_type::OFFER,
            Self::Ack => msg_type::ACK,
            Self::Nak => msg_type::NAK,
        }
    }
}

/// Answer a DHCP client message: Offer for Discover, Ack for Request (Nak if it asks for an
/// address other than the client's), and no reply for other types, plain BOOTP, requests
/// on behalf of another hardware address, or a Request that selected another server.
pub fn gen_dhcp4_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &Dhcp4Config,
) -> Result<HairpinReply, GenErr> {
    ipv4_info(meta)?;
    let udp = udp_request(pkt, meta)?;
    if udp.dst_port != SERVER_PORT {
        return Err(GenErr::Unexpected(
            "UDP destination port is not 67 (DHCP server)",
        ));
    }
    let req = Dhcp4Message::parse(&udp.payload)?;
    let h = req.hdr;
    if h.op != BOOTREQUEST {
        return Err(GenErr::Malformed("BOOTP op is not BOOTREQUEST (1)"));
    }
    if h.htype != HTYPE_ETHERNET || h.hlen != 6 {
        return Err(GenErr::Malformed(
            "BOOTP hardware type is not Ethernet (htype 1, hlen 6)",
        ));
    }
    if h.chaddr.get(..6) != Some(&cfg.client_mac.bytes()[..]) {
        return Ok(HairpinReply::NoReply);
    }
    let kind = match req.message_type() {
        Some(msg_type::DISCOVER) => ReplyKind::Offer,
        Some(msg_type::REQUEST) => {
            if req
                .option_addr(opt::SERVER_ID)
                .is_some_and(|s| s != cfg.gw_ip)
            {
                return Ok(HairpinReply::NoReply);
            }
            let ciaddr = Ipv4Addr::from_const(h.ciaddr);
            let wrong_ciaddr = !ciaddr.is_unspecified() && ciaddr != cfg.client_ip;
            let wrong_requested = req
                .option_addr(opt::REQUESTED_IP)
                .is_some_and(|a| a != cfg.client_ip);
            if wrong_ciaddr || wrong_requested {
                ReplyKind::Nak
            } else {
                ReplyKind::Ack
            }
        }
        _ => return Ok(HairpinReply::NoReply),
    };

    // RFC 2131 §4.1 (no relay agent): a Nak, or a reply to a client that asked for broadcast
    // and has no address yet, is broadcast; anything else goes to the client's address.
    let broadcast = kind == ReplyKind::Nak
        || (h.flags.get() & FLAG_BROADCAST != 0 && Ipv4Addr::from_const(h.ciaddr).is_unspecified());
    let (eth_dst, ip_dst) = if broadcast {
        (MacAddr::BROADCAST, Ipv4Addr::LOCAL_BCAST)
    } else {
        (cfg.client_mac, cfg.client_ip)
    };
    let mut ip = Ipv4Repr::new(cfg.gw_ip, ip_dst, proto::UDP);
    ip.ttl = REPLY_TTL;
    let mut frame = ReplyFrame::new(
        EtherRepr {
            dst: eth_dst,
            src: cfg.gw_mac,
            ether_type: ETHER_TYPE_IPV4,
            vlan: meta.eth.vlan,
        },
        L3Repr::Ipv4(ip),
        UlpRepr::Udp(UdpRepr::new(SERVER_PORT, CLIENT_PORT)),
        reply_capacity(kind, cfg),
    );
    let start = frame.body_start();
    put_reply_message(frame.body(), start, &req, kind, cfg);
    Ok(HairpinReply::Reply(frame.finish()?))
}

/// Room for the reply message: the fixed header and every option it may carry (a value
/// longer than 255 bytes needs 2 more bytes per split, which only costs a reallocation).
fn reply_capacity(kind: ReplyKind, cfg: &Dhcp4Config) -> usize {
    // Message type, server id, lease time, subnet mask, router, End.
    let mut opts = 3 + 6 + 6 + 6 + 6 + 1;
    if kind != ReplyKind::Nak {
        let c = &cfg.cfg;
        opts += 2 + 4 * c.dns4_servers.len().min(MAX_DNS_SERVERS);
        opts += 2 + cfg
            .routes
            .iter()
            .map(SubnetRouterPair::encoded_len)
            .sum::<usize>();
        opts += 2 + c.hostname.as_ref().map_or(0, |n| n.name().len());
        opts += 2 + c.host_domain.as_ref().map_or(0, |n| n.name().len());
        opts += 2 + c
            .domain_search_list
            .iter()
            .map(|d| d.encode().len())
            .sum::<usize>();
    }
    MIN_MESSAGE_LEN.max(BootpHdr::LEN + opts)
}

/// Append the BOOTREPLY message to `out`, where it starts at `start`: the fixed header per
/// RFC 2131 table 3, then the options, padded to the minimum length.
fn put_reply_message(
    out: &mut Vec<u8>,
    start: usize,
    req: &Dhcp4Message<'_>,
    kind: ReplyKind,
    cfg: &Dhcp4Config,
) {
    let nak = kind == ReplyKind::Nak;
    let mut chaddr = [0u8; 16];
    if let Some(c) = chaddr.get_mut(..6) {
        c.copy_from_slice(&cfg.client_mac.bytes());
    }
    let leased = |a: Ipv4Addr| if nak { [0; 4] } else { a.bytes() };
    let hdr = BootpHdr {
        op: BOOTREPLY,
        htype: HTYPE_ETHERNET,
        hlen: 6,
        hops: 0,
        xid: req.hdr.xid,
        secs: U16::new(0),
        flags: req.hdr.flags,
        // Table 3: the client's ciaddr is echoed in an Ack only.
        ciaddr: if kind == ReplyKind::Ack {
            req.hdr.ciaddr
        } else {
            [0; 4]
        },
        yiaddr: leased(cfg.client_ip),
        siaddr: leased(cfg.gw_ip),
        giaddr: req.hdr.giaddr,
        chaddr,
        sname: [0; 64],
        file: [0; 128],
        magic: MAGIC_COOKIE,
    };
    out.extend_from_slice(hdr.as_bytes());
    put_reply_options(out, kind, cfg);
    if out.len() < start + MIN_MESSAGE_LEN {
        out.resize(start + MIN_MESSAGE_LEN, opt::PAD);
    }
}

/// The reply's options, ending with End. Offer and Ack carry the whole configuration; a Nak
/// only says what it is and who sent it (RFC 2131 table 3).
fn put_reply_options(out: &mut Vec<u8>, kind: ReplyKind, cfg: &Dhcp4Config) {
    put_option(out, opt::MESSAGE_TYPE, &[kind.msg_type()]);
    put_option(out, opt::SERVER_ID, &cfg.gw_ip.bytes());
    if kind != ReplyKind::Nak {
        put_option(out, opt::LEASE_TIME, &LEASE_SECS.to_be_bytes());
        put_option(out, opt::SUBNET_MASK, &cfg.prefix_len.to_mask().bytes());
        put_option(out, opt::ROUTER, &cfg.gw_ip.bytes());
        put_config_options(out, cfg);
    }
    out.push(opt::END);
}

/// DNS servers, then the "additional" options: classless routes, hostname, domain name and
/// domain search list, each left out when the configuration has nothing for it. Values are
/// written straight into the reply.
fn put_config_options(out: &mut Vec<u8>, cfg: &Dhcp4Config) {
    put_option_with(out, opt::DNS_SERVERS, |out| {
        for a in cfg.cfg.dns4_servers.iter().take(MAX_DNS_SERVERS) {
            out.extend_from_slice(&a.bytes());
        }
    });
    put_option_with(out, opt::CLASSLESS_ROUTES, |out| {
        for r in &cfg.routes {
            r.encode_into(out);
        }
    });
    // Options 12 and 15 are NVT ASCII text (RFC 2132 §3.14, §3.17), without a root dot.
    if let Some(h) = &cfg.cfg.hostname {
        put_option(out, opt::HOSTNAME, text_name(h.name()));
    }
    if let Some(d) = &cfg.cfg.host_domain {
        put_option(out, opt::DOMAIN_NAME, text_name(d.name()));
    }
    // Option 119 is RFC 1035 wire form, names concatenated (RFC 3397 §2, no compression).
    put_option_with(out, opt::DOMAIN_SEARCH, |out| {
        for d in &cfg.cfg.domain_search_list {
            out.extend_from_slice(d.encode());
        }
    });
}

fn text_name(name: &str) -> &[u8] {
    name.strip_suffix('.').unwrap_or(name).as_bytes()
}

/// Append an option; an empty value is left out, and a value longer than 255 bytes is split
/// into consecutive options of the same code, which the client concatenates (RFC 3396).
fn put_option(out: &mut Vec<u8>, code: u8, data: &[u8]) {
    for chunk in data.chunks(MAX_OPTION_LEN) {
        out.push(code);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// As [`put_option`], for a value that `write` appends to `out`.
fn put_option_with(out: &mut Vec<u8>, code: u8, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[code, 0]);
    write(out);
    let len = out.len() - start - 2;
    match u8::try_from(len) {
        Ok(0) => out.truncate(start),
        Ok(l) => {
            if let Some(f) = out.get_mut(start + 1) {
                *f = l;
            }
        }
        Err(_) => {
            // Rare: split the value (the one place a reply allocates twice).
            let value = out.split_off(start + 2);
            out.truncate(start);
            put_option(out, code, &value);
        }
    }
}

#[cfg(test)]
mod tests;
