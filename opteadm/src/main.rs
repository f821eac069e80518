//! `opteadm`: parse the command line, reach the host, run the subcommand. Any error is
//! printed as `opteadm: <message>` and exits 1 (usage errors exit 2, as clap does).

use clap::Parser;
use opte_ioctl::{OpteHdl, UnixTransport};
use opteadm::Cli;
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let hdl = match &cli.socket {
        Some(path) => Ok(OpteHdl::new(UnixTransport::new(path))),
        None => OpteHdl::open(),
    };
    let result = hdl
        .map_err(opteadm::Error::from)
        .and_then(|hdl| opteadm::run(cli, &hdl, &mut io::stdin().lock(), &mut io::stdout().lock()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`opteadm dump-uft -p opte0 | head`) is not a failure.
        Err(opteadm::Error::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "opteadm: {e}");
            ExitCode::FAILURE
        }
    }
}
