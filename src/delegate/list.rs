//! libcni's conflist semantics over an [`Executor`]: ADD in order chaining `prevResult`, DEL in
//! reverse with the cached result, CHECK, GC and STATUS gated on the list's cniVersion.

use serde_json::{Map, Value};

use super::{DelegateError, Executor, Invocation};
use crate::cni::conf::ConfList;
use crate::cni::result::CniResult;
use crate::cni::version::Version;

/// One plugin of a list failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin {plugin:?}: {source}")]
pub struct PluginFailure {
    /// The plugin's `type`.
    pub plugin: String,
    /// Why it failed.
    pub source: DelegateError,
}

fn run(
    ex: &dyn Executor,
    conf: &ConfList,
    i: usize,
    inv: &Invocation<'_>,
    mut plugin_conf: Map<String, Value>,
    extra: Option<(&str, &Value)>,
) -> Result<Vec<u8>, PluginFailure> {
    if let Some((k, v)) = extra {
        plugin_conf.insert(k.to_string(), v.clone());
    }
    let plugin = conf.plugin_type(i);
    let stdin = serde_json::to_vec(&Value::Object(plugin_conf)).unwrap_or_default();
    ex.exec(plugin, inv, &stdin)
        .map_err(|source| PluginFailure {
            plugin: plugin.to_string(),
            source,
        })
}

/// ADD of a whole list: each plugin in order gets the previous plugin's result as `prevResult`.
/// Returns the final result as the last plugin printed it (in the list's cniVersion), and
/// parsed.
///
/// # Errors
/// The first plugin that fails, or prints something that is not a valid result.
pub fn add(
    ex: &dyn Executor,
    conf: &ConfList,
    inv: &Invocation<'_>,
    runtime_config: &Map<String, Value>,
) -> Result<(Value, CniResult), PluginFailure> {
    let mut prev: Option<(Value, CniResult)> = None;
    for i in 0..conf.plugins.len() {
        let pc = conf.plugin_conf(i, runtime_config, prev.as_ref().map(|(v, _)| v));
        let out = run(ex, conf, i, inv, pc, None)?;
        let bad = |reason: String| PluginFailure {
            plugin: conf.plugin_type(i).to_string(),
            source: DelegateError::BadOutput(reason),
        };
        let v: Value = serde_json::from_slice(&out).map_err(|e| {
            bad(format!(
                "not JSON ({e}): {:?}",
                crate::cni::env::truncate(&String::from_utf8_lossy(&out))
            ))
        })?;
        let parsed =
            CniResult::from_value(&v, &conf.cni_version).map_err(|e| bad(e.to_string()))?;
        prev = Some((v, parsed));
    }
    prev.ok_or_else(|| PluginFailure {
        plugin: String::new(),
        source: DelegateError::BadOutput("the list has no plugins".into()),
    })
}

/// DEL of a whole list, in reverse. From 0.4.0 on each plugin gets `cached` as `prevResult`.
/// Unlike libcni it goes on past a failing plugin (each plugin releases its own resources),
/// and returns every failure.
pub fn del(
    ex: &dyn Executor,
    conf: &ConfList,
    inv: &Invocation<'_>,
    runtime_config: &Map<String, Value>,
    cached: Option<&Value>,
) -> Vec<PluginFailure> {
    let prev = cached.filter(|_| conf.version() >= Version::V0_4_0);
    let mut failures = Vec::new();
    for i in (0..conf.plugins.len()).rev() {
        let pc = conf.plugin_conf(i, runtime_config, prev);
        match run(ex, conf, i, inv, pc, None) {
            Ok(_) => {}
            // A plugin that is not installed cannot have made anything to undo (or was removed
            // from the node since): failing DEL for it would leave the pod stuck forever.
            Err(PluginFailure {
                plugin,
                source: DelegateError::NotFound { searched, .. },
            }) => tracing::warn!(
                plugin,
                searched = searched.join(":"),
                "DEL: plugin not found, nothing it made can be removed; treating as done"
            ),
            Err(f) => failures.push(f),
        }
    }
    failures
}

/// CHECK of a whole list with the cached result; skipped (Ok) below 0.4.0 or with `disableCheck`.
///
/// # Errors
/// The first plugin that reports a problem.
pub fn check(
    ex: &dyn Executor,
    conf: &ConfList,
    inv: &Invocation<'_>,
    runtime_config: &Map<String, Value>,
    cached: Option<&Value>,
) -> Result<(), PluginFailure> {
    if conf.version() < Version::V0_4_0 || conf.disable_check {
        return Ok(());
    }
    for i in 0..conf.plugins.len() {
        let pc = conf.plugin_conf(i, runtime_config, cached);
        run(ex, conf, i, inv, pc, None)?;
    }
    Ok(())
}

/// GC of a whole list with the valid attachments; skipped below 1.1.0 or with `disableGC`.
/// Goes on past failures and returns them all.
pub fn gc(
    ex: &dyn Executor,
    conf: &ConfList,
    inv: &Invocation<'_>,
    valid: &Value,
) -> Vec<PluginFailure> {
    if conf.version() < Version::V1_1_0 || conf.disable_gc {
        return Vec::new();
    }
    (0..conf.plugins.len())
        .filter_map(|i| {
            let pc = conf.plugin_conf(i, &Map::new(), None);
            run(
                ex,
                conf,
                i,
                inv,
                pc,
                Some(("cni.dev/valid-attachments", valid)),
            )
            .err()
        })
        .collect()
}

/// STATUS of a whole list; skipped below 1.1.0.
///
/// # Errors
/// The first plugin that is not ready.
pub fn status(
    ex: &dyn Executor,
    conf: &ConfList,
    inv: &Invocation<'_>,
) -> Result<(), PluginFailure> {
    if conf.version() < Version::V1_1_0 {
        return Ok(());
    }
    for i in 0..conf.plugins.len() {
        let pc = conf.plugin_conf(i, &Map::new(), None);
        run(ex, conf, i, inv, pc, None)?;
    }
    Ok(())
}
