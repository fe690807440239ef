//! RFC 7386 JSON merge patch, as the API server applies `application/merge-patch+json`.

use serde_json::{Map, Value};

/// Lists merged element by element: (path of object keys from the root, the merge key).
pub(crate) type Keyed<'a> = &'a [(&'a [&'a str], &'a str)];

/// Applies the RFC 7386 merge patch `patch` to `target` in place.
///
/// An object patch merges key by key: a `null` value removes the key, an object value is merged
/// recursively (into an empty object when the target's value is absent or not an object), any
/// other value replaces the target's. A non-object patch replaces the whole target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    merge_keyed(target, patch, &[], &mut Vec::new());
}

/// [`merge_patch`], except that a list at one of `keyed`'s paths merges element by element:
/// each patch element into the target's element with the same merge key, else appended.
pub(crate) fn merge_keyed(
    target: &mut Value,
    patch: &Value,
    keyed: Keyed<'_>,
    path: &mut Vec<String>,
) {
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
        if value.is_null() {
            map.remove(key);
            continue;
        }
        path.push(key.clone());
        let merge_key = keyed
            .iter()
            .find(|(p, _)| p.iter().eq(path.iter()))
            .map(|(_, k)| *k);
        let slot = map.entry(key.clone()).or_insert(Value::Null);
        match (value, merge_key) {
            (Value::Array(items), Some(merge_key)) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(list) = slot {
                    merge_list(list, items, merge_key);
                }
            }
            _ => merge_keyed(slot, value, keyed, path),
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
    use super::merge_patch;
    use serde_json::{Value, json};

    /// The test cases of RFC 7386 Appendix A, one row each, plus the pod-status shape plexus sends.
    #[test]
    fn rfc7386_examples() {
        let rows: &[(&str, Value, Value, Value)] = &[
            (
                "replace value",
                json!({"a":"b"}),
                json!({"a":"c"}),
                json!({"a":"c"}),
            ),
            (
                "add key",
                json!({"a":"b"}),
                json!({"b":"c"}),
                json!({"a":"b","b":"c"}),
            ),
            (
                "null removes",
                json!({"a":"b"}),
                json!({"a":null}),
                json!({}),
            ),
            (
                "null removes one of two",
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (
                "array replaces value",
                json!({"a":["b"]}),
                json!({"a":"c"}),
                json!({"a":"c"}),
            ),
            (
                "value replaces array",
                json!({"a":"c"}),
                json!({"a":["b"]}),
                json!({"a":["b"]}),
            ),
            (
                "nested merge and delete",
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (
                "array is replaced whole",
                json!({"a":[{"b":"c"}]}),
                json!({"a":[1]}),
                json!({"a":[1]}),
            ),
            (
                "array target replaced",
                json!(["a", "b"]),
                json!(["c", "d"]),
                json!(["c", "d"]),
            ),
            (
                "object replaces array",
                json!({"a":"b"}),
                json!(["c"]),
                json!(["c"]),
            ),
            ("null patch", json!({"a":"foo"}), Value::Null, Value::Null),
            (
                "string patch",
                json!({"a":"foo"}),
                json!("bar"),
                json!("bar"),
            ),
            (
                "null value kept in target",
                json!({"e":null}),
                json!({"a":1}),
                json!({"e":null,"a":1}),
            ),
            (
                "array target becomes object",
                json!([1, 2]),
                json!({"a":"b","c":null}),
                json!({"a":"b"}),
            ),
            (
                "deep null ignored on absent path",
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
            (
                "pod status annotation",
                json!({"metadata":{"name":"p","annotations":{"x":"1"}},"status":{"phase":"Running"}}),
                json!({"metadata":{"annotations":{"k8s.v1.cni.cncf.io/network-status":"[]","x":null}}}),
                json!({"metadata":{"name":"p","annotations":{"k8s.v1.cni.cncf.io/network-status":"[]"}},"status":{"phase":"Running"}}),
            ),
        ];
        for (name, target, patch, want) in rows {
            let mut got = target.clone();
            merge_patch(&mut got, patch);
            assert_eq!(&got, want, "row {name:?}");
        }
    }
}
