//! The metadata actions the VPC layers share: [`VpcMeta`] (the gateway's anti-spoof rule
//! action, which also tells the firewall which VPC the destination is in) and
//! [`RouterAction`] (the router's choice, read by NAT and the overlay).

use crate::api::RouterTarget;
use crate::tables::VpcTables;
use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use core::fmt;
use opte::engine::action::{ActionMeta, AllowOrDeny, MetaAction, meta_keys};
use opte_api::{FLOW_ID_DEFAULT, InnerFlowId, Vni};

/// The `vni` metadata value of a VNI.
pub fn vni_meta(vni: Vni) -> String {
    vni.as_u32().to_string()
}

/// Allows the packet and, when its destination is a guest of some VPC, records that VPC's
/// VNI as `vni` metadata (the firewall's `hosts=vni=N` filters read it). The port's own VPC
/// is looked in first: private address ranges repeat across VPCs.
pub struct VpcMeta {
    my_vni: Vni,
    tables: Arc<VpcTables>,
}

impl VpcMeta {
    pub fn new(my_vni: Vni, tables: Arc<VpcTables>) -> Self {
        Self { my_vni, tables }
    }
}

impl fmt::Display for VpcMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VPC meta")
    }
}

impl MetaAction for VpcMeta {
    fn mod_meta(
        &self,
        flow: &InnerFlowId,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<()>, String> {
        if *flow == FLOW_ID_DEFAULT {
            return Ok(AllowOrDeny::Allow(()));
        }
        let dst = flow.dst_ip();
        let vni = if self.tables.v2p.get(self.my_vni, dst).is_some() {
            Some(self.my_vni)
        } else {
            self.tables.v2p.ip_to_vni(dst)
        };
        if let Some(v) = vni {
            meta.insert(meta_keys::VNI, vni_meta(v));
        }
        Ok(AllowOrDeny::Allow(()))
    }
}

/// Records the router's target for the later layers.
pub struct RouterAction {
    target: RouterTarget,
    /// The target's text form, made once with the rule rather than for every new flow
    /// (and borrowed, so not even copied, for the targets without an argument).
    text: Cow<'static, str>,
}

impl RouterAction {
    pub fn new(target: RouterTarget) -> Self {
        let text = match target {
            RouterTarget::Drop => Cow::Borrowed("drop"),
            RouterTarget::InternetGateway(None) => Cow::Borrowed("ig"),
            t => Cow::Owned(t.to_string()),
        };
        Self { target, text }
    }

    pub fn target(&self) -> RouterTarget {
        self.target
    }
}

impl fmt::Display for RouterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)
    }
}

impl MetaAction for RouterAction {
    fn mod_meta(
        &self,
        _flow: &InnerFlowId,
        meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<()>, String> {
        meta.insert(meta_keys::ROUTER_TARGET, self.text.clone());
        meta.insert(meta_keys::ROUTER_TARGET_CLASS, self.target.class_meta());
        Ok(AllowOrDeny::Allow(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The router-target metadata is the target's text form, whichever way it is made, and
    /// the overlay reads it back as the same target.
    #[test]
    fn router_target_text_is_its_display_form() {
        for t in [
            "drop",
            "ig",
            "ig=6e4b7c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b",
            "ip4=10.0.0.1",
            "ip6=fd00::1",
            "sub4=10.0.0.0/24",
            "sub6=fd00::/64",
        ] {
            let target: RouterTarget = t.parse().unwrap();
            let a = RouterAction::new(target);
            let mut meta = ActionMeta::new();
            a.mod_meta(&FLOW_ID_DEFAULT, &mut meta).unwrap();
            let text = meta.get(meta_keys::ROUTER_TARGET).unwrap();
            assert_eq!(text, target.to_string());
            assert_eq!(text, t);
            assert_eq!(text.parse::<RouterTarget>().unwrap(), a.target());
        }
    }
}
