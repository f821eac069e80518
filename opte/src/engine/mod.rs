//! The engine proper: ports, layers, rules, flow tables, TCP tracking, header transforms,
//! hairpin generators and NAT. Above [`crate::packet`] and [`crate::wire`]; below every
//! network implementation (the Oxide VPC lives in its own crate) and every host.

pub mod action;
pub mod flow_table;
pub mod frag;
pub mod gateway;
pub mod hairpin;
pub mod layer;
pub mod nat;
pub mod port;
pub mod predicate;
pub mod probe;
pub mod rule;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod transform;
pub mod view;
