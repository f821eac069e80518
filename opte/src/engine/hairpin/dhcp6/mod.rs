//! The DHCPv6 server of the gateway (RFC 8415): it leases the port's IPv6 addresses to its
//! one client and hands out DNS servers, a domain search list and the client's FQDN.
//!
//! Stateless in the engine's sense: the lease is configuration, so every answer is a
//! function of the request and the [`Dhcp6Config`]. Handled: Solicit (Advertise, or Reply
//! with Rapid Commit), Request, Renew and Rebind (Reply with the lease), Confirm (Reply with
//! a status) and Information-request (Reply without addresses). Release, Decline, relay
//! messages and server-to-client types get no reply. Not handled: IA_TA and IA_PD (the port
//! has no temporary addresses or prefixes to give), reconfiguration, authentication.

pub mod options;

use self::options::{
    Dhcp6Error, Dhcp6Option, Duid, IaNa, OPTION_HDR_LEN, OptionRequest, Options, code, duid_ll,
    put_ia_addr_body, put_option, put_raw, put_status, status,
};
use super::{GenErr, HairpinReply, ReplyFrame, ipv6_info, udp_request};
use crate::build::{L3Repr, UlpRepr};
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use crate::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use crate::wire::ip6::{Ipv6Hdr, Ipv6Repr};
use crate::wire::proto;
use crate::wire::udp::UdpRepr;
use alloc::vec::Vec;
use opte_api::{AddressInfo, DhcpCfg, Ipv6Addr, MacAddr};

/// Message types (RFC 8415 §7.3).
pub mod msg_type {
    pub const SOLICIT: u8 = 1;
    pub const ADVERTISE: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const CONFIRM: u8 = 4;
    pub const RENEW: u8 = 5;
    pub const REBIND: u8 = 6;
    pub const REPLY: u8 = 7;
    pub const RELEASE: u8 = 8;
    pub const DECLINE: u8 = 9;
    pub const RECONFIGURE: u8 = 10;
    pub const INFORMATION_REQUEST: u8 = 11;
    pub const RELAY_FORW: u8 = 12;
    pub const RELAY_REPL: u8 = 13;
}

pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;
/// FQDN option flags in replies: S (the server updates the AAAA record) and O (it overrode
/// the client's wish), as the reference server sends them.
pub const FQDN_REPLY_FLAGS: u8 = 0x03;
const REPLY_HOP_LIMIT: u8 = 64;

/// A client/server message (RFC 8415 §8): type, transaction id and a checked option list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub msg_type: u8,
    pub xid: [u8; 3],
    pub options: Options<'a>,
    /// What answering asks of the top-level options, found in one walk when parsed so
    /// that no option is looked for twice.
    client_id: Option<Duid<'a>>,
    server_id: Option<Duid<'a>>,
    oro: Option<OptionRequest<'a>>,
    /// Bit `c` is set when an option with code `c` (below 64) is present.
    present: u64,
}

impl<'a> Message<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Dhcp6Error> {
        let short = Dhcp6Error::ShortMessage { len: bytes.len() };
        let (head, opts) = bytes.split_at_checked(4).ok_or(short)?;
        let [msg_type, x0, x1, x2] = <[u8; 4]>::try_from(head).map_err(|_| short)?;
        let mut msg = Self {
            msg_type,
            xid: [x0, x1, x2],
            options: Options::parse(opts)?,
            client_id: None,
            server_id: None,
            oro: None,
            present: 0,
        };
        for (c, data) in msg.options.raw() {
            if c < 64 {
                msg.present |= 1 << c;
            }
            // The first of each counts, as `Options::find` would have it.
            match c {
                code::CLIENT_ID if msg.client_id.is_none() => {
                    msg.client_id = Duid::new(data, c).ok();
                }
                code::SERVER_ID if msg.server_id.is_none() => {
                    msg.server_id = Duid::new(data, c).ok();
                }
                code::ORO if msg.oro.is_none() => {
                    if let Ok(Dhcp6Option::OptionRequest(r)) = Dhcp6Option::decode(c, data, 0) {
                        msg.oro = Some(r);
                    }
                }
                _ => {}
            }
        }
        Ok(msg)
    }

    pub fn client_id(&self) -> Option<Duid<'a>> {
        self.client_id
    }

    pub fn server_id(&self) -> Option<Duid<'a>> {
        self.server_id
    }

    /// Whether the message carries an option with this code.
    pub fn has(&self, code: u16) -> bool {
        if code < 64 {
            self.present & (1 << code) != 0
        } else {
            self.options.contains(code)
        }
    }

    /// Whether the client's Option Request option lists `code`.
    pub fn requests(&self, code: u16) -> bool {
        self.oro.is_some_and(|r| r.contains(code))
    }

    /// Whether the client sent option `code` or asked for it.
    pub fn wants(&self, code: u16) -> bool {
        self.has(code) || self.requests(code)
    }

    pub fn ia_nas(&self) -> impl Iterator<Item = IaNa<'a>> + 'a {
        self.options.decoded(code::IA_NA).filter_map(|o| match o {
            Dhcp6Option::IaNa(ia) => Some(ia),
            _ => None,
        })
    }

    /// The addresses directly inside each IA_NA and IA_TA (RFC 8415 §21.4–21.6): where a
    /// client lists the addresses it has.
    pub fn ia_addrs(&self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.options
            .iter()
            .filter_map(|o| match o {
                Dhcp6Option::IaNa(ia) => Some(ia.options),
                Dhcp6Option::IaTa(ia) => Some(ia.options),
                _ => None,
            })
            .flat_map(|opts| {
                opts.decoded(code::IA_ADDR).filter_map(|o| match o {
                    Dhcp6Option::IaAddr(a) => Some(a.addr),
                    _ => None,
                })
            })
    }
}

/// The DHCPv6 message type of a UDP payload (its first byte), for the data predicate.
pub fn dhcp6_message_type(body: &[u8]) -> Option<u8> {
    body.first().copied()
}

/// What the server leases and tells its one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp6Config {
    pub client_mac: MacAddr,
    /// The server's MAC (the gateway's): its DUID-LL and link-local address derive from it.
    pub server_mac: MacAddr,
    pub addrs: AddressInfo,
    pub cfg: DhcpCfg,
}

/// How a client message is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Advertise or Reply carrying the lease; `renewing` for Renew/Rebind, which also
    /// answers for addresses the client listed.
    Lease {
        reply_type: u8,
        rapid_commit: bool,
        renewing: bool,
    },
    Confirm,
    Information,
}

/// Answer a DHCPv6 client message; see the module documentation for which ones.
pub fn gen_dhcp6_reply(
    pkt: &Packet,
    meta: &InnerMeta,
    cfg: &Dhcp6Config,
) -> Result<HairpinReply, GenErr> {
    let ip = ipv6_info(meta)?;
    let udp = udp_request(pkt, meta)?;
    if udp.dst_port != SERVER_PORT {
        return Err(GenErr::Unexpected(
            "UDP destination port is not 547 (DHCPv6 server)",
        ));
    }
    let client_ip = pkt
        .view::<Ipv6Hdr>(ip.loc)
        .map(|h| Ipv6Addr::from_const(h.src))
        .ok_or(GenErr::Unexpected(
            "the parsed IPv6 header cannot be viewed",
        ))?;
    let msg = Message::parse(&udp.payload)?;
    let server_duid = duid_ll(cfg.server_mac);
    let Some(answer) = classify(&msg, &server_duid)? else {
        return Ok(HairpinReply::NoReply);
    };
    let mut ip6 = Ipv6Repr::new(Ipv6Addr::from_eui64(&cfg.server_mac), client_ip, proto::UDP);
    ip6.hop_limit = REPLY_HOP_LIMIT;
    let headers = (
        EtherRepr {
            dst: cfg.client_mac,
            src: cfg.server_mac,
            ether_type: ETHER_TYPE_IPV6,
            vlan: meta.eth.vlan,
        },
        L3Repr::Ipv6(ip6),
        UlpRepr::Udp(UdpRepr::new(SERVER_PORT, CLIENT_PORT)),
    );
    let new_frame = |cap| ReplyFrame::new(headers.0, headers.1, headers.2, cap);
    let frame = match answer {
        Answer::Lease {
            reply_type,
            rapid_commit,
            renewing,
        } => {
            let mut f = new_frame(reply_capacity(udp.payload.len(), cfg));
            lease_reply(
                f.body(),
                &msg,
                cfg,
                &server_duid,
                reply_type,
                rapid_commit,
                renewing,
            )?;
            f
        }
        Answer::Information => {
            let mut f = new_frame(reply_capacity(udp.payload.len(), cfg));
            info_reply(f.body(), &msg, cfg, &server_duid)?;
            f
        }
        Answer::Confirm => {
            let Some(on_link) = confirm_on_link(&msg, cfg) else {
                return Ok(HairpinReply::NoReply);
            };
            let mut f = new_frame(udp.payload.len() + CONFIRM_STATUS_ROOM);
            confirm_reply(f.body(), &msg, &server_duid, on_link)?;
            f
        }
    };
    Ok(HairpinReply::Reply(frame.finish()?))
}

/// Room for a Confirm reply's status option beyond the echoed client identifier.
const CONFIRM_STATUS_ROOM: usize = 64;

/// Room for a lease or information reply: what it may echo of the request (the client
/// identifier, the IAs and the addresses they list), the server identifier and what the
/// configuration adds. Only the allocation's size depends on it.
fn reply_capacity(request_len: usize, cfg: &Dhcp6Config) -> usize {
    const OPT: usize = OPTION_HDR_LEN;
    let c = &cfg.cfg;
    let names: usize = c.domain_search_list.iter().map(|d| d.encode().len()).sum();
    let fqdn = c.hostname.as_ref().map_or(0, |h| h.encode().len())
        + c.host_domain.as_ref().map_or(0, |d| d.encode().len());
    request_len
        + (OPT + 10)
        + (OPT + 16 * c.dns6_servers.len())
        + (OPT + 24) * cfg.addrs.addrs.len()
        + (OPT + names)
        + (OPT + 1 + fqdn)
}

/// Check a message against the rules for its type (RFC 8415 §16) and decide the answer:
/// `Err` for a message the RFC says to discard as invalid, `None` for a valid message this
/// server does not answer.
fn classify(msg: &Message<'_>, server_duid: &[u8]) -> Result<Option<Answer>, GenErr> {
    let ours = msg.server_id().map(|d| d.as_bytes() == server_duid);
    let lease = |reply_type, rapid_commit, renewing| Answer::Lease {
        reply_type,
        rapid_commit,
        renewing,
    };
    let answer = match msg.msg_type {
        msg_type::SOLICIT => {
            refuse_server_id(ours)?;
            require_client(msg)?;
            let rapid = msg.wants(code::RAPID_COMMIT);
            let reply_type = if rapid {
                msg_type::REPLY
            } else {
                msg_type::ADVERTISE
            };
            lease(reply_type, rapid, false)
        }
        msg_type::REQUEST | msg_type::RENEW => {
            match ours {
                None => {
                    return Err(GenErr::Malformed(
                        "DHCPv6 Request/Renew lacks a Server Identifier",
                    ));
                }
                Some(false) => return Ok(None),
                Some(true) => {}
            }
            require_client(msg)?;
            lease(msg_type::REPLY, false, msg.msg_type == msg_type::RENEW)
        }
        msg_type::REBIND => {
            refuse_server_id(ours)?;
            require_client(msg)?;
            lease(msg_type::REPLY, false, true)
        }
        msg_type::CONFIRM => {
            refuse_server_id(ours)?;
            require_client(msg)?;
            Answer::Confirm
        }
        msg_type::INFORMATION_REQUEST => {
            if ours == Some(false) {
                return Ok(None);
            }
            if msg.has(code::IA_NA) || msg.has(code::IA_TA) {
                return Err(GenErr::Malformed(
                    "DHCPv6 Information-request carries an IA option",
                ));
            }
            Answer::Information
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}

fn refuse_server_id(ours: Option<bool>) -> Result<(), GenErr> {
    match ours {
        Some(_) => Err(GenErr::Malformed(
            "DHCPv6 Solicit/Confirm/Rebind carries a Server Identifier",
        )),
        None => Ok(()),
    }
}

/// Clients identify themselves and say how long they have been trying (RFC 8415 §18.2).
fn require_client(msg: &Message<'_>) -> Result<(), GenErr> {
    if msg.client_id().is_none() {
        return Err(GenErr::Malformed(
            "DHCPv6 client message lacks a Client Identifier",
        ));
    }
    if !msg.has(code::ELAPSED_TIME) {
        return Err(GenErr::Malformed(
            "DHCPv6 client message lacks an Elapsed Time option",
        ));
    }
    Ok(())
}

/// Message type, transaction id, Server Identifier and (if the client sent one) its Client
/// Identifier, echoed.
fn put_reply_head(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    reply_type: u8,
    server_duid: &[u8],
) -> Result<(), Dhcp6Error> {
    out.push(reply_type);
    out.extend_from_slice(&msg.xid);
    put_raw(out, code::SERVER_ID, server_duid)?;
    if let Some(c) = msg.client_id() {
        put_raw(out, code::CLIENT_ID, c.as_bytes())?;
    }
    Ok(())
}

fn put_dns(out: &mut Vec<u8>, msg: &Message<'_>, cfg: &DhcpCfg) -> Result<(), Dhcp6Error> {
    if msg.requests(code::DNS_SERVERS) && !cfg.dns6_servers.is_empty() {
        put_option(out, code::DNS_SERVERS, |out| {
            for a in &cfg.dns6_servers {
                out.extend_from_slice(&a.bytes());
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The domain search list and the client's FQDN, when the client sent or asked for them
/// and there is something to say.
fn put_names(out: &mut Vec<u8>, msg: &Message<'_>, cfg: &DhcpCfg) -> Result<(), Dhcp6Error> {
    if msg.wants(code::DOMAIN_LIST) && !cfg.domain_search_list.is_empty() {
        put_option(out, code::DOMAIN_LIST, |out| {
            for d in &cfg.domain_search_list {
                out.extend_from_slice(d.encode());
            }
            Ok(())
        })?;
    }
    if msg.wants(code::FQDN) && cfg.hostname.is_some() {
        put_option(out, code::FQDN, |out| {
            out.push(FQDN_REPLY_FLAGS);
            cfg.push_fqdn(out);
            Ok(())
        })?;
    }
    Ok(())
}

/// Advertise or Reply with the lease: the first IA_NA the client sent gets every leased
/// address with T1 = T2 = the renew time; a further IA_NA gets none (NoAddrsAvail, or
/// NoBinding when renewing). Renewing, an address the client listed that is not leased to
/// it is returned with zero lifetimes so that it stops using it (RFC 8415 §18.3.4).
fn lease_reply(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    cfg: &Dhcp6Config,
    server_duid: &[u8],
    reply_type: u8,
    rapid_commit: bool,
    renewing: bool,
) -> Result<(), Dhcp6Error> {
    put_reply_head(out, msg, reply_type, server_duid)?;
    if rapid_commit {
        put_raw(out, code::RAPID_COMMIT, &[])?;
    }
    put_dns(out, msg, &cfg.cfg)?;
    let leased = &cfg.addrs.addrs;
    for (i, ia) in msg.ia_nas().enumerate() {
        put_option(out, code::IA_NA, |out| {
            out.extend_from_slice(&ia.iaid.to_be_bytes());
            out.extend_from_slice(&cfg.addrs.renew.to_be_bytes());
            out.extend_from_slice(&cfg.addrs.renew.to_be_bytes());
            if i > 0 || leased.is_empty() {
                let (s, m) = if renewing {
                    (status::NO_BINDING, "no binding for this IA")
                } else {
                    (status::NO_ADDRS_AVAIL, "no addresses for this IA")
                };
                return put_status(out, s, m);
            }
            for l in leased {
                put_option(out, code::IA_ADDR, |out| {
                    put_ia_addr_body(out, l.addr(), l.preferred(), l.valid());
                    Ok(())
                })?;
            }
            if renewing {
                let stale = ia.options.iter().filter_map(|o| match o {
                    Dhcp6Option::IaAddr(a) if !leased.iter().any(|l| l.addr() == a.addr) => {
                        Some(a.addr)
                    }
                    _ => None,
                });
                for addr in stale {
                    put_option(out, code::IA_ADDR, |out| {
                        put_ia_addr_body(out, addr, 0, 0);
                        Ok(())
                    })?;
                }
            }
            Ok(())
        })?;
    }
    put_names(out, msg, &cfg.cfg)
}

/// Reply to an Information-request: configuration, no addresses.
fn info_reply(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    cfg: &Dhcp6Config,
    server_duid: &[u8],
) -> Result<(), Dhcp6Error> {
    put_reply_head(out, msg, msg_type::REPLY, server_duid)?;
    put_dns(out, msg, &cfg.cfg)?;
    put_names(out, msg, &cfg.cfg)
}

/// Whether every address the client lists in its IAs is one leased to it; `None` if it
/// lists none (a Confirm that gets no reply at all, RFC 8415 §18.3.3).
fn confirm_on_link(msg: &Message<'_>, cfg: &Dhcp6Config) -> Option<bool> {
    let mut listed = msg.ia_addrs().peekable();
    listed.peek()?;
    let leased = &cfg.addrs.addrs;
    Some(listed.all(|a| leased.iter().any(|l| l.addr() == a)))
}

/// Reply to a Confirm (RFC 8415 §18.3.3): Success if the addresses are on link, NotOnLink
/// otherwise.
fn confirm_reply(
    out: &mut Vec<u8>,
    msg: &Message<'_>,
    server_duid: &[u8],
    on_link: bool,
) -> Result<(), Dhcp6Error> {
    put_reply_head(out, msg, msg_type::REPLY, server_duid)?;
    if on_link {
        put_status(out, status::SUCCESS, "all addresses still on link")
    } else {
        put_status(out, status::NOT_ON_LINK, "some addresses are not on link")
    }
}

#[cfg(test)]
mod tests;
