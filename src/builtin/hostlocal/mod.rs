//! host-local in process: the reference IPAM plugin's allocation (one address per range set,
//! round-robin from the last one handed out, the gateway skipped, no second address for the
//! same container and interface), release and check, on the reference's own on-disk store and
//! lock, so the reference binary and plexus can serve the same network turn about. Configs
//! beyond the common case are left to the binary ([`conf::Parsed::NotUnderstood`]).

pub mod conf;
pub mod range;
pub mod store;

use std::time::Duration;

use crate::cni::env::Command;
use crate::cni::result::{CniResult, IpConfig};
use crate::delegate::{DelegateError, Invocation};
use conf::{HostLocal, Parsed};
use store::Store;

/// The IPAM `type` this module answers for.
pub const TYPE: &str = "host-local";

/// The config, when the built-in runs it.
fn understood(inv: &Invocation<'_>, stdin: &[u8]) -> Option<HostLocal> {
    if let Some(why) = conf::refused_call(inv.container_id, inv.ifname) {
        tracing::debug!(why, "host-local left to the binary");
        return None;
    }
    match conf::parse(stdin, inv.args) {
        Parsed::Understood(h) if inv.command == Command::Check && !h.check => {
            tracing::debug!("host-local CHECK below cniVersion 0.4.0 left to the binary");
            None
        }
        Parsed::Understood(h) => Some(h),
        Parsed::NotUnderstood(why) => {
            tracing::debug!(%why, "host-local config left to the binary");
            None
        }
    }
}

/// The config and its store, locked; `None` when the config is left to the binary.
fn opened(
    inv: &Invocation<'_>,
    stdin: &[u8],
    wait: Duration,
) -> Result<Option<(HostLocal, Store)>, DelegateError> {
    let Some(h) = understood(inv, stdin) else {
        return Ok(None);
    };
    if inv
        .cancel
        .is_some_and(crate::delegate::Cancel::is_cancelled)
    {
        return Err(DelegateError::Cancelled);
    }
    let store = Store::open(&h.data_dir, &h.network, wait, inv.cancel)?;
    Ok(Some((h, store)))
}

/// ADD: one address from each range set, as the reference prints it (no interface index), or
/// `None` when the config is left to the binary. `wait` bounds the wait for the store's lock.
///
/// # Errors
/// The reference's code-999 messages: an address already held by this container and interface,
/// a range set with no address left (everything taken so far is released again), or a store
/// that cannot be used.
pub fn add(
    inv: &Invocation<'_>,
    stdin: &[u8],
    wait: Duration,
) -> Result<Option<CniResult>, DelegateError> {
    let Some((h, store)) = opened(inv, stdin, wait)? else {
        return Ok(None);
    };
    // What the container's interface already holds, read once (one walk of the store, not one
    // per range set; the sets never overlap, so what this ADD takes cannot matter to a later
    // set's check).
    let held = store
        .held(inv.container_id, inv.ifname)
        .map_err(|e| super::internal(format!("failed to allocate for range 0: {e}")))?;
    let HostLocal { sets, routes, .. } = h;
    let mut result = CniResult {
        routes,
        ..CniResult::default()
    };
    for (idx, set) in sets.iter().enumerate() {
        match allocate(&store, inv, &held, set, idx) {
            Ok(ip) => result.ips.push(ip),
            Err(e) => {
                // As the reference: one release per range set already served.
                for _ in 0..idx {
                    if let Err(r) = store.release(inv.container_id, inv.ifname) {
                        tracing::warn!(error = %r, "host-local: releasing after a failed ADD");
                    }
                }
                return Err(super::internal(format!(
                    "failed to allocate for range {idx}: {e}"
                )));
            }
        }
    }
    Ok(Some(result))
}

/// One address from `set` (index `idx`) for the call's container and interface, which holds
/// `held` already.
fn allocate(
    store: &Store,
    inv: &Invocation<'_>,
    held: &[range::Addr],
    set: &range::RangeSet,
    idx: usize,
) -> Result<IpConfig, String> {
    if let Some(held) = held.iter().find(|a| set.range_for(**a).is_some()) {
        return Err(format!(
            "{held} has been allocated to {}, duplicate allocation is not allowed",
            inv.container_id
        ));
    }
    for (a, r) in set.walk(store.last_reserved(idx)) {
        if store
            .reserve(inv.container_id, inv.ifname, a, idx)
            .map_err(|e| e.to_string())?
        {
            return Ok(IpConfig {
                address: format!("{a}/{}", r.prefix),
                gateway: Some(r.gateway.to_string()),
                interface: None,
            });
        }
    }
    Err(format!("no IP addresses available in range set: {set}"))
}

/// DEL: releases what the container's interface holds (in every range set), or `None` when
/// the config is left to the binary.
///
/// # Errors
/// Code 999 when the store cannot be read.
pub fn del(
    inv: &Invocation<'_>,
    stdin: &[u8],
    wait: Duration,
) -> Result<Option<()>, DelegateError> {
    let Some((h, store)) = opened(inv, stdin, wait)? else {
        return Ok(None);
    };
    let errors: Vec<String> = h
        .sets
        .iter()
        .filter_map(|_| store.release(inv.container_id, inv.ifname).err())
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(Some(()))
    } else {
        Err(super::internal(errors.join(";")))
    }
}

/// CHECK: the container holds some address of this network, or `None` when the config is left
/// to the binary.
///
/// # Errors
/// The reference's message when it holds none; code 999 when the store cannot be read.
pub fn check(
    inv: &Invocation<'_>,
    stdin: &[u8],
    wait: Duration,
) -> Result<Option<()>, DelegateError> {
    let Some((_, store)) = opened(inv, stdin, wait)? else {
        return Ok(None);
    };
    if store
        .holds(inv.container_id, inv.ifname)
        .map_err(|e| super::internal(e.to_string()))?
    {
        Ok(Some(()))
    } else {
        Err(super::internal(format!(
            "host-local: Failed to find address added by container {}",
            inv.container_id
        )))
    }
}

#[cfg(test)]
mod tests;
