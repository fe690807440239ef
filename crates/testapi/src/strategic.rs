//! Strategic merge patch (`application/strategic-merge-patch+json`) as the API server applies
//! it to a pod, for the lists plexus patches: objects merge as in a JSON merge patch, and a list
//! with a patch merge key (`status.conditions` by `type`) merges element by element, so a
//! client sets one condition without knowing the others. Other lists are replaced whole.

use serde_json::Value;

use super::patch::{Keyed, merge_keyed};

/// Lists merged by key: (path of object keys from the pod's root, the merge key).
const KEYED: Keyed<'static> = &[
    (&["status", "conditions"], "type"),
    (&["metadata", "ownerReferences"], "uid"),
    (&["spec", "readinessGates"], "conditionType"),
];

/// Applies the strategic merge patch `patch` to the pod `target` in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    merge_keyed(target, patch, KEYED, &mut Vec::new());
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
