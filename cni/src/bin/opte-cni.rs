//! The OPTE CNI plugin: run by a container runtime with the `CNI_*` environment and the
//! network configuration on standard input. The result (or the specification's error
//! object, with a non-zero exit) goes to standard output.

use opte_cni::{conf::Env, plugin, spec};
use std::io::{Read, Write};

fn main() {
    let answer = Env::read(|k| std::env::var(k).ok()).and_then(|env| {
        let mut stdin = Vec::new();
        if env.command != "VERSION" || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            std::io::stdin().read_to_end(&mut stdin).map_err(|e| {
                spec::Error::new(spec::code::IO, "reading standard input").details(e)
            })?;
        }
        plugin::run(&env, &stdin)
    });
    let mut out = std::io::stdout().lock();
    match answer {
        Ok(Some(s)) => {
            let _ = writeln!(out, "{s}");
        }
        Ok(None) => {}
        Err(e) => {
            let body =
                serde_json::to_string(&e).unwrap_or_else(|_| format!("{{\"code\":{}}}", e.code));
            let _ = writeln!(out, "{body}");
            let _ = out.flush();
            std::process::exit(1);
        }
    }
}
