//! Upper-layer (L4) protocol constants shared by the engine and its clients.

/// The port number that asks for one to be chosen: as a source port, "any free port".
pub const DYNAMIC_PORT: u16 = 0;
