//! NAT primitives: 1:1 NAT (outbound to an external IP, inbound back to the private one)
//! and source NAT that shares an external IP by handing out ports from per-protocol pools.
//!
//! Both are stateful actions: the descriptor left in the layer flow table rewrites every
//! later packet of the flow in both directions, and a SNAT descriptor returns its port to the
//! pool when the flow ends (when the descriptor is dropped).

use super::action::{
    ActionDesc, ActionMeta, AllowOrDeny, DescState, GenDescError, MetaAction, StatefulAction,
    meta_keys,
};
use super::transform::{EmbeddedField, EmbeddedRewrite, HdrTransform};
use super::view::PacketView;
use crate::packet::parse::UlpKind;
use crate::sync::Mutex;
use crate::wire::icmp::{v4_type, v6_type};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;
use opte_api::{Direction, InnerFlowId, IpAddr};

/// Says whether an external IP is still assigned to the port, so a 1:1 NAT descriptor can
/// survive a soft rule refresh that kept its IP.
pub trait NatVerifier: Send + Sync {
    fn is_valid(&self, external: IpAddr) -> bool;
}

/// A verifier for tests and static configurations: every IP is valid.
pub struct AlwaysValid;

impl NatVerifier for AlwaysValid {
    fn is_valid(&self, _external: IpAddr) -> bool {
        true
    }
}

/// The 1:1 NAT descriptor.
pub struct NatDesc {
    private: IpAddr,
    external: IpAddr,
    verifier: Arc<dyn NatVerifier>,
}

impl ActionDesc for NatDesc {
    fn gen_ht(&self, dir: Direction, meta: &mut ActionMeta) -> HdrTransform {
        match dir {
            // An ICMP error quotes the packet it answers, which carries the address the other
            // side knows: the private one going out, the external one coming in.
            Direction::Out => {
                meta.insert(meta_keys::EXTERNAL_IP_APPLIED, "1");
                HdrTransform {
                    ip_src: Some(self.external),
                    embedded: Some(EmbeddedRewrite {
                        field: EmbeddedField::Dst,
                        from: self.private,
                        to: self.external,
                    }),
                    ..HdrTransform::identity("NAT")
                }
            }
            Direction::In => HdrTransform {
                ip_dst: Some(self.private),
                embedded: Some(EmbeddedRewrite {
                    field: EmbeddedField::Src,
                    from: self.external,
                    to: self.private,
                }),
                ..HdrTransform::identity("NAT")
            },
        }
    }

    fn name(&self) -> &'static str {
        "NAT"
    }

    fn export(&self) -> Option<DescState> {
        Some(DescState::Nat {
            private: self.private,
            external: self.external,
        })
    }

    fn is_valid(&self) -> bool {
        self.verifier.is_valid(self.external)
    }
}

/// Outbound 1:1 NAT: the source becomes one of the external IPs, chosen by flow hash.
pub struct OutboundNat {
    private: IpAddr,
    external: Vec<IpAddr>,
    verifier: Arc<dyn NatVerifier>,
}

impl OutboundNat {
    pub fn new(private: IpAddr, external: Vec<IpAddr>, verifier: Arc<dyn NatVerifier>) -> Self {
        Self {
            private,
            external,
            verifier,
        }
    }
}

impl fmt::Display for OutboundNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> ", self.private)?;
        for (i, e) in self.external.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl StatefulAction for OutboundNat {
    fn import_desc(&self, state: &DescState) -> Option<Arc<dyn ActionDesc>> {
        match state {
            DescState::Nat { private, external }
                if *private == self.private && self.external.contains(external) =>
            {
                Some(Arc::new(NatDesc {
                    private: self.private,
                    external: *external,
                    verifier: self.verifier.clone(),
                }))
            }
            _ => None,
        }
    }

    fn gen_desc(
        &self,
        flow: &InnerFlowId,
        _view: &PacketView,
        _meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<Arc<dyn ActionDesc>>, GenDescError> {
        let n = self.external.len();
        let idx = if n > 1 { flow.crc32() as usize % n } else { 0 };
        let external = *self
            .external
            .get(idx)
            .ok_or_else(|| GenDescError::Unexpected {
                msg: "no external IPs".into(),
            })?;
        Ok(AllowOrDeny::Allow(Arc::new(NatDesc {
            private: self.private,
            external,
            verifier: self.verifier.clone(),
        })))
    }
}

/// Inbound 1:1 NAT: traffic to an external IP goes to the private IP.
pub struct InboundNat {
    private: IpAddr,
    verifier: Arc<dyn NatVerifier>,
}

impl InboundNat {
    pub fn new(private: IpAddr, verifier: Arc<dyn NatVerifier>) -> Self {
        Self { private, verifier }
    }
}

impl fmt::Display for InboundNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "* -> {}", self.private)
    }
}

impl StatefulAction for InboundNat {
    fn import_desc(&self, state: &DescState) -> Option<Arc<dyn ActionDesc>> {
        match state {
            DescState::Nat { private, external }
                if *private == self.private && self.verifier.is_valid(*external) =>
            {
                Some(Arc::new(NatDesc {
                    private: self.private,
                    external: *external,
                    verifier: self.verifier.clone(),
                }))
            }
            _ => None,
        }
    }

    fn gen_desc(
        &self,
        _flow: &InnerFlowId,
        view: &PacketView,
        _meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<Arc<dyn ActionDesc>>, GenDescError> {
        let external = view.dst_ip().ok_or_else(|| GenDescError::Unexpected {
            msg: "inbound NAT of a non-IP packet".into(),
        })?;
        Ok(AllowOrDeny::Allow(Arc::new(NatDesc {
            private: self.private,
            external,
            verifier: self.verifier.clone(),
        })))
    }
}

/// Tags the packet as having an external IP applied, without rewriting it (for traffic a
/// layer knows is already external, e.g. floating IP return paths).
pub struct ExternalIpTagger;

impl fmt::Display for ExternalIpTagger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tag External IP")
    }
}

impl MetaAction for ExternalIpTagger {
    fn mod_meta(
        &self,
        _flow: &InnerFlowId,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<()>, String> {
        meta.insert(meta_keys::EXTERNAL_IP_APPLIED, "1");
        Ok(AllowOrDeny::Allow(()))
    }
}

/// Why a pool could not give out a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceError {
    Exhausted,
    NoMatch(String),
}

struct PoolEntry {
    public: IpAddr,
    range: RangeInclusive<u16>,
    /// Ports handed out from the end; initially the highest port is given first.
    free: Vec<u16>,
}

/// Public (IP, port) pairs for each private IP.
#[derive(Default)]
pub struct NatPool {
    entries: BTreeMap<IpAddr, PoolEntry>,
}

impl NatPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Give `private` the ports of `range` on `public` (replacing what it had).
    pub fn add(&mut self, private: IpAddr, public: IpAddr, range: RangeInclusive<u16>) {
        let free = range.clone().collect();
        self.entries.insert(
            private,
            PoolEntry {
                public,
                range,
                free,
            },
        );
    }

    pub fn remove(&mut self, private: IpAddr) {
        self.entries.remove(&private);
    }

    /// A free (public IP, port) for `private`.
    pub fn obtain(&mut self, private: IpAddr) -> Result<(IpAddr, u16), ResourceError> {
        let e = self
            .entries
            .get_mut(&private)
            .ok_or_else(|| ResourceError::NoMatch(format!("no SNAT entry for {private}")))?;
        let port = e.free.pop().ok_or(ResourceError::Exhausted)?;
        Ok((e.public, port))
    }

    /// Take `port` of `public` for `private` out of the free list (a flow that arrived
    /// with its translation already made, by a migration): `false` if the mapping is
    /// another, or the port is not free.
    pub fn take(&mut self, private: IpAddr, public: IpAddr, port: u16) -> bool {
        let Some(e) = self.entries.get_mut(&private) else {
            return false;
        };
        if e.public != public {
            return false;
        }
        match e.free.iter().position(|p| *p == port) {
            Some(i) => {
                e.free.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Return a port; ignored if the mapping changed since it was handed out.
    pub fn release(&mut self, private: IpAddr, public: IpAddr, port: u16) {
        if let Some(e) = self.entries.get_mut(&private)
            && e.public == public
            && e.range.contains(&port)
            && !e.free.contains(&port)
        {
            e.free.push(port);
        }
    }

    /// Free ports left for `private`.
    pub fn num_avail(&self, private: IpAddr) -> Option<usize> {
        self.entries.get(&private).map(|e| e.free.len())
    }

    /// (public IP, range) of `private`'s mapping.
    pub fn mapping(&self, private: IpAddr) -> Option<(IpAddr, RangeInclusive<u16>)> {
        self.entries
            .get(&private)
            .map(|e| (e.public, e.range.clone()))
    }
}

/// Source NAT with a pool per protocol: TCP and UDP by source port, ICMP/ICMPv6 echo by
/// identifier. Other ICMP is refused (there is no key to translate back).
pub struct SNat {
    private: IpAddr,
    tcp: Arc<Mutex<NatPool>>,
    udp: Arc<Mutex<NatPool>>,
    icmp: Arc<Mutex<NatPool>>,
    /// Refusals because a pool had no free port left.
    exhausted: core::sync::atomic::AtomicU64,
}

impl SNat {
    pub fn new(
        private: IpAddr,
        tcp: Arc<Mutex<NatPool>>,
        udp: Arc<Mutex<NatPool>>,
        icmp: Arc<Mutex<NatPool>>,
    ) -> Self {
        Self {
            private,
            tcp,
            udp,
            icmp,
            exhausted: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// One pool for all three protocols' mappings, each with its own copy.
    pub fn with_range(private: IpAddr, public: IpAddr, range: RangeInclusive<u16>) -> Self {
        let pool = || {
            let mut p = NatPool::new();
            p.add(private, public, range.clone());
            Arc::new(Mutex::new(p))
        };
        Self::new(private, pool(), pool(), pool())
    }

    /// How many new flows were refused for lack of a free port.
    pub fn exhausted_count(&self) -> u64 {
        self.exhausted.load(core::sync::atomic::Ordering::Relaxed)
    }

    pub fn tcp_pool(&self) -> &Arc<Mutex<NatPool>> {
        &self.tcp
    }
}

impl fmt::Display for SNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tcp.lock().mapping(self.private) {
            Some((IpAddr::Ip6(ip), r)) => write!(f, "[{ip}]:{}-{}", r.start(), r.end()),
            Some((ip, r)) => write!(f, "{ip}:{}-{}", r.start(), r.end()),
            None => write!(f, "{}: unmapped", self.private),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SnatKey {
    Port,
    EchoId,
}

/// A SNAT translation held by one flow; its port goes back to the pool on drop.
pub struct SNatDesc {
    pool: Arc<Mutex<NatPool>>,
    /// The protocol whose pool the port came from (6, 17, 1 or 58).
    proto: u8,
    private: IpAddr,
    public: IpAddr,
    public_key: u16,
    private_key: u16,
    key: SnatKey,
}

impl ActionDesc for SNatDesc {
    fn gen_ht(&self, dir: Direction, meta: &mut ActionMeta) -> HdrTransform {
        let name = self.name();
        match (dir, self.key) {
            (Direction::Out, k) => {
                meta.insert(meta_keys::EXTERNAL_IP_APPLIED, "1");
                let mut t = HdrTransform {
                    ip_src: Some(self.public),
                    ..HdrTransform::identity(name)
                };
                match k {
                    SnatKey::Port => t.src_port = Some(self.public_key),
                    SnatKey::EchoId => t.icmp_id = Some(self.public_key),
                }
                t
            }
            (Direction::In, k) => {
                let mut t = HdrTransform {
                    ip_dst: Some(self.private),
                    ..HdrTransform::identity(name)
                };
                match k {
                    SnatKey::Port => t.dst_port = Some(self.private_key),
                    SnatKey::EchoId => t.icmp_id = Some(self.private_key),
                }
                t
            }
        }
    }

    fn name(&self) -> &'static str {
        match self.key {
            SnatKey::Port => "SNAT",
            SnatKey::EchoId => "SNAT_ICMP_ECHO",
        }
    }

    fn export(&self) -> Option<DescState> {
        Some(DescState::SNat {
            proto: self.proto,
            private: self.private,
            public: self.public,
            private_key: self.private_key,
            public_key: self.public_key,
        })
    }
}

impl Drop for SNatDesc {
    fn drop(&mut self) {
        self.pool
            .lock()
            .release(self.private, self.public, self.public_key);
    }
}

impl SNat {
    /// The pool of protocol `proto` (ICMP and ICMPv6 echo share one).
    fn pool_of(&self, proto: u8) -> &Arc<Mutex<NatPool>> {
        match proto {
            6 => &self.tcp,
            17 => &self.udp,
            _ => &self.icmp,
        }
    }
}

impl StatefulAction for SNat {
    fn import_desc(&self, state: &DescState) -> Option<Arc<dyn ActionDesc>> {
        let DescState::SNat {
            proto,
            private,
            public,
            private_key,
            public_key,
        } = *state
        else {
            return None;
        };
        let key = match proto {
            6 | 17 => SnatKey::Port,
            1 | 58 => SnatKey::EchoId,
            _ => return None,
        };
        if private != self.private {
            return None;
        }
        let pool = self.pool_of(proto);
        if !pool.lock().take(private, public, public_key) {
            return None;
        }
        Some(Arc::new(SNatDesc {
            pool: pool.clone(),
            proto,
            private,
            public,
            public_key,
            private_key,
            key,
        }))
    }

    fn gen_desc(
        &self,
        flow: &InnerFlowId,
        view: &PacketView,
        _meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<Arc<dyn ActionDesc>>, GenDescError> {
        let Some(u) = view.ulp else {
            return Ok(AllowOrDeny::Deny);
        };
        let (proto, key, private_key) = match u.kind {
            UlpKind::Tcp => (6, SnatKey::Port, flow.src_port()),
            UlpKind::Udp => (17, SnatKey::Port, flow.src_port()),
            UlpKind::Icmpv4 if u.icmp_type == v4_type::ECHO_REQUEST => {
                (1, SnatKey::EchoId, u.icmp_id)
            }
            UlpKind::Icmpv6 if u.icmp_type == v6_type::ECHO_REQUEST => {
                (58, SnatKey::EchoId, u.icmp_id)
            }
            UlpKind::Icmpv4 | UlpKind::Icmpv6 => return Ok(AllowOrDeny::Deny),
        };
        let pool = self.pool_of(proto);
        let obtained = pool.lock().obtain(self.private);
        match obtained {
            Ok((public, public_key)) => Ok(AllowOrDeny::Allow(Arc::new(SNatDesc {
                pool: pool.clone(),
                proto,
                private: self.private,
                public,
                public_key,
                private_key,
                key,
            }))),
            Err(ResourceError::Exhausted) => {
                self.exhausted
                    .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                Err(GenDescError::ResourceExhausted {
                    name: "SNAT Pool (exhausted)".into(),
                })
            }
            Err(ResourceError::NoMatch(msg)) => Err(GenDescError::Unexpected { msg }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::samples;
    use crate::engine::view::Parsed;
    use crate::packet::parse::parse_guest;
    use alloc::string::ToString;
    use opte_api::Ipv4Addr;

    fn view(name: &str) -> (InnerFlowId, PacketView) {
        let s = samples::all().into_iter().find(|s| s.name == name).unwrap();
        let mut pkt = s.packet();
        let p = Parsed::Guest(parse_guest(&mut pkt).unwrap());
        (p.flow(), PacketView::new(&pkt, &p))
    }

    fn ip4(a: [u8; 4]) -> IpAddr {
        IpAddr::Ip4(Ipv4Addr::from_const(a))
    }

    #[test]
    fn nat4_rewrite_both_ways() {
        let (flow, v) = view("V4-Tcp-OUT-0B");
        let priv_ip = IpAddr::Ip4(samples::GUEST_IP4);
        let ext = ip4([10, 60, 1, 20]);
        let nat = OutboundNat::new(priv_ip, alloc::vec![ext], Arc::new(AlwaysValid));
        let mut meta = ActionMeta::new();
        let AllowOrDeny::Allow(d) = nat.gen_desc(&flow, &v, &mut meta).unwrap() else {
            panic!()
        };
        let out = d.gen_ht(Direction::Out, &mut meta);
        assert_eq!(out.ip_src, Some(ext));
        assert_eq!(meta.get(meta_keys::EXTERNAL_IP_APPLIED), Some("1"));
        assert_eq!(d.gen_ht(Direction::In, &mut meta).ip_dst, Some(priv_ip));
        assert!(d.is_valid());
    }

    #[test]
    fn outbound_nat_picks_by_flow_hash_and_refuses_empty_list() {
        let (flow, v) = view("V4-Udp-OUT-0B");
        let ips: Vec<IpAddr> = (1..=4).map(|i| ip4([10, 0, 0, i])).collect();
        let nat = OutboundNat::new(ip4([172, 30, 0, 5]), ips.clone(), Arc::new(AlwaysValid));
        let mut meta = ActionMeta::new();
        let AllowOrDeny::Allow(d) = nat.gen_desc(&flow, &v, &mut meta).unwrap() else {
            panic!()
        };
        let want = ips[flow.crc32() as usize % 4];
        assert_eq!(d.gen_ht(Direction::Out, &mut meta).ip_src, Some(want));
        let empty = OutboundNat::new(ip4([172, 30, 0, 5]), Vec::new(), Arc::new(AlwaysValid));
        assert!(matches!(
            empty.gen_desc(&flow, &v, &mut meta),
            Err(GenDescError::Unexpected { .. })
        ));
    }

    #[test]
    fn snat4_desc_lifecycle_returns_the_port() {
        let (flow, v) = view("V4-Tcp-OUT-0B");
        let priv_ip = IpAddr::Ip4(samples::GUEST_IP4);
        let public = ip4([10, 77, 77, 13]);
        let snat = SNat::with_range(priv_ip, public, 8765..=8765);
        let mut meta = ActionMeta::new();
        let AllowOrDeny::Allow(d) = snat.gen_desc(&flow, &v, &mut meta).unwrap() else {
            panic!()
        };
        let out = d.gen_ht(Direction::Out, &mut meta);
        assert_eq!((out.ip_src, out.src_port), (Some(public), Some(8765)));
        let back = d.gen_ht(Direction::In, &mut meta);
        assert_eq!((back.ip_dst, back.dst_port), (Some(priv_ip), Some(10010)));
        assert_eq!(snat.tcp_pool().lock().num_avail(priv_ip), Some(0));
        // The only port is taken: the next flow is refused and counted.
        let r = snat.gen_desc(&flow, &v, &mut meta);
        assert!(matches!(r, Err(GenDescError::ResourceExhausted { .. })));
        assert_eq!(snat.exhausted_count(), 1);
        drop(d);
        assert_eq!(snat.tcp_pool().lock().num_avail(priv_ip), Some(1));
        assert!(snat.gen_desc(&flow, &v, &mut meta).is_ok());
    }

    #[test]
    fn snat_icmp_echo_uses_the_identifier_and_denies_other_icmp() {
        let (flow, v) = view("Hairpin-ICMPv4/EchoRequest");
        let snat = SNat::with_range(
            IpAddr::Ip4(samples::GUEST_IP4),
            ip4([10, 77, 77, 13]),
            1025..=4096,
        );
        let mut meta = ActionMeta::new();
        let AllowOrDeny::Allow(d) = snat.gen_desc(&flow, &v, &mut meta).unwrap() else {
            panic!()
        };
        assert_eq!(d.name(), "SNAT_ICMP_ECHO");
        assert_eq!(d.gen_ht(Direction::Out, &mut meta).icmp_id, Some(4096));
        assert_eq!(d.gen_ht(Direction::In, &mut meta).icmp_id, Some(7));
        let mut not_echo = v;
        if let Some(u) = &mut not_echo.ulp {
            u.icmp_type = 3;
        }
        assert!(matches!(
            snat.gen_desc(&flow, &not_echo, &mut meta),
            Ok(AllowOrDeny::Deny)
        ));
    }

    #[test]
    fn nat_pool_mappings_and_different_ip_types() {
        let mut pool = NatPool::new();
        let v6priv = IpAddr::Ip6(samples::GUEST_IP6);
        pool.add(ip4([172, 30, 0, 5]), ip4([10, 77, 77, 13]), 1025..=1027);
        pool.add(v6priv, IpAddr::Ip6(samples::EPHEMERAL_IP6), 4097..=4098);
        assert_eq!(
            pool.obtain(ip4([172, 30, 0, 5])),
            Ok((ip4([10, 77, 77, 13]), 1027))
        );
        assert_eq!(
            pool.obtain(v6priv),
            Ok((IpAddr::Ip6(samples::EPHEMERAL_IP6), 4098))
        );
        assert!(matches!(
            pool.obtain(ip4([1, 1, 1, 1])),
            Err(ResourceError::NoMatch(_))
        ));
        // A port from outside the range, or a double release, is ignored.
        pool.release(v6priv, IpAddr::Ip6(samples::EPHEMERAL_IP6), 9999);
        pool.release(v6priv, IpAddr::Ip6(samples::EPHEMERAL_IP6), 4098);
        pool.release(v6priv, IpAddr::Ip6(samples::EPHEMERAL_IP6), 4098);
        assert_eq!(pool.num_avail(v6priv), Some(2));
        let s = SNat::with_range(v6priv, IpAddr::Ip6(samples::EPHEMERAL_IP6), 4097..=8192);
        assert_eq!(s.to_string(), "[2001:db8::2]:4097-8192");
    }
}
