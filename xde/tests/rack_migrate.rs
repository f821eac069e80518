//! A guest moved between sleds of the simulated rack with its flow state (`ExportPort`
//! on the old sled, `ImportPort` into a port of the same configuration on the new one,
//! the V2P change everywhere): its TCP connection to a guest on a third sled goes on,
//! and the replies follow it. And what an import refuses.

mod common;

use common::tcpf::{ACK, PSH, SYN};
use common::*;
use opte_api::{DumpTcpFlowsReq, OpteError, TcpState};
use oxide_vpc::api::cmd;
use oxide_vpc::api::{DeleteXdeReq, ExportPortReq, ImportPortReq, ResumePortReq, VpcCfg};

fn export(rack: &Rack, sled: usize, port: &str) -> oxide_vpc::api::ExportPortResp {
    rack.cmd::<cmd::ExportPort>(
        sled,
        &ExportPortReq {
            port_name: port.into(),
        },
    )
    .unwrap()
}

fn import(rack: &Rack, sled: usize, port: &str, state: Vec<u8>) -> Result<(), OpteError> {
    rack.cmd::<cmd::ImportPort>(
        sled,
        &ImportPortReq {
            port_name: port.into(),
            state,
        },
    )
    .map(drop)
}

#[test]
fn a_guest_moves_to_another_sled_and_its_connection_goes_on() {
    let mut rack = Rack::new("migrate", 3);
    let g1 = guest(VNI_A, 5, 0);
    let g3 = guest(VNI_A, 7, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g3", &g3);
    let (a, b) = (ip4(&g1), ip4(&g3));
    // g1 opens a connection to g3 across sleds 0 and 1.
    rack.send(
        0,
        "g1",
        from_guest(&g1, a, b, tcp(40000, 22, SYN, 1000, 0), b""),
    );
    assert_eq!(rack.take(1, "g3").len(), 1);
    rack.send(
        1,
        "g3",
        from_guest(&g3, b, a, tcp(22, 40000, SYN | ACK, 5000, 1001), b""),
    );
    assert_eq!(rack.take(0, "g1").len(), 1);
    rack.send(
        0,
        "g1",
        from_guest(&g1, a, b, tcp(40000, 22, ACK, 1001, 5001), b""),
    );
    assert_eq!(rack.take(1, "g3").len(), 1);
    rack.advance_ms(10_000);

    // Sled 0 pauses g1 and hands over its state; g1's packets stop there meanwhile.
    let exp = export(&rack, 0, "g1");
    assert_eq!(exp.tcp, 1);
    assert!(exp.pairs >= 1, "{exp:?}");
    assert_eq!(&exp.state[..8], b"OPTEFLOW");
    let data = |seq| from_guest(&g1, a, b, tcp(40000, 22, ACK | PSH, seq, 5001), b"hello");
    rack.send(0, "g1", data(1001));
    assert!(rack.take(1, "g3").is_empty());

    // Sled 2 gets a port of the same configuration (another sled address), every sled
    // learns where g1 lives now, sled 0 lets its port go.
    let g1b = VpcCfg {
        phys_ip: sled_ip(2),
        ..g1.clone()
    };
    rack.add_guest(2, "g1", &g1b);
    import(&rack, 2, "g1", exp.state).unwrap();
    rack.cmd::<cmd::DeleteXde>(
        0,
        &DeleteXdeReq {
            xde_devname: "g1".into(),
        },
    )
    .unwrap();
    let flows = rack
        .cmd::<cmd::DumpTcpFlows>(
            2,
            &DumpTcpFlowsReq {
                port_name: "g1".into(),
            },
        )
        .unwrap();
    assert_eq!(flows.flows.len(), 1);
    assert_eq!(flows.flows[0].1.tcp_state.tcp_state, TcpState::Established);

    // The connection goes on from sled 2, and g3's replies reach it there.
    rack.send(2, "g1", data(1001));
    let got = rack.take(1, "g3");
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with(b"hello"));
    rack.send(
        1,
        "g3",
        from_guest(&g3, b, a, tcp(22, 40000, ACK | PSH, 5001, 1006), b"world"),
    );
    let got = rack.take(2, "g1");
    assert_eq!(got.len(), 1);
    assert!(got[0].ends_with(b"world"));
    assert!(rack.take(0, "g1").is_empty());
}

#[test]
fn an_import_names_what_it_refuses_and_an_export_can_be_undone() {
    let mut rack = Rack::new("migrate_refused", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g3 = guest(VNI_A, 7, 0);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(0, "g3", &g3);
    let (a, b) = (ip4(&g1), ip4(&g3));
    rack.send(
        0,
        "g1",
        from_guest(&g1, a, b, tcp(40000, 22, SYN, 1000, 0), b""),
    );
    assert_eq!(rack.take(0, "g3").len(), 1);
    let exp = export(&rack, 0, "g1");

    let msg = |r: Result<(), OpteError>| match r {
        Err(OpteError::FlowStateRefused(m)) => m,
        other => panic!("not refused: {other:?}"),
    };
    // Another guest's configuration.
    let other = guest(VNI_A, 9, 1);
    rack.add_guest(1, "g9", &other);
    let m = msg(import(&rack, 1, "g9", exp.state.clone()));
    assert!(m.contains("guest MAC"), "{m}");
    // Damaged files.
    let m = msg(import(&rack, 1, "g9", b"GIF89a".to_vec()));
    assert!(m.contains("not an OPTE flow-state file"), "{m}");
    let m = msg(import(
        &rack,
        1,
        "g9",
        exp.state[..exp.state.len() - 3].to_vec(),
    ));
    assert!(m.contains("truncated"), "{m}");
    // No such port.
    assert!(matches!(
        import(&rack, 1, "nope", exp.state.clone()),
        Err(OpteError::PortNotFound(_))
    ));

    // Resuming needs a paused port; the exported one runs again, with its flows.
    let resume = |sled, port: &str| {
        rack.cmd::<cmd::ResumePort>(
            sled,
            &ResumePortReq {
                port_name: port.into(),
            },
        )
    };
    assert!(matches!(resume(0, "g3"), Err(OpteError::BadState(_))));
    resume(0, "g1").unwrap();
    rack.send(
        0,
        "g3",
        from_guest(&g3, b, a, tcp(22, 40000, SYN | ACK, 5000, 1001), b""),
    );
    assert_eq!(rack.take(0, "g1").len(), 1);
}
