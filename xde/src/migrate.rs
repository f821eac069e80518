//! The flow-state file: what `ExportPort` answers and `ImportPort` takes, what `opteadm
//! export-port` writes and `import-port` reads.
//!
//! Layout: the 8 bytes `OPTEFLOW`, a big-endian `u32` version ([`VERSION`]), then a
//! postcard [`FlowStateBody`]: the exporting port's name and VPC configuration, and its
//! flow state ([`opte::engine::port::PortFlowState`]: ages relative, never clock values).
//! A file of another kind or version, a truncated or corrupt one, and one exported by a
//! port whose configuration is not the importer's (the sled's underlay address aside: a
//! migrated guest changes sled) are refused with [`OpteError::FlowStateRefused`] saying
//! which.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use opte::engine::port::PortFlowState;
use opte_api::OpteError;
use oxide_vpc::api::VpcCfg;
use serde::{Deserialize, Serialize};

/// The first bytes of every flow-state file.
pub const MAGIC: [u8; 8] = *b"OPTEFLOW";

/// The layout this build writes and reads. Bump it when [`FlowStateBody`] or anything in
/// it changes shape.
pub const VERSION: u32 = 1;

/// What follows the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStateBody {
    /// The port it was exported from.
    pub port: String,
    /// That port's configuration at the export.
    pub cfg: VpcCfg,
    pub state: PortFlowState,
}

fn refused(msg: String) -> OpteError {
    OpteError::FlowStateRefused(msg)
}

/// The file's bytes.
pub fn encode(body: &FlowStateBody) -> Result<Vec<u8>, OpteError> {
    let mut out = Vec::from(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    let b = postcard::to_allocvec(body).map_err(|e| OpteError::SerCmdResp(format!("{e}")))?;
    out.extend_from_slice(&b);
    Ok(out)
}

/// Read a file's bytes.
pub fn decode(bytes: &[u8]) -> Result<FlowStateBody, OpteError> {
    let (magic, rest) = bytes.split_at(bytes.len().min(MAGIC.len()));
    if magic != MAGIC {
        return Err(refused("not an OPTE flow-state file".into()));
    }
    let Some((v, body)) = rest.split_first_chunk::<4>() else {
        return Err(refused("the flow-state file ends in its header".into()));
    };
    let v = u32::from_be_bytes(*v);
    if v != VERSION {
        return Err(refused(format!(
            "flow-state file version {v}; this host reads version {VERSION}"
        )));
    }
    match postcard::take_from_bytes::<FlowStateBody>(body) {
        Ok((b, [])) => Ok(b),
        Ok((_, extra)) => Err(refused(format!(
            "{} bytes after the flow state: a corrupt file",
            extra.len()
        ))),
        Err(e) => Err(refused(format!(
            "a truncated or corrupt flow-state file: {e}"
        ))),
    }
}

/// Why a port configured as `mine` may not take flows exported by one configured as
/// `theirs`: `None` if it may. The sled's underlay address is the one difference allowed.
pub fn cfg_mismatch(theirs: &VpcCfg, mine: &VpcCfg) -> Option<&'static str> {
    if theirs.vni != mine.vni {
        Some("VNI")
    } else if theirs.guest_mac != mine.guest_mac {
        Some("guest MAC")
    } else if theirs.gateway_mac != mine.gateway_mac {
        Some("gateway MAC")
    } else if theirs.ip_cfg != mine.ip_cfg {
        Some("IP configuration")
    } else if theirs.dhcp != mine.dhcp {
        Some("DHCP configuration")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use oxide_vpc::api::{ExternalIpCfg, IpCfg, Ipv4Cfg};

    fn sample_cfg() -> VpcCfg {
        VpcCfg {
            ip_cfg: IpCfg::Ipv4(Ipv4Cfg {
                vpc_subnet: "172.30.0.0/22".parse().unwrap(),
                private_ip: "172.30.0.5".parse().unwrap(),
                gateway_ip: "172.30.0.1".parse().unwrap(),
                external_ips: ExternalIpCfg::default(),
                attached_subnets: Default::default(),
                transit_ips: Default::default(),
            }),
            guest_mac: "a8:40:25:fa:00:05".parse().unwrap(),
            gateway_mac: "a8:40:25:ff:77:77".parse().unwrap(),
            vni: opte_api::Vni::new(1287581u32).unwrap(),
            phys_ip: "fd00:0:f7:101::1".parse().unwrap(),
            dhcp: Default::default(),
        }
    }

    fn body() -> FlowStateBody {
        FlowStateBody {
            port: "opte0".into(),
            cfg: sample_cfg(),
            state: PortFlowState::default(),
        }
    }

    #[test]
    fn a_file_round_trips_and_every_damage_is_named() {
        let b = body();
        let f = encode(&b).unwrap();
        assert_eq!(&f[..8], b"OPTEFLOW");
        assert_eq!(&f[8..12], &VERSION.to_be_bytes());
        assert_eq!(decode(&f).unwrap(), b);
        let msg = |r: Result<FlowStateBody, OpteError>| match r {
            Err(OpteError::FlowStateRefused(m)) => m,
            other => panic!("not refused: {other:?}"),
        };
        assert!(msg(decode(b"{\"json\": 1}")).contains("not an OPTE"));
        assert!(msg(decode(&f[..10])).contains("header"));
        let mut old = f.clone();
        old[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert!(msg(decode(&old)).contains("version 0"));
        assert!(msg(decode(&f[..f.len() - 1])).contains("truncated"));
        let mut long = f.clone();
        long.push(0);
        assert!(msg(decode(&long)).contains("after the flow state"));
    }

    #[test]
    fn only_the_sled_may_differ() {
        let a = sample_cfg();
        let mut b = a.clone();
        b.phys_ip = "fd00:0:f7:199::1".parse().unwrap();
        assert_eq!(cfg_mismatch(&a, &b), None);
        b.guest_mac = "a8:40:25:00:00:01".parse().unwrap();
        assert_eq!(cfg_mismatch(&a, &b), Some("guest MAC"));
        let mut c = a.clone();
        c.vni = opte_api::Vni::new(99u32).unwrap();
        assert_eq!(cfg_mismatch(&a, &c), Some("VNI"));
    }
}
