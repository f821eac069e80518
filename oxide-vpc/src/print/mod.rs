//! Text tables for the read commands of `opteadm` (SPEC §5): one function per command,
//! writing to any [`std::io::Write`], with the reference's titles and column headers.
//!
//! | module | tables |
//! |---|---|
//! | [`engine`] | `list-layers`, `dump-layer`, `dump-uft`, `dump-tcp-flows` (the engine's generic dumps) |
//! | [`vpc`] | `list-ports`, `dump-v2p`, `dump-v2b`, `dump-m2p`, `dump-mcast-fwd`, `dump-mcast-subs` |
//!
//! Columns are aligned by `table::Table`, a small elastic-tabstop writer with the
//! reference's (tabwriter's) layout: every cell but the last of a row is padded to its
//! column's widest cell plus two spaces. Trailing blanks are trimmed from every line.
//!
//! Not for JSON: the response types are serde types, and `opteadm --json` serialises them
//! directly. Only built with the `std` feature; the network itself never prints.

pub mod engine;
mod table;
pub mod vpc;

pub use engine::{print_layer, print_layers, print_tcp_flows, print_uft};
pub use vpc::{print_m2p, print_mcast_fwd, print_mcast_subs, print_ports, print_v2b, print_v2p};

use std::io::{self, Write};
use std::string::String;

/// Width of the horizontal rules under titles.
const RULE_WIDTH: usize = 70;

/// A heavy rule: 70 `=`, under a command's title.
fn write_hrb<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    writeln!(w, "{}", "=".repeat(RULE_WIDTH))
}

/// A light rule: 70 `-`, under a section's title or a table's header.
fn write_hr<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    writeln!(w, "{}", light_rule())
}

/// The text of a light rule, for a table that holds one between its rows.
fn light_rule() -> String {
    "-".repeat(RULE_WIDTH)
}

/// A printer's output as text.
#[cfg(test)]
fn render(print: impl FnOnce(&mut std::vec::Vec<u8>) -> io::Result<()>) -> String {
    let mut out = std::vec::Vec::new();
    print(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// `opteadm --json` prints the response types with serde_json: what it prints must read
/// back as the same value.
#[cfg(test)]
fn assert_json_round_trip<T>(v: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug,
{
    let json = serde_json::to_string(v).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), v, "{json}");
}
