//! The CNI specification's vocabulary (version 1.1.0): the versions this plugin speaks,
//! its error object and codes, and the result object.

use serde::{Deserialize, Serialize};

/// The version this plugin answers in when asked in no particular one.
pub const VERSION: &str = "1.1.0";

/// The versions whose configuration and result this plugin reads and writes. The 1.x
/// results share one shape; 0.x ones (with `version` per address) are not spoken.
pub const SUPPORTED: &[&str] = &["1.0.0", "1.1.0"];

/// The specification's well-known error codes, and this plugin's own (100 and up).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later (the xde daemon is not running).
    pub const TRY_AGAIN: u32 = 11;
    /// STATUS: the plugin cannot serve ADD requests.
    pub const NOT_AVAILABLE: u32 = 50;
    /// The attachment (container ID and interface) already exists.
    pub const ALREADY_ATTACHED: u32 = 100;
    /// CHECK found the attachment not as ADD left it.
    pub const CHECK_FAILED: u32 = 101;
    /// The xde daemon refused a command.
    pub const DAEMON: u32 = 102;
    /// The container's network namespace could not be configured.
    pub const NETNS: u32 = 103;
}

/// An error as the specification writes it on standard output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// The CNI version of the answer.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// A [`code`].
    pub code: u32,
    /// A short message.
    pub msg: String,
    /// More about it, if there is more.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl Error {
    /// Error `code` saying `msg`.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            cni_version: VERSION.into(),
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with `details`.
    pub fn details(mut self, details: impl std::fmt::Display) -> Self {
        self.details = details.to_string();
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CNI error {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The result of ADD (and, as `prevResult`, the input of CHECK and DEL).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// An interface the plugin made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The namespace it is in; absent for a host interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// A vhost-user socket, when that is the interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
}

/// An address given to an interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// CIDR notation: the address and its prefix length.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// DNS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The answer to VERSION.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub cni_version: String,
    pub supported_versions: Vec<String>,
}

/// This plugin's VERSION answer, in `asked` if it speaks it.
pub fn version_info(asked: Option<&str>) -> VersionInfo {
    let v = asked.filter(|v| SUPPORTED.contains(v)).unwrap_or(VERSION);
    VersionInfo {
        cni_version: v.into(),
        supported_versions: SUPPORTED.iter().map(|s| s.to_string()).collect(),
    }
}

/// A version string's numbers, for ordering (`"1.0.0"` → `[1, 0, 0]`); `None` if it is
/// not one.
pub fn parse_version(v: &str) -> Option<[u32; 3]> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let out = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_specified_fields() {
        let e = Error::new(code::INVALID_CONFIG, "bad").details("vni: 0");
        let j: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"cniVersion": "1.1.0", "code": 7, "msg": "bad", "details": "vni: 0"})
        );
        let j = serde_json::to_value(Error::new(code::TRY_AGAIN, "later")).unwrap();
        assert!(j.get("details").is_none());
    }

    #[test]
    fn versions_are_negotiated() {
        assert_eq!(version_info(Some("1.0.0")).cni_version, "1.0.0");
        assert_eq!(version_info(Some("0.3.1")).cni_version, "1.1.0");
        assert_eq!(version_info(None).supported_versions, ["1.0.0", "1.1.0"]);
        assert_eq!(parse_version("1.10.2"), Some([1, 10, 2]));
        assert_eq!(parse_version("1.0"), None);
        assert_eq!(parse_version("1.0.0.0"), None);
        assert_eq!(parse_version("x.0.0"), None);
    }

    #[test]
    fn result_round_trips_and_leaves_out_what_is_empty() {
        let r = CniResult {
            cni_version: "1.1.0".into(),
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some("a8:40:25:f0:00:01".into()),
                mtu: Some(1500),
                sandbox: Some("/var/run/netns/p".into()),
                socket_path: None,
            }],
            ips: vec![IpConfig {
                address: "172.30.0.5/32".into(),
                gateway: Some("172.30.0.1".into()),
                interface: Some(0),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("172.30.0.1".into()),
            }],
            dns: Dns::default(),
        };
        let j = serde_json::to_value(&r).unwrap();
        assert!(j.get("dns").is_none());
        assert!(j["interfaces"][0].get("socketPath").is_none());
        assert_eq!(j["ips"][0]["interface"], 0);
        assert_eq!(serde_json::from_value::<CniResult>(j).unwrap(), r);
    }
}
