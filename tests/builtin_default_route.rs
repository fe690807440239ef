//! `link::set_default_route` inside a real namespace: the default route of the gateway's family
//! moves to the named interface and disappears from every other one.

mod builtin_support;

use builtin_support::*;
use plexus::link::{LinkError, set_default_route};

#[test]
fn default_route_moves_to_the_named_interface() {
    require_root();
    let pod = Netns::new("pxr");
    for (dev, peer, addr) in [("a0", "a1", "10.81.0.2/24"), ("b0", "b1", "10.82.0.2/24")] {
        pod.ip(&["link", "add", dev, "type", "veth", "peer", "name", peer]);
        pod.ip(&["link", "set", dev, "up"]);
        pod.ip(&["link", "set", peer, "up"]);
        pod.ip(&["addr", "add", addr, "dev", dev]);
    }
    pod.ip(&["route", "add", "default", "via", "10.81.0.1", "dev", "a0"]);
    set_default_route(pod.path().as_ref(), "10.82.0.1".parse().unwrap(), "b0").unwrap();
    let routes = pod.ip(&["-4", "route", "show", "default"]);
    assert_eq!(routes.trim(), "default via 10.82.0.1 dev b0", "{routes}");
    // Idempotent: a second call leaves the same single default route.
    set_default_route(pod.path().as_ref(), "10.82.0.1".parse().unwrap(), "b0").unwrap();
    assert_eq!(
        pod.ip(&["-4", "route", "show", "default"]).lines().count(),
        1
    );
    // Other routes are untouched.
    assert!(pod.ip(&["-4", "route"]).contains("10.81.0.0/24 dev a0"));
}

#[test]
fn default_route_to_a_missing_interface_is_an_error_and_changes_nothing() {
    require_root();
    let pod = Netns::new("pxr");
    pod.ip(&["link", "add", "a0", "type", "veth", "peer", "name", "a1"]);
    pod.ip(&["link", "set", "a0", "up"]);
    pod.ip(&["addr", "add", "10.83.0.2/24", "dev", "a0"]);
    pod.ip(&["route", "add", "default", "via", "10.83.0.1", "dev", "a0"]);
    let err =
        set_default_route(pod.path().as_ref(), "10.83.0.1".parse().unwrap(), "nope0").unwrap_err();
    assert!(matches!(err, LinkError::NotFound(_)), "{err}");
    assert!(
        pod.ip(&["-4", "route", "show", "default"])
            .contains("via 10.83.0.1 dev a0")
    );
}

#[test]
fn default_route_in_a_missing_namespace_is_an_error() {
    let err = set_default_route(
        "/run/netns/plexus-missing-ns".as_ref(),
        "10.0.0.1".parse().unwrap(),
        "eth0",
    )
    .unwrap_err();
    assert!(matches!(err, LinkError::Netns(_)), "{err}");
}
