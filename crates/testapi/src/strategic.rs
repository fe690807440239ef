//! Strategic merge patch (`application/strategic-merge-patch+json`) as the API server applies
//! it to a pod, for the lists plexus patches: objects merge as in a JSON merge patch, and a list
//! with a patch merge key (`status.conditions` by `type`) merges element by element, so a
//! client sets one condition without knowing the others. Other lists are replaced whole.

use serde_json::{Map, Value};

use super::patch::merge_patch;

/// Lists merged by key: (path of object keys from the pod's root, the merge key).
const KEYED: &[(&[&str], &str)] = &[
    (&["status", "conditions"], "type"),
    (&["metadata", "ownerReferences"], "uid"),
    (&["spec", "readinessGates"], "conditionType"),
];

/// Applies the strategic merge patch `patch` to the pod `target` in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    merge_at(target, patch, &mut Vec::new());
}

fn merge_at(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (key, value) in patch {
        path.push(key.clone());
        let keyed = KEYED
            .iter()
            .find(|(p, _)| p.iter().eq(path.iter()))
            .map(|(_, k)| *k);
        match (value, keyed) {
            (Value::Null, _) => {
                map.remove(key);
            }
            (Value::Array(items), Some(merge_key)) => {
                let list = map
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !list.is_array() {
                    *list = Value::Array(Vec::new());
                }
                if let Value::Array(list) = list {
                    merge_list(list, items, merge_key);
                }
            }
            (Value::Object(_), _) => {
                merge_at(map.entry(key.clone()).or_insert(Value::Null), value, path);
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
        path.pop();
    }
}

/// Each patch element merges into the element with the same merge key, or is appended.
fn merge_list(list: &mut Vec<Value>, items: &[Value], merge_key: &str) {
    for item in items {
        let id = &item[merge_key];
        match list
            .iter_mut()
            .find(|e| !id.is_null() && e[merge_key] == *id)
        {
            Some(existing) => merge_patch(existing, item),
            None => list.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strategic_merge;
    use serde_json::json;

    #[test]
    fn conditions_merge_by_type_and_other_lists_are_replaced() {
        let rows = [
            (
                "a new condition is appended, the kubelet's are kept",
                json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "x/y", "status": "False", "reason": "R"}]}}),
                json!({"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "x/y", "status": "False", "reason": "R"}]}}),
            ),
            (
                "an existing condition is merged in place",
                json!({"status": {"conditions": [
                    {"type": "x/y", "status": "False", "reason": "R", "message": "m"},
                    {"type": "Ready", "status": "False"}]}}),
                json!({"status": {"conditions": [{"type": "x/y", "status": "True", "reason": "S"}]}}),
                json!({"status": {"conditions": [
                    {"type": "x/y", "status": "True", "reason": "S", "message": "m"},
                    {"type": "Ready", "status": "False"}]}}),
            ),
            (
                "a list without a merge key is replaced",
                json!({"status": {"podIPs": [{"ip": "1"}]}}),
                json!({"status": {"podIPs": [{"ip": "2"}]}}),
                json!({"status": {"podIPs": [{"ip": "2"}]}}),
            ),
            (
                "null removes as in a merge patch",
                json!({"metadata": {"annotations": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"annotations": {"a": null}}}),
                json!({"metadata": {"annotations": {"b": "2"}}}),
            ),
        ];
        for (name, target, patch, want) in rows {
            let mut got = target.clone();
            strategic_merge(&mut got, &patch);
            assert_eq!(got, want, "{name}");
        }
    }
}
