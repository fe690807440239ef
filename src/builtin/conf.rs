//! The reference plugins' config schemas, parsed field for field. A field the built-in does not
//! understand makes the config [`Parsed::NotUnderstood`], so the caller execs the real plugin.

use serde_json::{Map, Value};

use crate::cni::result::Dns;

/// Which reference plugin a config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `macvlan`.
    Macvlan,
    /// `ipvlan`.
    Ipvlan,
    /// `vlan`.
    Vlan,
}

impl Plugin {
    /// The plugin for a `type` name, if it is one plexus builds in.
    pub fn from_type(t: &str) -> Option<Plugin> {
        Some(match t {
            "macvlan" => Plugin::Macvlan,
            "ipvlan" => Plugin::Ipvlan,
            "vlan" => Plugin::Vlan,
            _ => return None,
        })
    }

    /// The `type` name.
    pub fn name(&self) -> &'static str {
        match self {
            Plugin::Macvlan => "macvlan",
            Plugin::Ipvlan => "ipvlan",
            Plugin::Vlan => "vlan",
        }
    }

    fn own_keys(&self) -> &'static [&'static str] {
        match self {
            Plugin::Macvlan => &["master", "mode", "mtu", "mac"],
            Plugin::Ipvlan => &["master", "mode", "mtu"],
            Plugin::Vlan => &["master", "vlanId", "mtu"],
        }
    }
}

/// Keys every CNI plugin config may carry.
const COMMON_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "ipam",
    "dns",
    "runtimeConfig",
    "args",
    "prevResult",
    "capabilities",
    "linkInContainer",
];

/// A config the built-in fully understands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetConf {
    /// `cniVersion` (the result is printed in it).
    pub cni_version: String,
    /// `master`, empty when unset.
    pub master: String,
    /// `mode`, empty when unset.
    pub mode: String,
    /// `mtu`, 0 when unset.
    pub mtu: i64,
    /// `mac` after `CNI_ARGS MAC=` and `runtimeConfig.mac` are applied (empty: kernel's choice).
    pub mac: String,
    /// `vlanId` (vlan only).
    pub vlan_id: i64,
    /// `ipam.type`, empty when there is no IPAM.
    pub ipam_type: String,
    /// `dns`, copied into the result.
    pub dns: Dns,
    /// `prevResult` (CHECK, and DEL from 0.4.0).
    pub prev_result: Option<Value>,
}

/// What [`parse`] made of a config.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Every field is understood.
    Understood(Box<NetConf>),
    /// Something is beyond the built-in; the text says what (for the log).
    NotUnderstood(String),
}

/// Why a config is invalid (the real plugin would refuse it too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfError(pub String);

fn string(obj: &Map<String, Value>, key: &str) -> Result<String, ConfError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ConfError(format!(
            "failed to load netconf: {key} must be a string, not {other}"
        ))),
    }
}

fn int(obj: &Map<String, Value>, key: &str) -> Result<i64, ConfError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ConfError(format!(
                "failed to load netconf: {key} must be an integer, not {n}"
            ))
        }),
        Some(other) => Err(ConfError(format!(
            "failed to load netconf: {key} must be an integer, not {other}"
        ))),
    }
}

/// Parses `stdin` as a config of `plugin`, applying `CNI_ARGS` (`args`) the way the reference
/// does: `MAC=` overrides `mac`, `runtimeConfig.mac` overrides both; an unknown `CNI_ARGS` key is
/// an error unless `IgnoreUnknown` is set.
///
/// # Errors
/// [`ConfError`] for JSON the reference would refuse to load.
pub fn parse(plugin: Plugin, stdin: &[u8], args: &str) -> Result<Parsed, ConfError> {
    let v: Value = serde_json::from_slice(stdin)
        .map_err(|e| ConfError(format!("failed to load netconf: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ConfError("failed to load netconf: not a JSON object".into()))?;
    for k in obj.keys() {
        if !COMMON_KEYS.contains(&k.as_str()) && !plugin.own_keys().contains(&k.as_str()) {
            return Ok(Parsed::NotUnderstood(format!("field {k:?}")));
        }
    }
    if obj
        .get("linkInContainer")
        .is_some_and(|v| v != &Value::Bool(false))
    {
        return Ok(Parsed::NotUnderstood("linkInContainer".into()));
    }
    let ipam_type = match obj.get("ipam") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(m)) => string(m, "type")?,
        Some(_) => {
            return Err(ConfError(
                "failed to load netconf: ipam must be an object".into(),
            ));
        }
    };
    let dns: Dns = match obj.get("dns") {
        None | Some(Value::Null) => Dns::default(),
        Some(d) => serde_json::from_value(d.clone())
            .map_err(|e| ConfError(format!("failed to load netconf: dns: {e}")))?,
    };
    let mut conf = NetConf {
        cni_version: string(obj, "cniVersion")?,
        master: string(obj, "master")?,
        mode: string(obj, "mode")?,
        mtu: int(obj, "mtu")?,
        mac: string(obj, "mac")?,
        vlan_id: int(obj, "vlanId")?,
        ipam_type,
        dns,
        prev_result: obj.get("prevResult").filter(|v| !v.is_null()).cloned(),
    };
    if plugin == Plugin::Macvlan {
        if let Some(mac) = mac_from_args(args)? {
            conf.mac = mac;
        }
        if let Some(Value::Object(rc)) = obj.get("runtimeConfig") {
            let m = string(rc, "mac")?;
            if !m.is_empty() {
                conf.mac = m;
            }
        }
    }
    Ok(Parsed::Understood(Box::new(conf)))
}

/// `MAC=` from `CNI_ARGS`, with the reference's rule on unknown keys.
fn mac_from_args(args: &str) -> Result<Option<String>, ConfError> {
    let pairs: Vec<(&str, &str)> = args
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    let ignore_unknown = pairs.iter().any(|(k, v)| {
        *k == "IgnoreUnknown" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "t")
    });
    let unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "IgnoreUnknown" && *k != "MAC")
        .collect();
    if !unknown.is_empty() && !ignore_unknown {
        return Err(ConfError(format!("ARGS: unknown args {unknown:?}")));
    }
    Ok(pairs
        .iter()
        .find(|(k, _)| *k == "MAC")
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty()))
}

/// The `ipam.type` of a config, read leniently (empty when there is none or it is not a string):
/// what the built-in DEL needs when it stands in for a plugin binary whose DEL failed.
pub fn ipam_type_of(stdin: &[u8]) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("ipam")?.get("type")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Parses a MAC address in the colon or dash form (`02:11:22:33:44:55`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// Formats a MAC address the way results show it (lowercase, colons).
pub fn format_mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn understood(p: Plugin, s: &str, args: &str) -> NetConf {
        match parse(p, s.as_bytes(), args).unwrap() {
            Parsed::Understood(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn understood_fields_table() {
        let rows: &[(&str, Plugin, &str, &str, fn(&NetConf) -> bool)] = &[
            (
                "macvlan all fields",
                Plugin::Macvlan,
                r#"{"cniVersion":"1.0.0","name":"n","type":"macvlan","master":"eth0","mode":"vepa","mtu":1400,"mac":"02:00:00:00:00:01","ipam":{"type":"host-local"}}"#,
                "",
                |c| {
                    c.master == "eth0"
                        && c.mode == "vepa"
                        && c.mtu == 1400
                        && c.ipam_type == "host-local"
                        && c.mac == "02:00:00:00:00:01"
                },
            ),
            (
                "CNI_ARGS MAC overrides config",
                Plugin::Macvlan,
                r#"{"cniVersion":"1.0.0","type":"macvlan","mac":"02:00:00:00:00:01"}"#,
                "IgnoreUnknown=1;K8S_POD_NAME=p;MAC=02:00:00:00:00:02",
                |c| c.mac == "02:00:00:00:00:02",
            ),
            (
                "runtimeConfig mac overrides CNI_ARGS",
                Plugin::Macvlan,
                r#"{"cniVersion":"1.0.0","type":"macvlan","runtimeConfig":{"mac":"02:00:00:00:00:03"}}"#,
                "MAC=02:00:00:00:00:02",
                |c| c.mac == "02:00:00:00:00:03",
            ),
            (
                "vlan id",
                Plugin::Vlan,
                r#"{"cniVersion":"0.4.0","type":"vlan","master":"eth0","vlanId":42,"linkInContainer":false}"#,
                "",
                |c| c.vlan_id == 42 && c.cni_version == "0.4.0",
            ),
            (
                "ipvlan without ipam",
                Plugin::Ipvlan,
                r#"{"cniVersion":"1.0.0","type":"ipvlan","mode":"l3"}"#,
                "",
                |c| c.mode == "l3" && c.ipam_type.is_empty(),
            ),
        ];
        for (name, p, s, args, ok) in rows {
            let c = understood(*p, s, args);
            assert!(ok(&c), "{name}: {c:?}");
        }
    }

    #[test]
    fn not_understood_table() {
        let rows: &[(&str, Plugin, &str)] = &[
            (
                "unknown field",
                Plugin::Macvlan,
                r#"{"type":"macvlan","foo":1}"#,
            ),
            (
                "vlanId on macvlan",
                Plugin::Macvlan,
                r#"{"type":"macvlan","vlanId":1}"#,
            ),
            (
                "mac on ipvlan",
                Plugin::Ipvlan,
                r#"{"type":"ipvlan","mac":"02:00:00:00:00:01"}"#,
            ),
            (
                "linkInContainer",
                Plugin::Vlan,
                r#"{"type":"vlan","linkInContainer":true}"#,
            ),
        ];
        for (name, p, s) in rows {
            assert!(
                matches!(
                    parse(*p, s.as_bytes(), "").unwrap(),
                    Parsed::NotUnderstood(_)
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn invalid_table() {
        let rows: &[(&str, &str, &str)] = &[
            ("not json", "{", ""),
            ("mtu string", r#"{"type":"macvlan","mtu":"x"}"#, ""),
            ("unknown CNI_ARGS", r#"{"type":"macvlan"}"#, "FOO=1"),
        ];
        for (name, s, args) in rows {
            assert!(
                parse(Plugin::Macvlan, s.as_bytes(), args).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn mac_table() {
        let rows: &[(&str, Option<[u8; 6]>)] = &[
            ("02:11:22:33:44:55", Some([2, 0x11, 0x22, 0x33, 0x44, 0x55])),
            ("02-11-22-33-44-5A", Some([2, 0x11, 0x22, 0x33, 0x44, 0x5a])),
            ("02:11:22:33:44", None),
            ("zz:11:22:33:44:55", None),
            ("", None),
        ];
        for (s, want) in rows {
            assert_eq!(parse_mac(s), *want, "{s}");
        }
        assert_eq!(format_mac(&[2, 0xab, 0, 1, 2, 3]), "02:ab:00:01:02:03");
    }
}
