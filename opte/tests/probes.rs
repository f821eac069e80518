//! The probe points report what the engine decided, with the arguments SPEC §2.21 gives
//! them: checked with a probe set that records every call, on real packets through a port
//! (stateful firewall, 1:1 NAT, Geneve encapsulation).

mod common;

use common::{inb, out, port_with_probes, tcp4_in, tcp4_out};
use opte::build::samples;
use opte::engine::port::ProcessResult;
use opte::engine::probe::Probes;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::parse::parse_guest;
use opte::wire::tcp::flags;
use opte_api::{Direction, InnerFlowId, IpAddr};
use std::fmt::Display;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Return {
        dir: Direction,
        before: InnerFlowId,
        after: InnerFlowId,
        path: u8,
    },
    Drop {
        dir: Direction,
        flow: InnerFlowId,
        reason: DropReason,
    },
    RuleMatch {
        layer: String,
        dir: Direction,
        action: String,
    },
    RuleNoMatch {
        layer: String,
        dir: Direction,
    },
    UftHit {
        dir: Direction,
    },
}

/// Records the calls of the probes under test, in order.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Ev>>>);

impl Recording {
    fn push(&self, e: Ev) {
        self.0.lock().unwrap().push(e);
    }

    /// Everything recorded since the last take.
    fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Probes for Recording {
    fn port_process_return(
        &self,
        _port: &str,
        dir: Direction,
        before: &InnerFlowId,
        after: &InnerFlowId,
        path: u8,
    ) {
        self.push(Ev::Return {
            dir,
            before: *before,
            after: *after,
            path,
        });
    }

    fn port_drop(&self, _port: &str, dir: Direction, flow: &InnerFlowId, reason: &DropReason) {
        self.push(Ev::Drop {
            dir,
            flow: *flow,
            reason: *reason,
        });
    }

    fn rule_match(
        &self,
        _port: &str,
        layer: &str,
        dir: Direction,
        _flow: &InnerFlowId,
        action: &dyn Display,
    ) {
        self.push(Ev::RuleMatch {
            layer: layer.into(),
            dir,
            action: action.to_string(),
        });
    }

    fn rule_no_match(&self, _port: &str, layer: &str, dir: Direction, _flow: &InnerFlowId) {
        self.push(Ev::RuleNoMatch {
            layer: layer.into(),
            dir,
        });
    }

    fn uft_hit(&self, _port: &str, dir: Direction, _flow: &InnerFlowId, _epoch: u64) {
        self.push(Ev::UftHit { dir });
    }
}

fn returns(evs: &[Ev]) -> Vec<&Ev> {
    evs.iter()
        .filter(|e| matches!(e, Ev::Return { .. }))
        .collect()
}

fn flow_of(mut pkt: opte::packet::Packet) -> InnerFlowId {
    parse_guest(&mut pkt).unwrap().flow
}

#[test]
fn process_return_reports_the_flow_before_and_after_nat_on_both_paths() {
    let rec = Recording::default();
    let mut p = port_with_probes(64, 64, 64, rec.clone());
    let t = Moment::ZERO;
    let guest = flow_of(tcp4_out(10010, flags::SYN, 100, 0));
    // What the guest's flow looks like once NATed: the external address, the same ports.
    let natted = {
        let mut n = guest;
        n.addrs = opte_api::AddrPair::V4 {
            src: samples::EPHEMERAL_IP4,
            dst: samples::REMOTE_IP4,
        };
        n
    };
    assert_ne!(guest, natted);

    // Slow path, then fast path, outbound.
    assert_eq!(
        out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t).0,
        ProcessResult::Modified
    );
    let evs = rec.take();
    assert_eq!(
        returns(&evs),
        [&Ev::Return {
            dir: Direction::Out,
            before: guest,
            after: natted,
            path: 3,
        }]
    );
    // The reply, un-NATed: it arrives addressed to the external IP, leaves to the guest.
    let (r, _) = inb(&mut p, tcp4_in(10010, flags::SYN | flags::ACK, 500, 101), t);
    assert_eq!(r, ProcessResult::Modified);
    let evs = rec.take();
    assert_eq!(
        returns(&evs),
        [&Ev::Return {
            dir: Direction::In,
            before: natted.mirror(),
            after: guest.mirror(),
            path: 3,
        }]
    );
    // Both directions again, now UFT hits: the same keys, reported from the compiled flows.
    out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t);
    inb(&mut p, tcp4_in(10010, flags::ACK, 501, 101), t);
    let evs = rec.take();
    assert_eq!(
        evs,
        [
            Ev::UftHit {
                dir: Direction::Out
            },
            Ev::Return {
                dir: Direction::Out,
                before: guest,
                after: natted,
                path: 1,
            },
            Ev::UftHit { dir: Direction::In },
            Ev::Return {
                dir: Direction::In,
                before: natted.mirror(),
                after: guest.mirror(),
                path: 1,
            },
        ]
    );
    // The encapsulated packet on the wire carries the "after" key inside.
    let (_, mut pkt) = out(&mut p, tcp4_out(10010, flags::ACK, 102, 501), t);
    let n = opte::packet::parse::parse_network(&mut pkt).unwrap();
    assert_eq!(n.inner.flow, natted);
    assert_eq!(n.inner.flow.src_ip(), IpAddr::Ip4(samples::EPHEMERAL_IP4));
}

#[test]
fn rule_match_carries_the_matched_actions_text() {
    let rec = Recording::default();
    let mut p = port_with_probes(64, 64, 64, rec.clone());
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), Moment::ZERO);
    let evs = rec.take();
    let text = |layer: &str| {
        p.dump_layer(layer).unwrap().rules_out[0]
            .rule
            .action
            .clone()
    };
    let (nat, overlay) = (text("nat"), text("overlay"));
    assert!(nat.starts_with("Stateful: "), "{nat}");
    assert_eq!(overlay, "Static: geneve");
    let decisions: Vec<&Ev> = evs
        .iter()
        .filter(|e| matches!(e, Ev::RuleMatch { .. } | Ev::RuleNoMatch { .. }))
        .collect();
    assert_eq!(
        decisions,
        [
            // The firewall has no outbound rules: its default (stateful allow) applies.
            &Ev::RuleNoMatch {
                layer: "firewall".into(),
                dir: Direction::Out,
            },
            &Ev::RuleMatch {
                layer: "nat".into(),
                dir: Direction::Out,
                action: nat,
            },
            &Ev::RuleMatch {
                layer: "overlay".into(),
                dir: Direction::Out,
                action: overlay,
            },
        ]
    );
}

#[test]
fn drops_report_their_reason_and_flow() {
    let rec = Recording::default();
    let mut p = port_with_probes(64, 64, 64, rec.clone());
    let t = Moment::ZERO;
    // Unsolicited inbound: decapsulated and passed by NAT, then denied by the firewall's
    // default. The inner flow never changed.
    let (r, _) = inb(&mut p, tcp4_in(10010, flags::SYN, 1, 0), t);
    let reason = DropReason::Layer {
        layer: "firewall",
        reason: DenyReason::Default,
    };
    assert_eq!(r, ProcessResult::Drop(reason));
    let evs = rec.take();
    let Some(Ev::Return { before, after, .. }) = evs.last().cloned() else {
        panic!("no return probe: {evs:?}");
    };
    assert_eq!(before, after);
    assert!(evs.contains(&Ev::Drop {
        dir: Direction::In,
        flow: before,
        reason,
    }));
    assert_eq!(
        before.dst_ip(),
        IpAddr::Ip4(samples::EPHEMERAL_IP4),
        "the flow as it arrived"
    );

    // A paused port drops before any path: path 0.
    p.pause().unwrap();
    let guest = flow_of(tcp4_out(10010, flags::SYN, 100, 0));
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t);
    assert_eq!(
        rec.take(),
        [
            Ev::Drop {
                dir: Direction::Out,
                flow: guest,
                reason: DropReason::PortNotRunning,
            },
            Ev::Return {
                dir: Direction::Out,
                before: guest,
                after: guest,
                path: 0,
            },
        ]
    );
}

/// A [`Recording`] that says the per-packet probes are off, as an untraced USDT host does.
#[derive(Clone, Default)]
struct Untraced(Recording);

impl Probes for Untraced {
    fn packet_probes_on(&self) -> bool {
        false
    }
    fn port_process_return(
        &self,
        port: &str,
        dir: Direction,
        before: &InnerFlowId,
        after: &InnerFlowId,
        path: u8,
    ) {
        self.0.port_process_return(port, dir, before, after, path);
    }
    fn port_drop(&self, port: &str, dir: Direction, flow: &InnerFlowId, reason: &DropReason) {
        self.0.port_drop(port, dir, flow, reason);
    }
    fn rule_match(
        &self,
        port: &str,
        layer: &str,
        dir: Direction,
        flow: &InnerFlowId,
        action: &dyn Display,
    ) {
        self.0.rule_match(port, layer, dir, flow, action);
    }
    fn rule_no_match(&self, port: &str, layer: &str, dir: Direction, flow: &InnerFlowId) {
        self.0.rule_no_match(port, layer, dir, flow);
    }
    fn uft_hit(&self, port: &str, dir: Direction, flow: &InnerFlowId, epoch: u64) {
        self.0.uft_hit(port, dir, flow, epoch);
    }
}

#[test]
fn per_packet_probes_off_skip_only_those_and_the_packets_are_still_counted() {
    let rec = Untraced::default();
    let mut p = port_with_probes(64, 64, 64, rec.clone());
    let t = Moment::ZERO;
    // Slow path: the layers' decisions are still reported; the per-packet ones are not.
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t);
    let evs = rec.0.take();
    assert!(
        evs.iter().any(|e| matches!(e, Ev::RuleMatch { .. })),
        "{evs:?}"
    );
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Ev::Return { .. } | Ev::UftHit { .. } | Ev::Drop { .. })),
        "{evs:?}"
    );
    // Fast path and a drop: nothing at all, yet both are counted.
    inb(&mut p, tcp4_in(10010, flags::SYN | flags::ACK, 500, 101), t);
    out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t);
    let (r, _) = inb(&mut p, tcp4_in(10011, flags::SYN, 1, 0), t);
    assert!(matches!(r, ProcessResult::Drop(_)));
    let evs = rec.0.take();
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Ev::Return { .. } | Ev::UftHit { .. } | Ev::Drop { .. })),
        "{evs:?}"
    );
    let st = p.stats();
    assert_eq!(st.out.modified, 2);
    assert_eq!(st.out.uft_hit, 1);
    assert_eq!(st.r#in.drop, 1);
}
