//! The packets: a port's transmit entry point (`mc_tx`, a guest's frames) and the
//! underlays' siphon (`xde_rx`, Geneve from the network), each handing its chain, packet by
//! packet, to the core and carrying out what the core emits: `mac_tx` on an underlay,
//! `mac_rx` up a port, back to the IP stack (the siphon's return), or freed.

use super::host::PortDriver;
use super::mblk::{link_chain, mblk_of, packet_of, split_chain};
use super::{now, state, sys};
use crate::datapath::Emit;
use crate::host::Link;
use crate::offload::Layout;
use alloc::vec::Vec;
use core::ffi::{c_uint, c_void};
use core::ptr;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};

/// Carry out `emits`; packets that are not ours go to `not_ours` (the siphon's caller).
/// The underlays' clients are looked up once for the whole batch, and a port's handle
/// once for each run of packets to the same port.
fn carry_out(emits: &mut Vec<Emit>, not_ours: &mut Vec<*mut sys::mblk_t>) {
    let Some(s) = state() else {
        emits.clear();
        return;
    };
    let links = s.xde.host.underlay_clients();
    let mut last: Option<(*const crate::port::XdePort, sys::mac_handle_t)> = None;
    for e in emits.drain(..) {
        match e {
            Emit::Underlay { link, pkt } => {
                let Some(mch) = links.get(link.index()).copied().flatten() else {
                    continue;
                };
                // SAFETY: each message is ours, given to the link's client (it frees what
                // it cannot send: MAC_DROP_ON_NO_DESC).
                cut(pkt, true, |mp| unsafe {
                    sys::mac_tx(mch, mp, 0, sys::MAC_DROP_ON_NO_DESC, ptr::null_mut());
                });
            }
            Emit::Guest { port, pkt } => {
                let key = alloc::sync::Arc::as_ptr(&port);
                let mh = match last {
                    Some((k, mh)) if k == key => mh,
                    _ => {
                        let Some(mh) = s.xde.host.port_handle(port.name()) else {
                            continue;
                        };
                        last = Some((key, mh));
                        mh
                    }
                };
                // SAFETY: each message is ours, up the port's mac provider.
                cut(pkt, false, |mp| unsafe {
                    sys::mac_rx(mh, ptr::null_mut(), mp)
                });
            }
            Emit::NotOurs(pkt) => {
                let mp = mblk_of(pkt);
                if !mp.is_null() {
                    not_ours.push(mp);
                }
            }
            Emit::Spent(pkt) => drop(pkt),
        }
    }
}

/// The messages of a packet: itself, or, for a guest's LSO super-frame, its segments at
/// the guest's MSS, each with its own headers and every checksum computed (the core's
/// [`crate::offload::Layout`], as the Linux host cuts them). `encapsulated` for the
/// underlay (Geneve outside), not for another guest of this host. Each message goes to
/// `send`.
fn cut(mut pkt: Packet, encapsulated: bool, mut send: impl FnMut(*mut sys::mblk_t)) {
    let Some(gso) = pkt.offload().gso else {
        let mp = mblk_of(pkt);
        if !mp.is_null() {
            send(mp);
        }
        return;
    };
    if pkt.seg_count() != 1 {
        pkt = Packet::copy_from(&pkt.to_vec());
    }
    let lay = if encapsulated {
        parse_network(&mut pkt)
            .ok()
            .and_then(|n| Layout::of_network(&n))
    } else {
        parse_guest(&mut pkt)
            .ok()
            .and_then(|m| Layout::of_inner(&m))
    };
    let Some(lay) = lay else {
        return;
    };
    let mss = usize::from(gso.size);
    let Some(frame) = pkt.segment(0).map(|s| s.data()) else {
        return;
    };
    for i in 0..lay.seg_count(mss) {
        let hlen = lay.payload;
        // SAFETY: allocb gives a block of at least the size asked; the headers and the
        // body are written inside it, then b_wptr moved past them.
        unsafe {
            let mp = sys::allocb(hlen + mss, sys::BPRI_HI);
            if mp.is_null() {
                break;
            }
            let hdr = core::slice::from_raw_parts_mut((*mp).b_wptr, hlen);
            let Some(body) = lay
                .write_segment(frame, mss, i, hdr)
                .and_then(|r| frame.get(r))
            else {
                sys::freeb(mp);
                break;
            };
            ptr::copy_nonoverlapping(body.as_ptr(), (*mp).b_wptr.add(hlen), body.len());
            (*mp).b_wptr = (*mp).b_wptr.add(hlen + body.len());
            send(mp);
        }
    }
}

/// A port's `mc_tx`: every frame of `chain` through the core's transmit path. Consumes
/// the whole chain (returns null).
///
/// # Safety
///
/// Called by the mac framework with the port's driver argument and a chain it gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xde_mc_tx(arg: *mut c_void, chain: *mut sys::mblk_t) -> *mut sys::mblk_t {
    // SAFETY: the chain is ours from here.
    let msgs = unsafe { split_chain(chain) };
    let (Some(s), false) = (state(), arg.is_null()) else {
        for m in msgs {
            // SAFETY: ours.
            unsafe { sys::freemsg(m) };
        }
        return ptr::null_mut();
    };
    // SAFETY: the argument registered with the port: its driver, alive until deletion.
    let driver = unsafe { &*arg.cast::<PortDriver>() };
    let Some(port) = s.xde.port(&driver.name) else {
        for m in msgs {
            // SAFETY: ours.
            unsafe { sys::freemsg(m) };
        }
        return ptr::null_mut();
    };
    let t = now();
    let pkts = msgs
        .into_iter()
        // SAFETY: each message is ours and handed over whole.
        .filter_map(|m| unsafe { packet_of(m) });
    let mut emits = Vec::new();
    s.xde.tx_batch(&port, pkts, t, &mut emits);
    let mut rest = Vec::new();
    carry_out(&mut emits, &mut rest);
    for m in rest {
        // SAFETY: ours: a transmit has no stack to give it back to.
        unsafe { sys::freemsg(m) };
    }
    ptr::null_mut()
}

/// The underlays' siphon: Geneve for our ports goes through the core's receive path;
/// everything else is returned, in order, for the IP stack.
///
/// # Safety
///
/// Called by the mac framework with the link index given to `mac_siphon_set`, a chain it
/// gives up, and out pointers for what it takes back.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xde_rx(
    arg: *mut c_void,
    chain: *mut sys::mblk_t,
    tail: *mut *mut sys::mblk_t,
    cnt: *mut c_uint,
    sz: *mut usize,
) -> *mut sys::mblk_t {
    // SAFETY: the chain is ours from here.
    let msgs = unsafe { split_chain(chain) };
    let mut not_ours: Vec<*mut sys::mblk_t> = Vec::new();
    match state() {
        None => not_ours = msgs,
        Some(s) => {
            let link = if arg as usize == 1 {
                Link::U2
            } else {
                Link::U1
            };
            let t = now();
            // One snapshot of the port map for the whole chain, not one per packet.
            let ports = s.xde.ports_snapshot();
            let mut emits = Vec::new();
            for m in msgs {
                // SAFETY: each message is ours and handed over whole.
                if let Some(pkt) = unsafe { packet_of(m) } {
                    s.xde.rx_in(&ports, link, pkt, t, &mut emits);
                }
            }
            carry_out(&mut emits, &mut not_ours);
        }
    }
    let (head, last, n) = link_chain(&not_ours);
    let bytes: usize = not_ours
        .iter()
        .map(|&m| {
            let mut total = 0;
            let mut b = m;
            while !b.is_null() {
                // SAFETY: blocks of messages we own.
                unsafe {
                    total += (*b).b_wptr as usize - (*b).b_rptr as usize;
                    b = (*b).b_cont;
                }
            }
            total
        })
        .sum();
    // SAFETY: the framework's out pointers.
    unsafe {
        if !tail.is_null() {
            *tail = last;
        }
        if !cnt.is_null() {
            *cnt = c_uint::try_from(n).unwrap_or(c_uint::MAX);
        }
        if !sz.is_null() {
            *sz = bytes;
        }
    }
    head
}
