//! The properties the fuzz targets check, shared with the stable-toolchain replay of the
//! corpora (`tests/replay.rs`).
//!
//! For any input: parsing never panics, and an error renders as text. When a parse succeeds,
//! the headers it found re-emit verbatim and parse again to the same headers, flow key and
//! payload length; and the same bytes cut into three segments (at points taken from the
//! input) parse to the same result, whichever header the cuts split. The one-pass fast path
//! and the general parser agree on every input.

use opte::build::Headers;
use opte::packet::Packet;
use opte::packet::parse::{
    InnerMeta, parse_guest, parse_guest_general, parse_network, parse_network_general,
};
use opte_api::InnerFlowId;

/// What a parse found, independent of where in the chain it found it.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    headers: Headers,
    flow: InnerFlowId,
    body_len: u32,
    hdr_len: usize,
}

fn summarise(pkt: &Packet, inner: &InnerMeta, headers: Option<Headers>) -> Summary {
    let headers = headers.expect("a successful parse must yield readable headers");
    let hdr_len = headers.emitted_len();
    assert!(hdr_len <= pkt.len(), "headers longer than the packet");
    Summary {
        headers,
        flow: inner.flow,
        body_len: inner.body_len,
        hdr_len,
    }
}

/// Cut `data` into up to three segments at points derived from its own bytes.
fn three_segments(data: &[u8]) -> Packet {
    let n = data.len();
    if n < 3 {
        return Packet::copy_from(data);
    }
    let seed = data
        .iter()
        .fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let a = 1 + (seed as usize % (n - 1));
    let b = a + (seed as usize / 7) % (n - a);
    Packet::from_segments(&[&data[..a], &data[a..b], &data[b..]])
}

fn check(data: &[u8], network: bool) {
    let parse = |pkt: &mut Packet| -> Result<Summary, opte::packet::ParseError> {
        if network {
            let m = parse_network(pkt)?;
            Ok(summarise(pkt, &m.inner, Headers::from_network(pkt, &m)))
        } else {
            let m = parse_guest(pkt)?;
            Ok(summarise(pkt, &m, Headers::from_guest(pkt, &m)))
        }
    };
    // The one-pass fast path must agree with the general parser, result for result.
    if network {
        let fast = parse_network(&mut Packet::copy_from(data));
        let general = parse_network_general(&mut Packet::copy_from(data));
        assert_eq!(fast, general, "fast and general network-side parses differ");
    } else {
        let fast = parse_guest(&mut Packet::copy_from(data));
        let general = parse_guest_general(&mut Packet::copy_from(data));
        assert_eq!(fast, general, "fast and general guest-side parses differ");
    }
    let mut pkt = Packet::copy_from(data);
    let first = parse(&mut pkt);
    let mut split = three_segments(data);
    let split_result = parse(&mut split);
    assert_eq!(first, split_result, "segmentation changed the parse");
    // Pulling headers up must not lose or reorder a byte.
    assert_eq!(split.to_vec(), data, "pullup corrupted the packet");

    let s = match first {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let body = &data[s.hdr_len..];
    let again = s
        .headers
        .to_bytes(body)
        .expect("parsed headers must re-emit");
    assert_eq!(again.len(), data.len(), "re-emit changed the length");
    let mut pkt2 = Packet::copy_from(&again);
    let second = parse(&mut pkt2).expect("re-emitted headers must parse");
    assert_eq!(s, second, "re-emitted packet parsed differently");
}

/// The `parse-in` property: Geneve-over-IPv6 from the underlay.
pub fn check_parse_in(data: &[u8]) {
    check(data, true);
}

/// The `parse-out` property: a frame from a guest.
pub fn check_parse_out(data: &[u8]) {
    check(data, false);
}
