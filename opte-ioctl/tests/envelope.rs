//! What `OpteHdl::run` does with the envelope, whatever the transport: it grows the
//! response buffer on demand, gives up after three attempts, and reports a version
//! mismatch or an unreadable answer in words.

mod common;

use common::{hdl, hdl_with, xde};
use opte_api::{API_VERSION, ControlRequest, ControlResponse, OpteCmd, OpteError};
use opte_ioctl::hdl::{INITIAL_RESP_CAP, MAX_ATTEMPTS, RESP_CAP_SLACK};
use opte_ioctl::{Error, InProcess, OpteHdl};
use oxide_vpc::api::{PhysNet, SetVirt2PhysReq};
use std::cell::RefCell;
use std::rc::Rc;

/// Map `n` guests of VPC 7 in 10.0.0.0/16, enough for a dump over the first buffer.
fn fill_v2p(h: &OpteHdl, n: u16) {
    for i in 0..n {
        let [hi, lo] = i.to_be_bytes();
        let req = SetVirt2PhysReq {
            vip: format!("10.0.{hi}.{lo}").parse().unwrap(),
            phys: PhysNet {
                ether: format!("a8:40:25:00:{hi:02x}:{lo:02x}").parse().unwrap(),
                ip: format!("fd00:0:f7:{i:x}::1").parse().unwrap(),
                vni: "7".parse().unwrap(),
            },
        };
        h.set_v2p(&req).unwrap();
    }
}

#[test]
fn a_response_over_16_kib_is_fetched_with_a_larger_buffer() {
    let x = xde();
    fill_v2p(&hdl(&x), 1000);
    let caps = Rc::new(RefCell::new(Vec::new()));
    let seen = caps.clone();
    let h = hdl_with(&x, move |r, dispatch| {
        seen.borrow_mut().push(r.resp_cap);
        dispatch(r)
    });

    let dump = h.dump_v2p().unwrap();
    assert_eq!(dump.mappings[0].ip4.len(), 1000);
    let needed = postcard::to_allocvec(&dump).unwrap().len() as u64;
    assert!(needed > INITIAL_RESP_CAP, "{needed}");
    // One refusal saying how much is needed, then exactly that much plus the slack.
    assert_eq!(*caps.borrow(), [INITIAL_RESP_CAP, needed + RESP_CAP_SLACK]);
}

#[test]
fn a_response_that_keeps_growing_ends_after_three_attempts() {
    let calls = Rc::new(RefCell::new(0u32));
    let n = calls.clone();
    let h = OpteHdl::new(InProcess::new(move |r: &ControlRequest| {
        *n.borrow_mut() += 1;
        ControlResponse::Err(OpteError::RespTooLarge {
            needed: r.resp_cap * 2,
            given: r.resp_cap,
        })
    }));
    let e = h.dump_v2p().unwrap_err();
    assert!(matches!(e, Error::MaxAttempts(OpteCmd::DumpVirt2Phys, 3)));
    assert_eq!(*calls.borrow(), MAX_ATTEMPTS);
    assert_eq!(
        e.to_string(),
        "DumpVirt2Phys: the response did not fit after 3 attempts with larger buffers"
    );
}

#[test]
fn a_version_mismatch_names_both_versions() {
    let x = xde();
    // A client of the previous API version, as the host sees it.
    let h = hdl_with(&x, |r, dispatch| {
        let mut old = r.clone();
        old.api_version = API_VERSION - 1;
        dispatch(&old)
    });
    let e = h.list_ports().unwrap_err();
    assert!(matches!(
        e,
        Error::BadApiVersion { client, server, .. } if client == API_VERSION - 1 && server == API_VERSION
    ));
    assert_eq!(
        e.to_string(),
        format!(
            "API version mismatch: opteadm speaks {}, the daemon speaks {API_VERSION}",
            API_VERSION - 1
        )
    );
}

#[test]
fn an_answer_of_the_wrong_shape_is_reported_not_trusted() {
    // ListPorts answered with a NoResp: bytes that do not decode as ListPortsResp...
    let h = OpteHdl::new(InProcess::new(|_: &ControlRequest| {
        ControlResponse::Ok(vec![5])
    }));
    let e = h.list_ports().unwrap_err();
    assert!(
        matches!(
            e,
            Error::RespDeser {
                cmd: OpteCmd::ListPorts,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("failed to deserialise the ListPorts response")
    );

    // ...and a valid response followed by more bytes.
    let h = OpteHdl::new(InProcess::new(|_: &ControlRequest| {
        ControlResponse::Ok(vec![0, 0])
    }));
    let e = h.clear_xde_underlay().unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to deserialise the ClearXdeUnderlay response: 1 bytes left over after the response"
    );
}

#[test]
fn commands_without_a_request_send_an_empty_body() {
    let bodies = Rc::new(RefCell::new(Vec::new()));
    let seen = bodies.clone();
    let x = xde();
    let h = hdl_with(&x, move |r, dispatch| {
        seen.borrow_mut().push((r.cmd, r.req.len()));
        dispatch(r)
    });
    h.dump_v2p().unwrap();
    h.dump_mcast_subs().unwrap();
    h.list_layers("opte0").unwrap_err();
    let b = bodies.borrow();
    assert_eq!(b[0], (OpteCmd::DumpVirt2Phys, 0));
    assert_eq!(b[1], (OpteCmd::DumpMcastSubscriptions, 0));
    assert_eq!(b[2], (OpteCmd::ListLayers, 6)); // "opte0", length-prefixed
}
