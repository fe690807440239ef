//! The test API server's state: stored objects, the request log and pending faults, with the
//! object semantics of kube-apiserver (resourceVersion, uid, subresources, preconditions).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::status::{ApiStatus, Resource};
use super::watch::{Query, WatchBody, Watches, page};
use super::{Fault, FaultKind, Recorded};

/// Objects keyed by `(namespace, name)`, listed in that order as the API server lists them.
type Objects = BTreeMap<(String, String), Value>;

/// Which endpoint of a pod a write goes to; each one ignores what the other owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodPart {
    /// `/pods/{name}`: `status` is kept as stored.
    Main,
    /// `/pods/{name}/status`: `spec` and `metadata.ownerReferences` are kept as stored.
    Status,
}

/// Everything the server knows, behind one mutex.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pods: Objects,
    nads: Objects,
    pub(crate) events: Vec<Value>,
    pub(crate) requests: Vec<Recorded>,
    faults: Vec<Fault>,
    pub(crate) down: bool,
    revision: u64,
    serial: u64,
    pod_watches: Watches,
    nad_watches: Watches,
    /// The next this many list requests (not watches) fail with this code.
    list_faults: (u32, u16),
    /// Moves on every request and every watch that ends: what [`TestApiServer::wait_until`]
    /// waits on.
    ///
    /// [`TestApiServer::wait_until`]: super::TestApiServer::wait_until
    pub(crate) generation: u64,
}

impl Store {
    fn next_revision(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn objects(&self, resource: Resource) -> &Objects {
        match resource {
            Resource::Nads => &self.nads,
            _ => &self.pods,
        }
    }

    fn objects_mut(&mut self, resource: Resource) -> &mut Objects {
        match resource {
            Resource::Nads => &mut self.nads,
            _ => &mut self.pods,
        }
    }

    fn watches_mut(&mut self, resource: Resource) -> &mut Watches {
        match resource {
            Resource::Nads => &mut self.nad_watches,
            _ => &mut self.pod_watches,
        }
    }

    /// The current revision (the `resourceVersion` of the newest change).
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// Inserts or replaces a pod or NAD, filling `apiVersion`, `kind`, `metadata.namespace`
    /// (`default`), `metadata.uid` and `metadata.resourceVersion` when missing.
    ///
    /// # Panics
    /// When `obj` is not a JSON object or has no `metadata.name`: a broken test fixture.
    pub(crate) fn put(&mut self, resource: Resource, mut obj: Value) {
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_serial());
        let revision = self.next_revision();
        let Some(map) = obj.as_object_mut() else {
            panic!(
                "testapi: a {} must be a JSON object, got {obj}",
                resource.kind()
            );
        };
        map.entry("apiVersion")
            .or_insert_with(|| json!(resource.api_version()));
        map.entry("kind").or_insert_with(|| json!(resource.kind()));
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            panic!(
                "testapi: metadata of a {} must be an object",
                resource.kind()
            );
        };
        let Some(name) = meta
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            panic!("testapi: a {} needs metadata.name", resource.kind());
        };
        let name = name.to_owned();
        let ns = meta.entry("namespace").or_insert_with(|| json!("default"));
        let ns = ns.as_str().unwrap_or("default").to_owned();
        meta.entry("uid").or_insert_with(|| json!(uid));
        meta.entry("resourceVersion")
            .or_insert_with(|| json!(revision));
        let old = self.objects_mut(resource).insert((ns, name), obj.clone());
        let revision = self.revision;
        self.watches_mut(resource)
            .record(revision, old.as_ref(), Some(&obj));
    }

    /// Removes a pod or NAD; absent is fine. Watches see it DELETED at a new revision.
    pub(crate) fn remove(&mut self, resource: Resource, ns: &str, name: &str) {
        let Some(mut gone) = self
            .objects_mut(resource)
            .remove(&(ns.to_owned(), name.to_owned()))
        else {
            return;
        };
        let revision = self.next_revision();
        gone["metadata"]["resourceVersion"] = json!(revision);
        let revision = self.revision;
        self.watches_mut(resource)
            .record(revision, Some(&gone), None);
    }

    /// The stored pod or NAD, or the 404 the API server would answer.
    pub(crate) fn get(&self, resource: Resource, ns: &str, name: &str) -> Result<Value, ApiStatus> {
        self.objects(resource)
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| ApiStatus::not_found(resource, name))
    }

    /// A `PodList` or `NetworkAttachmentDefinitionList` of one namespace, or of all when `ns` is
    /// `None`, filtered by the query's field selector and paged by its `limit` and `continue`.
    /// Pod items carry no `apiVersion`/`kind`, as built-in list items from the server do not.
    /// Fails while list faults are pending ([`Store::fail_lists`]).
    pub(crate) fn list(
        &mut self,
        resource: Resource,
        ns: Option<&str>,
        query: &Query,
    ) -> Result<Value, ApiStatus> {
        if self.list_faults.0 > 0 {
            self.list_faults.0 -= 1;
            return Err(ApiStatus::injected(self.list_faults.1));
        }
        let matching: Vec<_> = self
            .objects(resource)
            .iter()
            .filter(|((item_ns, _), _)| ns.is_none_or(|ns| ns == item_ns))
            .filter(|(_, obj)| query.fields.matches(obj))
            .collect();
        let (items, revision, next) = page(matching, query, self.revision)?;
        let items: Vec<Value> = items
            .into_iter()
            .map(|obj| {
                let mut obj = obj.clone();
                if resource == Resource::Pods
                    && let Some(map) = obj.as_object_mut()
                {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                obj
            })
            .collect();
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if let Some(next) = next {
            metadata["continue"] = json!(next);
        }
        Ok(json!({
            "apiVersion": resource.api_version(),
            "kind": format!("{}List", resource.kind()),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Opens a watch of `resource` (in `ns`, or all namespaces) as the query asks.
    pub(crate) fn watch(
        &mut self,
        resource: Resource,
        ns: Option<&str>,
        query: &Query,
    ) -> WatchBody {
        let revision = self.revision;
        let current: Vec<Value> = self.objects(resource).values().cloned().collect();
        let refs: Vec<&Value> = current.iter().collect();
        self.watches_mut(resource)
            .open(resource, ns, query, &refs, revision)
    }

    /// Ends every open watch stream.
    pub(crate) fn drop_watches(&mut self) {
        self.pod_watches.drop_all();
        self.nad_watches.drop_all();
    }

    /// Forgets the change history: watches resuming from an older revision get `410 Gone`.
    pub(crate) fn compact(&mut self) {
        let revision = self.revision;
        self.pod_watches.compact(revision);
        self.nad_watches.compact(revision);
    }

    /// Sends a BOOKMARK at the current revision to every watch that allows them.
    pub(crate) fn bookmark(&mut self) {
        let revision = self.revision;
        self.pod_watches.bookmark(Resource::Pods, revision);
        self.nad_watches.bookmark(Resource::Nads, revision);
    }

    /// Open watch streams of both resources.
    pub(crate) fn open_watches(&self) -> usize {
        self.pod_watches.open_count() + self.nad_watches.open_count()
    }

    /// The next `times` list requests fail with `code`.
    pub(crate) fn fail_lists(&mut self, times: u32, code: u16) {
        self.list_faults = (times, code);
    }

    /// Applies a JSON merge patch to a stored pod the way kube-apiserver does: preconditions
    /// (`metadata.resourceVersion`, `metadata.uid` in the patch) must hold, name and namespace
    /// cannot change, the endpoint's non-owned fields are kept, and `resourceVersion` moves
    /// only when the pod changed.
    pub(crate) fn patch_pod(
        &mut self,
        ns: &str,
        name: &str,
        patch: &Value,
        part: PodPart,
    ) -> Result<Value, ApiStatus> {
        self.patch_pod_with(ns, name, patch, part, super::patch::merge_patch)
    }

    /// [`Store::patch_pod`] applying the patch with `merge` (a JSON merge patch, or a
    /// strategic merge patch).
    pub(crate) fn patch_pod_with(
        &mut self,
        ns: &str,
        name: &str,
        patch: &Value,
        part: PodPart,
        merge: fn(&mut Value, &Value),
    ) -> Result<Value, ApiStatus> {
        let key = (ns.to_owned(), name.to_owned());
        let old = self
            .pods
            .get(&key)
            .ok_or_else(|| ApiStatus::not_found(Resource::Pods, name))?;
        if !patch.is_object() {
            return Err(ApiStatus::bad_request(
                "error decoding patch: a merge patch for a pod must be a JSON object",
            ));
        }
        check_preconditions(old, patch, name)?;
        let mut new = old.clone();
        merge(&mut new, patch);
        if new["metadata"]["name"] != old["metadata"]["name"] {
            return Err(ApiStatus::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                new["metadata"]["name"]
            )));
        }
        if new["metadata"]["namespace"] != old["metadata"]["namespace"] {
            return Err(ApiStatus::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let (Some(new_map), Some(old_map)) = (new.as_object_mut(), old.as_object()) else {
            return Err(ApiStatus::bad_request("the stored pod is not an object"));
        };
        let kept: &[&str] = match part {
            PodPart::Main => &["apiVersion", "kind", "status"],
            PodPart::Status => &["apiVersion", "kind", "spec"],
        };
        for field in kept {
            keep(new_map, old_map, field);
        }
        if let (Some(new_meta), Some(old_meta)) = (
            new_map.get_mut("metadata").and_then(Value::as_object_mut),
            old_map.get("metadata").and_then(Value::as_object),
        ) {
            keep(new_meta, old_meta, "uid");
            keep(new_meta, old_meta, "resourceVersion");
            if part == PodPart::Status {
                keep(new_meta, old_meta, "ownerReferences");
            }
        }
        if new == *old {
            return Ok(new);
        }
        new["metadata"]["resourceVersion"] = json!(self.next_revision());
        let old = self.pods.insert(key, new.clone());
        let revision = self.revision;
        self.pod_watches.record(revision, old.as_ref(), Some(&new));
        Ok(new)
    }

    /// Creates an event in `ns` from a POST body, filling what the server fills, and returns it.
    pub(crate) fn create_event(
        &mut self,
        resource: Resource,
        ns: &str,
        body: Value,
    ) -> Result<Value, ApiStatus> {
        let Value::Object(mut map) = body else {
            return Err(ApiStatus::bad_request(
                "the body of the request must be a JSON object",
            ));
        };
        for (field, want) in [
            ("apiVersion", resource.api_version()),
            ("kind", resource.kind()),
        ] {
            match map.get(field).and_then(Value::as_str) {
                None | Some("") => {
                    map.insert(field.to_owned(), json!(want));
                }
                Some(got) if got == want => {}
                Some(got) => {
                    return Err(ApiStatus::bad_request(format!(
                        "the {field} of the provided object ({got}) does not match the expected {field} ({want})"
                    )));
                }
            }
        }
        let serial = self.next_serial();
        let revision = self.next_revision();
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(ApiStatus::bad_request("metadata must be a JSON object"));
        };
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".to_owned(), json!(ns));
            }
            Some(got) if got == ns => {}
            Some(_) => {
                return Err(ApiStatus::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let name = match (
            meta.get("name").and_then(Value::as_str),
            meta.get("generateName").and_then(Value::as_str),
        ) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{serial:05x}"),
            _ => {
                return Err(ApiStatus::invalid(
                    resource,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        let taken = self.events.iter().any(|e| {
            e["metadata"]["namespace"].as_str() == Some(ns)
                && e["metadata"]["name"].as_str() == Some(&name)
        });
        if taken {
            return Err(ApiStatus::already_exists(resource, &name));
        }
        meta.insert("name".to_owned(), json!(name));
        meta.insert(
            "uid".to_owned(),
            json!(format!("00000000-0000-4000-8000-{serial:012x}")),
        );
        meta.insert("resourceVersion".to_owned(), json!(revision));
        let event = Value::Object(map);
        self.events.push(event.clone());
        Ok(event)
    }

    /// Replaces any fault for the same method and path prefix with `fault`.
    pub(crate) fn set_fault(&mut self, fault: Fault) {
        self.faults
            .retain(|f| !(f.method == fault.method && f.path_prefix == fault.path_prefix));
        self.faults.push(fault);
    }

    /// Removes every pending fault.
    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The fault that applies to this request, if any, counting it against the fault's `times`.
    /// The earliest set fault that matches wins.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| f.matches(method, path))?;
        let fault = &mut self.faults[index];
        let kind = fault.kind.clone();
        if let Some(left) = &mut fault.times {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.faults.remove(index);
            }
        }
        Some(kind)
    }
}

impl Fault {
    /// Whether this fault applies to a request with this method and path.
    fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// Fails with 409 when the patch names a `resourceVersion` or `uid` other than the stored one.
fn check_preconditions(old: &Value, patch: &Value, name: &str) -> Result<(), ApiStatus> {
    let want = |field: &str| patch["metadata"][field].as_str().filter(|s| !s.is_empty());
    let have = |field: &str| old["metadata"][field].as_str().unwrap_or_default();
    if let Some(rv) = want("resourceVersion")
        && rv != have("resourceVersion")
    {
        return Err(ApiStatus::conflict(
            Resource::Pods,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    if let Some(uid) = want("uid")
        && uid != have("uid")
    {
        let why = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            have("uid")
        );
        return Err(ApiStatus::conflict(Resource::Pods, name, &why));
    }
    Ok(())
}

/// Sets `new[field]` back to `old[field]`, or removes it when `old` has none.
fn keep(new: &mut Map<String, Value>, old: &Map<String, Value>, field: &str) {
    match old.get(field) {
        Some(value) => {
            new.insert(field.to_owned(), value.clone());
        }
        None => {
            new.remove(field);
        }
    }
}

#[cfg(test)]
mod tests;
