//! The `k8s.v1.cni.cncf.io/networks` and `v1.multus-cni.io/default-network` annotation parser:
//! annotation text in, validated [`Selection`]s out (NPWG v1.3, with the leniencies Multus has).

use std::collections::HashMap;

use serde_json::{Map, Value};

mod error;
mod validate;
pub use error::SelectionError;
use validate::validate;

/// The pod annotation selecting additional networks.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// The pod annotation replacing the cluster default network for that pod.
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";
/// Largest annotation value parsed; longer values are rejected without being parsed.
pub const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
/// Most networks one annotation may select.
pub const MAX_ELEMENTS: usize = 64;

/// Longest quote of user input placed in an error message.
const MAX_QUOTE: usize = 200;

/// One validated network-selection element.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// NetworkAttachmentDefinition name (a DNS-1123 subdomain).
    pub name: String,
    /// NetworkAttachmentDefinition namespace: as given, else the pod's namespace.
    pub namespace: String,
    /// Requested interface name in the pod; `None` means the engine picks `net<N>`.
    pub interface: Option<String>,
    /// Requested addresses, as given (CIDR or bare IP), each a valid IPv4 or IPv6 address.
    pub ips: Vec<String>,
    /// Requested MAC address, as given; 6, 8 or 20 octets.
    pub mac: Option<String>,
    /// Gateways (`default-route`) that should carry the pod's default route; one per family at most
    /// across the whole annotation.
    pub default_route: Vec<String>,
    /// `portMappings` entries, as given (each an object with well-typed known keys).
    pub port_mappings: Vec<Value>,
    /// `bandwidth` object, as given (known keys are integers).
    pub bandwidth: Option<Value>,
    /// `cni-args`: merged into each plugin's `args.cni`.
    pub cni_args: Option<Map<String, Value>>,
    /// Requested InfiniBand GUID, as given (8 octets).
    pub infiniband_guid: Option<String>,
    /// Requested device (e.g. a PCI address of an SR-IOV VF).
    pub device_id: Option<String>,
    /// Name of an `IPAMClaim` holding the addresses (never together with `ips`).
    pub ipam_claim_reference: Option<String>,
}

/// Parses `k8s.v1.cni.cncf.io/networks`: a JSON list of selection elements, or comma-separated
/// `[namespace/]name[@interface]` items. An empty or whitespace-only value selects nothing.
///
/// # Errors
/// A [`SelectionError`] for the first problem found: size or count over the limits, broken JSON, a
/// JSON value that is not a list of objects, an empty or malformed item, a missing, mistyped or
/// invalid field, a duplicate interface name, or two `default-route`s of one family.
pub fn parse_networks(value: &str, pod_namespace: &str) -> Result<Vec<Selection>, SelectionError> {
    let annotation = NETWORKS_ANNOTATION;
    check_size(annotation, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let elements = if trimmed.starts_with('[') {
        json_list(annotation, trimmed)?
    } else if trimmed.starts_with('{') {
        return Err(SelectionError::Shape {
            annotation,
            expected: "a JSON list of selection elements",
            found: "a JSON object",
            value: quote(trimmed),
        });
    } else {
        let items: Vec<&str> = trimmed.split(',').collect();
        if items.len() > MAX_ELEMENTS {
            return Err(SelectionError::TooMany {
                annotation,
                count: items.len(),
            });
        }
        items
            .into_iter()
            .map(|item| Element::Short(item.trim(), trimmed))
            .collect()
    };
    parse_elements(annotation, &elements, pod_namespace)
}

/// Parses `v1.multus-cni.io/default-network`: one network, as `name`, `namespace/name`, a JSON
/// selection object, or a JSON list of exactly one. Callers treat an absent annotation as "no
/// override"; an empty value is an error here.
///
/// # Errors
/// [`SelectionError::Empty`] for an empty value, [`SelectionError::NotOne`] for zero or several
/// networks, and any error [`parse_networks`] reports for an element.
pub fn parse_default_network(
    value: &str,
    pod_namespace: &str,
) -> Result<Selection, SelectionError> {
    let annotation = DEFAULT_NETWORK_ANNOTATION;
    check_size(annotation, value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SelectionError::Empty { annotation });
    }
    let elements = if trimmed.starts_with('[') {
        json_list(annotation, trimmed)?
    } else if trimmed.starts_with('{') {
        vec![Element::Json(parse_json(annotation, trimmed)?)]
    } else {
        let items: Vec<&str> = trimmed.split(',').collect();
        if items.len() != 1 {
            return Err(SelectionError::NotOne {
                annotation,
                count: items.len(),
            });
        }
        vec![Element::Short(trimmed, trimmed)]
    };
    if elements.len() != 1 {
        return Err(SelectionError::NotOne {
            annotation,
            count: elements.len(),
        });
    }
    let mut selections = parse_elements(annotation, &elements, pod_namespace)?;
    selections.pop().ok_or(SelectionError::NotOne {
        annotation,
        count: 0,
    })
}

/// One element before validation.
enum Element<'a> {
    /// A comma-separated item (trimmed) and the whole value it came from.
    Short(&'a str, &'a str),
    /// A JSON list element.
    Json(Value),
}

fn check_size(annotation: &'static str, value: &str) -> Result<(), SelectionError> {
    if value.len() > MAX_ANNOTATION_BYTES {
        return Err(SelectionError::TooLarge {
            annotation,
            len: value.len(),
        });
    }
    Ok(())
}

fn parse_json(annotation: &'static str, text: &str) -> Result<Value, SelectionError> {
    serde_json::from_str(text).map_err(|e| SelectionError::Json {
        annotation,
        value: quote(text),
        reason: e.to_string(),
    })
}

fn json_list<'a>(annotation: &'static str, text: &str) -> Result<Vec<Element<'a>>, SelectionError> {
    let list = match parse_json(annotation, text)? {
        Value::Array(list) => list,
        other => {
            return Err(SelectionError::Shape {
                annotation,
                expected: "a JSON list of selection elements",
                found: kind(&other),
                value: quote(text),
            });
        }
    };
    if list.len() > MAX_ELEMENTS {
        return Err(SelectionError::TooMany {
            annotation,
            count: list.len(),
        });
    }
    Ok(list.into_iter().map(Element::Json).collect())
}

/// Validates every element in order, then the rules that span elements.
fn parse_elements(
    annotation: &'static str,
    elements: &[Element<'_>],
    pod_namespace: &str,
) -> Result<Vec<Selection>, SelectionError> {
    let mut out = Vec::with_capacity(elements.len());
    let mut interfaces: HashMap<String, usize> = HashMap::new();
    let mut gateways: [Option<usize>; 2] = [None, None];
    for (index, element) in elements.iter().enumerate() {
        let ctx = Ctx {
            annotation,
            index,
            quoted: match element {
                Element::Short(item, _) => quote(item),
                Element::Json(v) => quote_raw(&v.to_string()),
            },
        };
        let sel = match element {
            Element::Short(item, whole) => short_item(&ctx, item, whole, pod_namespace)?,
            Element::Json(v) => json_element(&ctx, v, pod_namespace)?,
        };
        validate(&ctx, &sel)?;
        if let Some(ifname) = &sel.interface {
            if let Some(&first) = interfaces.get(ifname) {
                return Err(SelectionError::DuplicateInterface {
                    annotation,
                    index,
                    element: ctx.quoted,
                    interface: ifname.clone(),
                    first,
                });
            }
            interfaces.insert(ifname.clone(), index);
        }
        for gw in &sel.default_route {
            let v6 = crate::cni::ip::text_is_v6(gw);
            let slot = &mut gateways[usize::from(v6)];
            if let Some(first) = *slot {
                return Err(SelectionError::DuplicateDefaultRoute {
                    annotation,
                    index,
                    element: ctx.quoted,
                    family: if v6 { "IPv6" } else { "IPv4" },
                    gateway: gw.clone(),
                    first,
                });
            }
            *slot = Some(index);
        }
        out.push(sel);
    }
    Ok(out)
}

/// Where an element sits, for error messages.
struct Ctx {
    annotation: &'static str,
    index: usize,
    quoted: String,
}

impl Ctx {
    fn field(&self, field: impl Into<String>, reason: impl Into<String>) -> SelectionError {
        SelectionError::Field {
            annotation: self.annotation,
            index: self.index,
            element: self.quoted.clone(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn short(&self, reason: impl Into<String>) -> SelectionError {
        SelectionError::ShortForm {
            annotation: self.annotation,
            index: self.index,
            element: self.quoted.clone(),
            reason: reason.into(),
        }
    }
}

/// `[namespace/]name[@interface]`; an explicitly empty namespace or interface is an error.
fn short_item(
    ctx: &Ctx,
    item: &str,
    whole: &str,
    pod_namespace: &str,
) -> Result<Selection, SelectionError> {
    if item.is_empty() {
        return Err(SelectionError::EmptyItem {
            annotation: ctx.annotation,
            index: ctx.index,
            value: quote(whole),
        });
    }
    let (namespace, rest) = match item.split_once('/') {
        Some((_, rest)) if rest.contains('/') => return Err(ctx.short("more than one '/'")),
        Some(("", _)) => return Err(ctx.field("namespace", "is empty before '/'")),
        Some((ns, rest)) => (ns, rest),
        None => (pod_namespace, item),
    };
    let (name, interface) = match rest.split_once('@') {
        Some((_, ifname)) if ifname.contains('@') => return Err(ctx.short("more than one '@'")),
        Some((_, "")) => return Err(ctx.field("interface", "is empty after '@'")),
        Some((name, ifname)) => (name, Some(ifname.to_string())),
        None => (rest, None),
    };
    Ok(Selection {
        name: name.to_string(),
        namespace: namespace.to_string(),
        interface,
        ..Selection::default()
    })
}

/// A JSON selection element. Keys match exactly, else ASCII case-insensitively (as Go's
/// encoding/json does for Multus); `null` and `""` mean absent; unknown keys are ignored.
fn json_element(ctx: &Ctx, v: &Value, pod_namespace: &str) -> Result<Selection, SelectionError> {
    let Value::Object(obj) = v else {
        return Err(SelectionError::NotObject {
            annotation: ctx.annotation,
            index: ctx.index,
            element: ctx.quoted.clone(),
            found: kind(v),
        });
    };
    let f = Fields { ctx, obj };
    let name = f
        .string("name")?
        .ok_or_else(|| ctx.field("name", "is required and must be a non-empty string"))?;
    let port_mappings = f
        .list("portMappings")?
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let field = format!("portMappings[{i}]");
            typed_object(
                ctx,
                &field,
                entry,
                &["hostPort", "containerPort"],
                &["protocol", "hostIP"],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bandwidth = f
        .get("bandwidth")
        .map(|b| {
            let ints = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"];
            typed_object(ctx, "bandwidth", b, &ints, &[])
        })
        .transpose()?;
    let cni_args = match f.get("cni-args") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(other) => return Err(ctx.field("cni-args", wrong_type("an object", other))),
    };
    Ok(Selection {
        name,
        namespace: f
            .string("namespace")?
            .unwrap_or_else(|| pod_namespace.to_string()),
        interface: f.string("interface")?,
        ips: f.strings("ips")?,
        mac: f.string("mac")?,
        default_route: f.strings("default-route")?,
        port_mappings,
        bandwidth,
        cni_args,
        infiniband_guid: f.string("infiniband-guid")?,
        device_id: f.string("deviceID")?,
        ipam_claim_reference: f.string("ipam-claim-reference")?,
    })
}

/// Typed access to the keys of one JSON element.
struct Fields<'a> {
    ctx: &'a Ctx,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        lookup(self.obj, key)
    }

    fn string(&self, key: &str) -> Result<Option<String>, SelectionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.ctx.field(key, wrong_type("a string", other))),
        }
    }

    fn list(&self, key: &str) -> Result<&'a [Value], SelectionError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(list)) => Ok(list),
            Some(other) => Err(self.ctx.field(key, wrong_type("a list", other))),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, SelectionError> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self
                    .ctx
                    .field(format!("{key}[{i}]"), wrong_type("a string", other))),
            })
            .collect()
    }
}

/// The value of `key`: exact match first, else an ASCII case-insensitive one; `null` is absent.
fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// Checks that `v` is an object whose known keys have the right type; returns it as given.
fn typed_object(
    ctx: &Ctx,
    field: &str,
    v: &Value,
    int_keys: &[&str],
    string_keys: &[&str],
) -> Result<Value, SelectionError> {
    let Value::Object(obj) = v else {
        return Err(ctx.field(field, wrong_type("an object", v)));
    };
    for key in int_keys {
        if let Some(x) = lookup(obj, key).filter(|x| x.as_i64().is_none()) {
            return Err(ctx.field(format!("{field}.{key}"), wrong_type("an integer", x)));
        }
    }
    for key in string_keys {
        if let Some(x) = lookup(obj, key).filter(|x| !x.is_string()) {
            return Err(ctx.field(format!("{field}.{key}"), wrong_type("a string", x)));
        }
    }
    Ok(v.clone())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(expected: &str, found: &Value) -> String {
    match found {
        Value::Null => format!("expected {expected}, found null"),
        _ => format!(
            "expected {expected}, found {} {}",
            kind(found),
            quote_raw(&found.to_string())
        ),
    }
}

/// `s` cut to [`MAX_QUOTE`] bytes at a character boundary, with `...` when cut.
fn quote_raw(s: &str) -> String {
    crate::text::truncate(s, MAX_QUOTE)
}

/// [`quote_raw`] in Rust string-literal quotes, control characters escaped.
fn quote(s: &str) -> String {
    format!("{:?}", quote_raw(s))
}

#[cfg(test)]
mod tests;
