//! Containers on OPTE: an OPTE port per container, through the two ways runtimes attach a
//! container's network.
//!
//! | module | what |
//! |---|---|
//! | [`spec`] | the CNI specification's versions, errors and result |
//! | [`conf`] | the plugin's network configuration and environment, checked |
//! | [`ipam`] | delegation to an IPAM plugin (`host-local` and the like) |
//! | [`netns`] | the container's interface over rtnetlink |
//! | [`plugin`] | the CNI commands: ADD, DEL, CHECK, STATUS, GC, VERSION |
//! | [`docker`] | Docker's remote network driver protocol |
//!
//! The binaries: `opte-cni` (the plugin) and `opte-docker` (the Docker driver daemon).

pub mod conf;
pub mod docker;
pub mod ipam;
pub mod netns;
pub mod plugin;
pub mod spec;
