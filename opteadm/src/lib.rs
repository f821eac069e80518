//! `opteadm`, the operator's CLI for OPTE, as a library so its commands can be tested
//! against an in-process host.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line ([`Cli`]): SPEC §5's subcommands, `--page-size`, `--json`, `--socket` |
//! | [`config`] | `create-xde`'s port configuration and the external addresses, by family |
//! | [`run`](mod@run) | [`run()`]: what each subcommand does and prints |
//!
//! The binary (`src/main.rs`) only parses, opens the handle and reports errors.
//!
//! Not for: tables (those are `oxide_vpc::print`'s) or transport (that is `opte_ioctl`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Errors are values printed as `opteadm: <message>`, never panics.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod cli;
pub mod config;
pub mod run;

pub use cli::Cli;
pub use run::run;

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command did not get a response, or the host refused it.
    #[error(transparent)]
    Opte(#[from] opte_ioctl::Error),

    /// The arguments or input do not make a request, or the host's answer means the
    /// request did nothing (e.g. no such router entry).
    #[error("{0}")]
    Usage(String),

    /// The host's answers do not fit together (a paged dump whose cursor does not move
    /// forward).
    #[error("{0}")]
    Host(String),

    /// Reading stdin or writing stdout failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),

    /// The response could not be written as JSON.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_major_api_commits() {
        let v = crate::cli::VERSION;
        let prefix = format!("{}.{}.", opte_api::MAJOR_VERSION, opte_api::API_VERSION);
        let commits = v.strip_prefix(&prefix).unwrap_or_else(|| panic!("{v}"));
        assert!(commits.parse::<u64>().is_ok(), "{v}");
    }
}
