//! The Oxide VPC on the engine: the five layers ([`gateway`], [`firewall`], [`router`],
//! [`nat`], [`overlay`], in outbound order) and [`VpcPort`], which builds a port from a
//! [`VpcCfg`] and keeps the configuration its rules were made from, so the control
//! operations ([`control`]) can change it and regenerate exactly the rules affected.

pub mod control;
pub mod firewall;
pub mod gateway;
pub mod meta;
pub mod nat;
pub mod overlay;
pub mod router;

use crate::api::{InternetGatewayMap, PhysNet, RouterClass, RouterTarget, VpcCfg};
use crate::tables::VpcTables;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::num::NonZeroU32;
use opte::engine::action::DefaultAction;
use opte::engine::hairpin::{self, HairpinReply};
use opte::engine::layer::{Layer, LayerActions};
use opte::engine::port::{HdlPktAction, NetworkImpl, Port, PortBuilder, Pos, ProcessResult};
use opte::engine::probe::{NoProbes, Probes};
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;
use opte::packet::parse::InnerMeta;
use opte_api::{Direction, IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, MacAddr, OpteError, RuleId};

/// The packets the VPC handles outside the rule tables: ARP requests for the gateway, and
/// for every other address of the guest's VPC subnet (proxy ARP, beyond the reference).
/// A guest whose address has the subnet's prefix (as Docker and most static
/// configurations give it) believes its neighbours are on its link and asks for them;
/// the answer is the gateway's MAC, and the router and overlay do the rest, as for any
/// packet sent to the gateway. The guest's own address is never claimed, so its duplicate
/// address probes stay unanswered.
pub struct VpcNetwork {
    gateway_mac: MacAddr,
    /// The gateway, the guest's own address and its VPC subnet.
    ip4: Option<(Ipv4Addr, Ipv4Addr, Ipv4Cidr)>,
    tables: Arc<VpcTables>,
}

impl NetworkImpl for VpcNetwork {
    fn handle_pkt(&self, dir: Direction, pkt: &Packet, meta: &InnerMeta) -> HdlPktAction {
        let (Direction::Out, Some((gw, own, subnet))) = (dir, self.ip4) else {
            return HdlPktAction::Deny;
        };
        let answers = |tpa: Ipv4Addr, spa: Ipv4Addr| {
            tpa == gw || (tpa != own && tpa != spa && subnet.is_member(tpa))
        };
        match hairpin::gen_proxy_arp_reply(pkt, meta, self.gateway_mac, answers) {
            Ok(HairpinReply::Reply(f)) => HdlPktAction::Hairpin(f),
            _ => HdlPktAction::Deny,
        }
    }

    /// Flows encapsulate to what V2P, V2B and M2P said when they were compiled: a change
    /// of any of them recompiles them.
    #[inline]
    fn epoch(&self) -> u64 {
        self.tables.epoch()
    }
}

/// Flow-table limits of a port.
#[derive(Clone, Copy, Debug)]
pub struct PortLimits {
    pub uft: NonZeroU32,
    pub tcp: NonZeroU32,
    pub firewall: NonZeroU32,
    pub gateway: NonZeroU32,
    pub router: NonZeroU32,
    pub nat: NonZeroU32,
    pub overlay: NonZeroU32,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl PortLimits {
    /// What the host gives a port: room for every NAT flow, and at least 512Ki flows.
    pub fn for_host(cfg: &VpcCfg) -> Self {
        let nat = cfg.required_nat_space();
        let big = nz(nat.max(524_288));
        Self {
            uft: big,
            tcp: big,
            firewall: big,
            gateway: nz(1),
            router: nz(1),
            nat: nz(nat),
            overlay: nz(1),
        }
    }

    /// The reference test harness's limits (BENCH.md §3.2).
    pub fn for_tests() -> Self {
        Self {
            uft: nz(16),
            tcp: nz(16),
            firewall: nz(8096),
            gateway: nz(8096),
            router: nz(1),
            nat: nz(8096),
            overlay: nz(1),
        }
    }
}

/// The guest's own addresses in V2P, as its sled's: so other ports of the host (and the
/// host's loopback) find it. A mapping that cannot be added undoes the ones that were.
fn register_v2p(tables: &VpcTables, cfg: &VpcCfg) -> Result<(), OpteError> {
    let me = phys_of(cfg);
    let ips = own_ips(cfg);
    for (i, ip) in ips.iter().enumerate() {
        if let Err(e) = tables.v2p.add(*ip, me) {
            for done in ips.iter().take(i) {
                let _ = tables.v2p.del(*done, me);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn phys_of(cfg: &VpcCfg) -> PhysNet {
    PhysNet {
        ether: cfg.guest_mac,
        ip: cfg.phys_ip,
        vni: cfg.vni,
    }
}

fn own_ips(cfg: &VpcCfg) -> Vec<IpAddr> {
    cfg.ipv4()
        .map(|c| IpAddr::Ip4(c.private_ip))
        .into_iter()
        .chain(cfg.ipv6().map(|c| IpAddr::Ip6(c.private_ip)))
        .collect()
}

/// A route as the control plane states it.
pub type RouteKey = (IpCidr, RouterTarget, RouterClass);

/// A guest's port on the Oxide VPC.
pub struct VpcPort<P: Probes = NoProbes> {
    port: Port<VpcNetwork, P>,
    cfg: VpcCfg,
    mtu: u32,
    igw_map: InternetGatewayMap,
    tables: Arc<VpcTables>,
    ext_ips: Arc<nat::ExternalIps>,
    routes: BTreeMap<RouteKey, RuleId>,
}

fn layer(
    name: &'static str,
    din: DefaultAction,
    dout: DefaultAction,
    limit: NonZeroU32,
    seed: u64,
) -> Layer {
    Layer::new(
        name,
        LayerActions {
            actions: vec![],
            default_in: din,
            default_out: dout,
        },
        limit,
        seed,
    )
}

impl VpcPort<NoProbes> {
    pub fn new(
        name: impl Into<String>,
        cfg: VpcCfg,
        mtu: u32,
        tables: Arc<VpcTables>,
        limits: PortLimits,
        seed: u64,
    ) -> Result<Self, OpteError> {
        Self::with_probes(name, cfg, mtu, tables, limits, seed, NoProbes)
    }
}

impl<P: Probes> VpcPort<P> {
    /// Build a port in state `Ready`, with every layer's rules installed (epoch 1).
    pub fn with_probes(
        name: impl Into<String>,
        cfg: VpcCfg,
        mtu: u32,
        tables: Arc<VpcTables>,
        limits: PortLimits,
        seed: u64,
        probes: P,
    ) -> Result<Self, OpteError> {
        use DefaultAction::{Allow, Deny, StatefulAllow};
        cfg.validate()?;
        register_v2p(&tables, &cfg)?;
        let ext_ips = Arc::new(nat::ExternalIps::default());
        ext_ips.set(
            cfg.ipv4()
                .map(|c| c.external_ips.clone())
                .unwrap_or_default(),
            cfg.ipv6()
                .map(|c| c.external_ips.clone())
                .unwrap_or_default(),
        );
        let igw_map = InternetGatewayMap::new();
        let s = |k: u64| seed.wrapping_add(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));

        let mut gw = layer(gateway::NAME, Deny, Deny, limits.gateway, s(1));
        let (i, o) = gateway::rules(&cfg, mtu, &tables);
        gw.set_rules(i, o);
        let fw = layer(firewall::NAME, Deny, StatefulAllow, limits.firewall, s(2));
        let mut rt = layer(router::NAME, Allow, Deny, limits.router, s(3));
        rt.set_rules(vec![], vec![router::multicast_rule()]);
        let mut nt = layer(nat::NAME, Allow, Allow, limits.nat, s(4));
        let (i, o) = nat::rules(&cfg, &igw_map, &ext_ips);
        nt.set_rules(i, o);
        let mut ov = layer(overlay::NAME, Deny, Deny, limits.overlay, s(5));
        let (i, o) = overlay::rules(cfg.phys_ip, cfg.vni, &tables);
        ov.set_rules(i, o);

        let mut b = PortBuilder::new(name, cfg.guest_mac);
        b.add_layer(fw, Pos::First)?;
        b.add_layer(gw, Pos::Before(firewall::NAME))?;
        b.add_layer(rt, Pos::After(firewall::NAME))?;
        b.add_layer(nt, Pos::After(router::NAME))?;
        b.add_layer(ov, Pos::Last)?;
        let net = VpcNetwork {
            gateway_mac: cfg.gateway_mac,
            ip4: cfg
                .ipv4()
                .map(|c| (c.gateway_ip, c.private_ip, c.vpc_subnet)),
            tables: tables.clone(),
        };
        let port = b.create_with_probes(net, limits.uft, limits.tcp, seed, probes);
        Ok(Self {
            port,
            cfg,
            mtu,
            igw_map,
            tables,
            ext_ips,
            routes: BTreeMap::new(),
        })
    }

    pub fn port(&self) -> &Port<VpcNetwork, P> {
        &self.port
    }

    /// The engine port, for state changes, dumps and flow-table operations. Rule edits
    /// should go through the control operations so the configuration stays in step.
    pub fn port_mut(&mut self) -> &mut Port<VpcNetwork, P> {
        &mut self.port
    }

    pub fn cfg(&self) -> &VpcCfg {
        &self.cfg
    }

    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    pub fn tables(&self) -> &Arc<VpcTables> {
        &self.tables
    }

    pub fn igw_map(&self) -> &InternetGatewayMap {
        &self.igw_map
    }

    /// Take the guest's own addresses out of V2P, unless they have since been mapped
    /// elsewhere (the guest moved, and the control plane said so first).
    fn unregister_v2p(&self) {
        let me = phys_of(&self.cfg);
        for ip in own_ips(&self.cfg) {
            let _ = self.tables.v2p.del(ip, me);
        }
    }

    pub fn process(
        &mut self,
        dir: Direction,
        pkt: &mut Packet,
        parsed: &Parsed,
        now: Moment,
    ) -> ProcessResult {
        self.port.process(dir, pkt, parsed, now)
    }
}

impl<P: Probes> Drop for VpcPort<P> {
    fn drop(&mut self) {
        self.unregister_v2p();
    }
}
