//! The datapath: [`Xde::tx`] for a frame a guest sent, [`Xde::rx`] for a frame from an
//! underlay link. Each pushes what the OS must do onto `out` ([`Emit`]); a packet that is
//! dropped is counted (by the host here, or by the port that dropped it) and emits nothing.
//!
//! - Tx (SPEC §7.5): parse, process outbound, then by the encapsulation the port pushed:
//!   to an underlay group → multicast (local subscribers, then forwarding next hops);
//!   to this sled → guest loopback (the destination port's inbound path, never the wire);
//!   else → the underlay link and Ethernet addresses the route cache gives.
//!   A hairpin reply goes back to the sending guest.
//! - Rx (SPEC §7.8): parse as Geneve; a frame that does not parse, or whose (VNI, inner
//!   MAC) names no port, goes back to the OS; underlay multicast goes to each subscriber
//!   whose source filter allows it (never forwarded again); otherwise the port's inbound
//!   path.

use crate::core::{PortMap, Xde};
use crate::host::{Host, Link};
use crate::port::{VniMac, XdePort};
use crate::probes::host::{self as probes, Mcast};
use crate::stats::{add, bump};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::parse::parse_network;
use opte::packet::parse::{L3Info, UlpKind};
use opte::packet::{EncapInfo, Gso, GsoKind, Offload, Packet};
use opte_api::{Direction, IpAddr, MulticastUnderlay};
use oxide_vpc::api::Replication;

/// Offset of the outer Ethernet addresses (destination, then source) in an encapsulated
/// frame, and of the Geneve VNI.
const OUTER_DST_MAC: usize = 0;
const OUTER_SRC_MAC: usize = 6;
const GENEVE_VNI_AT: usize = 14 + 40 + 8 + 4;

/// What the OS must do with a packet.
pub enum Emit {
    /// Send it on underlay `link`; its outer Ethernet addresses are filled in.
    Underlay { link: Link, pkt: Packet },
    /// Hand it to the guest of local port `port`.
    Guest { port: Arc<XdePort>, pkt: Packet },
    /// Not ours: give it back to the OS's own network stack.
    NotOurs(Packet),
    /// Finished with: dropped (and counted), or answered with a frame of its own (a
    /// hairpin). Its buffers are the host's to reuse (a daemon's pool, say).
    Spent(Packet),
}

fn set_macs(pkt: &mut Packet, dst: opte_api::MacAddr, src: opte_api::MacAddr) -> bool {
    let Some(seg) = pkt.segment_mut(0) else {
        return false;
    };
    match seg.data_mut().get_mut(OUTER_DST_MAC..OUTER_SRC_MAC + 6) {
        Some(macs) => {
            let (d, s) = macs.split_at_mut(6);
            d.copy_from_slice(&dst.bytes());
            s.copy_from_slice(&src.bytes());
            true
        }
        None => false,
    }
}

/// A guest's TCP super-frame bound for another guest: its MSS goes in the Geneve MSS
/// option the encapsulation left for it (SPEC §7.5), so the receiving sled can present the
/// segments to its guest as one frame cut at that size.
fn write_guest_mss(pkt: &mut Packet, enc: &EncapInfo) {
    let (Some(at), Some(gso)) = (enc.mss_at, pkt.offload().gso) else {
        return;
    };
    if matches!(gso.kind, GsoKind::TcpV4 | GsoKind::TcpV6) && gso.size > 0 {
        let at = usize::from(at);
        if let Some(b) = pkt
            .segment_mut(0)
            .and_then(|s| s.data_mut().get_mut(at..at + 4))
        {
            b.copy_from_slice(&u32::from(gso.size).to_be_bytes());
        }
    }
}

/// The segmentation an inbound TCP packet's Geneve MSS option asks for (SPEC §7.8): the
/// sending guest's MSS, which the host cuts (or presents) its payload at.
fn gso_of_mss(n: &opte::packet::parse::NetworkMeta) -> Option<Gso> {
    let mss = u16::try_from(n.outer.geneve.mss?).ok().filter(|m| *m > 0)?;
    let kind = match (n.inner.ulp?.kind, n.inner.l3?) {
        (UlpKind::Tcp, L3Info::Ipv4(_)) => GsoKind::TcpV4,
        (UlpKind::Tcp, L3Info::Ipv6(_)) => GsoKind::TcpV6,
        _ => return None,
    };
    Some(Gso { kind, size: mss })
}

/// What a sent packet still needs after its port's lock is let go.
enum After {
    Nothing,
    /// For another port of this host.
    Loopback(Packet),
    /// For an underlay group: local subscribers and forwarding next hops.
    Mcast {
        group: MulticastUnderlay,
        src: IpAddr,
        enc: EncapInfo,
        pkt: Packet,
    },
}

/// The counters of one direction's local multicast delivery.
struct LocalCounters<'a> {
    stale: &'a core::sync::atomic::AtomicU64,
    pullup_fail: &'a core::sync::atomic::AtomicU64,
    delivered: &'a core::sync::atomic::AtomicU64,
}

impl<H: Host> Xde<H> {
    /// A frame from `port`'s guest.
    pub fn tx(&self, port: &Arc<XdePort>, pkt: Packet, now: Moment, out: &mut Vec<Emit>) {
        let after = {
            let mut vpc = port.vpc.lock();
            self.tx_locked(port, &mut vpc, pkt, now, out)
        };
        self.tx_after(port, after, now, out);
    }

    /// Several frames from `port`'s guest, under one acquisition of the port's lock (let go
    /// only to hand a packet to another local port).
    pub fn tx_batch(
        &self,
        port: &Arc<XdePort>,
        pkts: impl IntoIterator<Item = Packet>,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        let mut vpc = port.vpc.lock();
        for pkt in pkts {
            let after = self.tx_locked(port, &mut vpc, pkt, now, out);
            if !matches!(after, After::Nothing) {
                drop(vpc);
                self.tx_after(port, after, now, out);
                vpc = port.vpc.lock();
            }
        }
    }

    /// What a sent packet still needs once the sender's lock is let go: delivery to other
    /// local ports takes their locks, and two ports sending to each other on two threads
    /// must never each hold their own while waiting for the other's.
    fn tx_after(&self, port: &Arc<XdePort>, after: After, now: Moment, out: &mut Vec<Emit>) {
        match after {
            After::Nothing => {}
            After::Loopback(pkt) => self.loopback(port.name(), pkt, now, out),
            After::Mcast {
                group,
                src,
                enc,
                pkt,
            } => self.mcast_tx(port, group, src, &enc, &pkt, now, out),
        }
    }

    fn tx_locked(
        &self,
        port: &Arc<XdePort>,
        vpc: &mut oxide_vpc::engine::VpcPort<crate::probes::HostProbes>,
        mut pkt: Packet,
        now: Moment,
        out: &mut Vec<Emit>,
    ) -> After {
        let parsed = match Parsed::from_guest(&mut pkt) {
            Ok(p) => p,
            Err(e) => {
                self.stats.out_parse_error(&e);
                crate::probes::host::bad_packet(port.name(), Direction::Out, &e, pkt.len());
                out.push(Emit::Spent(pkt));
                return After::Nothing;
            }
        };
        let src = parsed.inner().flow.addrs.src();
        match vpc.process(Direction::Out, &mut pkt, &parsed, now) {
            ProcessResult::Modified => {}
            ProcessResult::Hairpin(frame) => {
                bump(&self.stats.tx_hairpin);
                out.push(Emit::Guest {
                    port: port.clone(),
                    pkt: Packet::copy_from(&frame),
                });
                out.push(Emit::Spent(pkt));
                return After::Nothing;
            }
            ProcessResult::Drop(_) => {
                bump(&self.stats.tx_port_drop);
                out.push(Emit::Spent(pkt));
                return After::Nothing;
            }
        }
        let Some(enc) = pkt.encap() else {
            bump(&self.stats.tx_no_encap);
            out.push(Emit::Spent(pkt));
            return After::Nothing;
        };
        write_guest_mss(&mut pkt, &enc);
        if let Some(group) = MulticastUnderlay::of(enc.dst) {
            After::Mcast {
                group,
                src,
                enc,
                pkt,
            }
        } else if enc.dst == port.phys_ip() {
            After::Loopback(pkt)
        } else {
            self.to_underlay(port, enc.dst, enc.flow_hash, None, pkt, now, out);
            After::Nothing
        }
    }

    /// Route `pkt` to underlay address `dst` and emit it; with `dst_mac`, that is the
    /// outer destination MAC rather than the next hop's (multicast).
    #[allow(clippy::too_many_arguments)]
    fn to_underlay(
        &self,
        port: &XdePort,
        dst: opte_api::Ipv6Addr,
        hash: u16,
        dst_mac: Option<opte_api::MacAddr>,
        mut pkt: Packet,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        let route = port.routes.lock().lookup(&self.host, dst, hash, now);
        match route {
            Ok(r) if set_macs(&mut pkt, dst_mac.unwrap_or(r.dst_mac), r.src_mac) => {
                bump(&self.stats.tx_underlay);
                out.push(Emit::Underlay { link: r.link, pkt });
            }
            _ => {
                bump(&self.stats.tx_no_route);
                out.push(Emit::Spent(pkt));
            }
        }
    }

    /// An encapsulated packet for a port of this host: its inbound path, no wire.
    fn loopback(&self, src: &str, mut pkt: Packet, now: Moment, out: &mut Vec<Emit>) {
        let Ok(n) = parse_network(&mut pkt) else {
            self.stats
                .in_drop_misc
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            return;
        };
        let key = VniMac {
            vni: n.outer.geneve.vni,
            mac: n.inner.eth.dst,
        };
        let Some(dst) = self.port_by_key(key) else {
            bump(&self.stats.tx_loopback_no_port);
            return;
        };
        crate::probes::host::guest_loopback(&n.inner.flow, src, dst.name());
        if self.deliver(&dst, pkt, Parsed::Network(n), now, out) {
            bump(&self.stats.tx_loopback);
        }
    }

    /// Run `pkt` through `port`'s inbound path and hand it to its guest.
    fn deliver(
        &self,
        port: &Arc<XdePort>,
        mut pkt: Packet,
        parsed: Parsed,
        now: Moment,
        out: &mut Vec<Emit>,
    ) -> bool {
        let r = port
            .vpc
            .lock()
            .process(Direction::In, &mut pkt, &parsed, now);
        match r {
            ProcessResult::Modified => {
                out.push(Emit::Guest {
                    port: port.clone(),
                    pkt,
                });
                true
            }
            ProcessResult::Hairpin(_) | ProcessResult::Drop(_) => {
                bump(&self.stats.rx_port_drop);
                false
            }
        }
    }

    /// A copy of the encapsulated frame `bytes` through each named port's inbound path.
    fn deliver_copies(
        &self,
        group: opte_api::Ipv6Addr,
        names: Vec<String>,
        bytes: &[u8],
        c: LocalCounters<'_>,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        for name in names {
            let Some(dst) = self.port(&name) else {
                bump(c.stale);
                continue;
            };
            let mut copy = Packet::copy_from(bytes);
            let Ok(n) = parse_network(&mut copy) else {
                bump(c.pullup_fail);
                continue;
            };
            if self.deliver(&dst, copy, Parsed::Network(n), now, out) {
                bump(c.delivered);
                probes::mcast(Mcast::LocalDelivery, group, dst.name());
            }
        }
    }

    /// Multicast a guest sent (SPEC §7.7): a copy to each local subscriber but the sender
    /// whose filter allows the inner source, then a copy to each forwarding next hop whose
    /// filter allows it, with its VNI and replication mode.
    #[allow(clippy::too_many_arguments)]
    fn mcast_tx(
        &self,
        sender: &Arc<XdePort>,
        group: MulticastUnderlay,
        src: IpAddr,
        enc: &EncapInfo,
        pkt: &Packet,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        let t = &self.tables;
        let g = group.addr();
        probes::mcast(Mcast::Tx, g, sender.name());
        let bytes = pkt.to_vec();
        let mut names: Vec<String> = Vec::new();
        let fan = t
            .mcast_subs
            .for_each_receiver(group, src, Some(sender.name()), |p| {
                names.push(p.to_string())
            });
        add(&self.stats.mcast_tx_source_filtered, fan.filtered);
        if fan.filtered > 0 {
            probes::mcast(Mcast::SourceFiltered, g, sender.name());
        }
        let st = &self.stats;
        let c = LocalCounters {
            stale: &st.mcast_tx_stale_local,
            pullup_fail: &st.mcast_tx_pullup_fail,
            delivered: &st.mcast_tx_local,
        };
        self.deliver_copies(g, names, &bytes, c, now, out);
        let mut hops = Vec::new();
        let Some(fan) = t
            .mcast_fwd
            .for_each_next_hop(group, src, |hop, rep| hops.push((hop, rep)))
        else {
            bump(&self.stats.mcast_tx_no_fwd_entry);
            probes::mcast(Mcast::NoFwdEntry, g, sender.name());
            return;
        };
        add(&self.stats.mcast_tx_fwd_source_filtered, fan.filtered);
        let Some(mac) = group.addr().multicast_mac() else {
            return;
        };
        for (hop, rep) in hops {
            if rep == Replication::Reserved {
                continue;
            }
            let mut b = bytes.clone();
            let repl_ok = enc.repl_at.is_some_and(|at| {
                b.get_mut(usize::from(at))
                    .map(|x| *x = (*x & 0x3f) | ((rep as u8) << 6))
                    .is_some()
            });
            let vni_ok = b
                .get_mut(GENEVE_VNI_AT..GENEVE_VNI_AT + 3)
                .map(|v| v.copy_from_slice(&hop.vni.bytes()))
                .is_some();
            if !(repl_ok && vni_ok) {
                bump(&self.stats.mcast_tx_pullup_fail);
                continue;
            }
            if matches!(rep, Replication::External | Replication::Both) {
                bump(&self.stats.mcast_tx_external);
                probes::mcast(Mcast::ExternalFwd, g, sender.name());
            }
            if matches!(rep, Replication::Underlay | Replication::Both) {
                bump(&self.stats.mcast_tx_underlay);
                probes::mcast(Mcast::UnderlayFwd, g, sender.name());
            }
            let copy = Packet::copy_from(&b);
            self.to_underlay(sender, hop.addr, enc.flow_hash, Some(mac), copy, now, out);
        }
    }

    /// A frame from underlay `link`.
    pub fn rx(&self, link: Link, pkt: Packet, now: Moment, out: &mut Vec<Emit>) {
        let ports = self.ports_snapshot();
        self.rx_in(&ports, link, pkt, now, out);
    }

    /// [`Xde::rx`], the destination port looked up in `ports`: a datapath worker's own
    /// snapshot of the port map, so that it takes no lock shared with other workers.
    pub fn rx_in(
        &self,
        ports: &PortMap,
        link: Link,
        mut pkt: Packet,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        let parsed = match Parsed::from_network(&mut pkt) {
            Ok(p) => p,
            Err(e) => {
                self.stats.in_parse_error(&e);
                crate::probes::host::bad_packet("unknown", Direction::In, &e, pkt.len());
                out.push(Emit::NotOurs(pkt));
                return;
            }
        };
        // Always there: the parse was of the network's shape.
        let Some(n) = parsed.network() else {
            return;
        };
        if let Some(group) = MulticastUnderlay::of(n.outer.dst) {
            self.mcast_rx(group, pkt, *n, now, out);
            return;
        }
        let key = VniMac {
            vni: n.outer.geneve.vni,
            mac: n.inner.eth.dst,
        };
        let Some(port) = ports.by_key.get(&key).cloned() else {
            bump(&self.stats.rx_no_port);
            out.push(Emit::NotOurs(pkt));
            return;
        };
        let r = port
            .vpc
            .lock()
            .process(Direction::In, &mut pkt, &parsed, now);
        match r {
            ProcessResult::Modified => {
                bump(&self.stats.rx_delivered);
                if let Some(gso) = gso_of_mss(n) {
                    // A checksum the host left partial (segments it coalesced) stays so.
                    let csum = pkt.offload().csum;
                    pkt.set_offload(Offload {
                        csum,
                        gso: Some(gso),
                    });
                }
                out.push(Emit::Guest { port, pkt });
            }
            ProcessResult::Hairpin(frame) => {
                bump(&self.stats.rx_hairpin);
                out.push(Emit::Underlay {
                    link,
                    pkt: Packet::copy_from(&frame),
                });
                out.push(Emit::Spent(pkt));
            }
            ProcessResult::Drop(_) => {
                bump(&self.stats.rx_port_drop);
                out.push(Emit::Spent(pkt));
            }
        }
    }

    fn mcast_rx(
        &self,
        group: MulticastUnderlay,
        pkt: Packet,
        n: opte::packet::parse::NetworkMeta,
        now: Moment,
        out: &mut Vec<Emit>,
    ) {
        let t = &self.tables;
        let g = group.addr();
        probes::mcast(Mcast::Rx, g, "");
        if t.mcast_subs.is_empty() {
            bump(&self.stats.mcast_rx_no_subscribers);
            return;
        }
        let inner_dst = n.inner.flow.addrs.dst();
        if !inner_dst.is_multicast() {
            bump(&self.stats.mcast_rx_bad_inner_dst);
            return;
        }
        let src = n.inner.flow.addrs.src();
        let mut names: Vec<String> = Vec::new();
        let fan = t
            .mcast_subs
            .for_each_receiver(group, src, None, |p| names.push(p.to_string()));
        add(&self.stats.mcast_rx_source_filtered, fan.filtered);
        if fan.filtered > 0 {
            probes::mcast(Mcast::SourceFiltered, g, "");
        }
        if names.is_empty() && fan.filtered == 0 {
            bump(&self.stats.mcast_rx_no_subscribers);
            return;
        }
        let bytes = pkt.to_vec();
        let st = &self.stats;
        let c = LocalCounters {
            stale: &st.mcast_rx_stale_local,
            pullup_fail: &st.mcast_rx_pullup_fail,
            delivered: &st.mcast_rx_local,
        };
        self.deliver_copies(g, names, &bytes, c, now, out);
    }
}
