//! `plexus inspect`: the table of journaled containers and the detail of one, from records
//! written into a temp journal directory and from a real ADD; inspect never creates or changes
//! a file.

// The tests run the plexus binary.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use plexus::plan::Origin;
use plexus::txn::record::FORMAT;
use plexus::txn::{PodId, Record, State, Step};
use serde_json::{Value, json};

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("plexus-inspect-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn inspect(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .arg("inspect")
        .arg("--cni-dir")
        .arg(dir)
        .args(args)
        .env_remove("CNI_COMMAND")
        .output()
        .expect("run plexus inspect");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every entry under `dir` (recursively) with size, mode and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, u32, i64, i64)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), m.len(), m.mode(), m.mtime(), m.mtime_nsec()));
        if m.is_dir() {
            out.extend(snapshot(&e.path()));
        }
    }
    out.sort();
    out
}

fn entry(network: &str, ifname: &str, conf: Value, result: Option<Value>) -> Step {
    Step {
        network: network.into(),
        ifname: ifname.into(),
        origin: if ifname == "eth0" {
            Origin::Cluster
        } else {
            Origin::Selected
        },
        conf,
        runtime_config: serde_json::Map::new(),
        cni_args: String::new(),
        default_route: Vec::new(),
        after: Vec::new(),
        state: if result.is_some() {
            State::Added
        } else {
            State::Pending
        },
        result,
        error: None,
    }
}

fn pod(name: &str) -> Option<PodId> {
    Some(PodId {
        namespace: "shop".into(),
        name: name.into(),
        uid: None,
    })
}

/// A finished ADD: the cluster network (bridge + portmap) on eth0 and a macvlan on net1
/// carrying the default route.
fn complete_record() -> Record {
    let mut net1 = entry(
        "default/macvlan-a",
        "net1",
        json!({"cniVersion":"0.4.0","name":"macvlan-a","type":"macvlan","master":"eth1",
               "ipam":{"type":"host-local"}}),
        Some(json!({
            "cniVersion":"0.4.0",
            "interfaces":[{"name":"net1","mac":"02:42:c0:a8:0a:64","sandbox":"/var/run/netns/web"}],
            "ips":[{"version":"4","address":"192.168.10.100/24","gateway":"192.168.10.1","interface":0}]
        })),
    );
    net1.default_route = vec!["192.168.10.1".into()];
    net1.runtime_config
        .insert("mac".into(), json!("02:42:c0:a8:0a:64"));
    Record {
        format: FORMAT,
        container_id: "0123456789abcdef0123".into(),
        netns: "/var/run/netns/web".into(),
        ifname: "eth0".into(),
        cni_args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-7f9c".into(),
        pod: pod("web-7f9c"),
        created: 1_800_000_000,
        complete: true,
        steps: vec![
            entry(
                "cluster",
                "eth0",
                json!({"cniVersion":"1.0.0","name":"cluster","plugins":[
                    {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
                    {"type":"portmap","capabilities":{"portMappings":true}}]}),
                Some(json!({
                    "cniVersion":"1.0.0",
                    "interfaces":[
                        {"name":"cni0","mac":"aa:bb:cc:dd:ee:01"},
                        {"name":"veth1234","mac":"aa:bb:cc:dd:ee:02"},
                        {"name":"eth0","mac":"0a:58:0a:01:00:05","sandbox":"/var/run/netns/web"}],
                    "ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":2}]
                })),
            ),
            net1,
        ],
    }
}

/// An ADD that has not finished: the cluster network returned, the second delegate did not.
fn incomplete_record() -> Record {
    Record {
        format: FORMAT,
        container_id: "fedcba9876".into(),
        netns: "/var/run/netns/db".into(),
        ifname: "eth0".into(),
        cni_args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0".into(),
        pod: pod("db-0"),
        created: 1_800_000_000,
        complete: false,
        steps: vec![
            entry(
                "cluster",
                "eth0",
                json!({"cniVersion":"1.0.0","name":"cluster","type":"bridge"}),
                Some(json!({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.6/24"}]})),
            ),
            entry(
                "shop/storage",
                "storage0",
                json!({"cniVersion":"1.0.0","name":"storage","type":"ipvlan"}),
                None,
            ),
        ],
    }
}

fn write(dir: &Path, rec: &Record) {
    // As the journal writes it: one line per version.
    let mut line = serde_json::to_vec(rec).unwrap();
    line.push(b'\n');
    fs::write(dir.join(format!("{}.json", rec.container_id)), line).unwrap();
}

/// A journal dir as plexus leaves it: two records, their lock files, a quarantined record.
fn journal() -> TempDir {
    let d = TempDir::new("j");
    write(&d.0, &complete_record());
    write(&d.0, &incomplete_record());
    fs::write(d.0.join("0123456789abcdef0123.lock"), b"").unwrap();
    fs::write(d.0.join("fedcba9876.lock"), b"").unwrap();
    fs::write(
        d.0.join("deadbeef.corrupt-1700000000000000000"),
        b"{\"format\":",
    )
    .unwrap();
    d
}

/// Index of the first line containing `needle`, for order assertions.
fn line_of(out: &str, needle: &str) -> usize {
    out.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
}

#[test]
fn table_lists_every_container_and_quarantined_records() {
    let d = journal();
    let before = snapshot(&d.0);
    let r = inspect(&d.0, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let header = out.lines().next().unwrap();
    for col in ["CONTAINER", "STATE", "POD", "NETNS", "ATTACHMENTS"] {
        assert!(header.contains(col), "header {header:?} lacks {col}");
    }
    let row = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("0123456789abc"),
        "0123456789abc complete shop/web-7f9c /var/run/netns/web 2 (eth0,net1)",
        "ids are shortened to 13 characters"
    );
    assert_eq!(
        row("fedcba9876"),
        "fedcba9876 incomplete shop/db-0 /var/run/netns/db 2 (eth0,storage0)"
    );
    assert!(
        line_of(out, "0123456789abc") < line_of(out, "fedcba9876"),
        "sorted by id"
    );
    assert!(
        line_of(out, "quarantined") < line_of(out, "deadbeef.corrupt-1700000000000000000"),
        "quarantined records are flagged:\n{out}"
    );
    assert!(!out.contains(".lock"), "lock files are not records:\n{out}");
    assert_eq!(snapshot(&d.0), before, "inspect changed the journal dir");
}

#[test]
fn detail_shows_each_attachment_in_order() {
    let d = journal();
    let before = snapshot(&d.0);
    let r = inspect(&d.0, &["0123456789abcdef0123"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let field = |name: &str, from: usize| -> String {
        out.lines()
            .skip(from)
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} after line {from}:\n{out}"))
            .trim_start()[name.len()..]
            .trim()
            .to_string()
    };
    assert_eq!(field("container", 0), "0123456789abcdef0123");
    assert!(field("state", 0).starts_with("complete"));
    assert_eq!(field("pod", 0), "shop/web-7f9c");
    assert_eq!(field("netns", 0), "/var/run/netns/web");
    let eth0 = line_of(out, "eth0  cluster network \"cluster\"");
    let net1 = line_of(out, "net1  network \"default/macvlan-a\"");
    assert!(eth0 < net1, "attachments in ADD order:\n{out}");
    assert_eq!(field("plugins", eth0), "bridge,portmap");
    assert_eq!(field("cniVersion", eth0), "1.0.0");
    assert_eq!(field("state", eth0), "added (result cached)");
    assert_eq!(
        field("addresses", eth0),
        "10.1.0.5/24 via 10.1.0.1",
        "only the pod interface's addresses"
    );
    assert_eq!(field("mac", eth0), "0a:58:0a:01:00:05");
    assert_eq!(field("default-route", eth0), "-");
    assert_eq!(field("plugins", net1), "macvlan");
    assert_eq!(field("cniVersion", net1), "0.4.0");
    assert_eq!(
        field("addresses", net1),
        "192.168.10.100/24 via 192.168.10.1"
    );
    assert_eq!(field("mac", net1), "02:42:c0:a8:0a:64");
    assert_eq!(field("default-route", net1), "192.168.10.1");
    assert_eq!(field("runtimeConfig", net1), "mac");

    let r = inspect(&d.0, &["fedcba9876"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(
        out.lines()
            .any(|l| l.starts_with("state") && l.contains("incomplete")),
        "{out}"
    );
    let storage = line_of(out, "storage0  network \"shop/storage\"");
    let state = out
        .lines()
        .skip(storage)
        .find(|l| l.contains("state"))
        .unwrap();
    assert!(state.contains("pending"), "{out}");
    assert!(
        out.lines()
            .skip(line_of(out, "eth0  cluster"))
            .any(|l| l.contains("10.1.0.6/24")),
        "a result without interfaces has its addresses on the attachment:\n{out}"
    );
    assert_eq!(snapshot(&d.0), before, "inspect changed the journal dir");
}

#[test]
fn prefixes_unknown_and_quarantined_ids() {
    let d = journal();
    let before = snapshot(&d.0);
    let r = inspect(&d.0, &["fedc"]);
    assert_eq!(r.code, 0, "a unique prefix selects: {}", r.stderr);
    assert!(r.stdout.contains("fedcba9876"));

    write(
        &d.0,
        &Record {
            container_id: "fedcba0000".into(),
            ..incomplete_record()
        },
    );
    let before_ambiguous = snapshot(&d.0);
    let r = inspect(&d.0, &["fedcba"]);
    assert_eq!(r.code, 1, "an ambiguous prefix fails");
    assert!(r.stderr.contains("matches 2 containers"), "{}", r.stderr);
    assert_eq!(snapshot(&d.0), before_ambiguous);
    fs::remove_file(d.0.join("fedcba0000.json")).unwrap();

    let r = inspect(&d.0, &["nosuchcontainer"]);
    assert_eq!(r.code, 1, "an unknown id fails");
    assert!(
        r.stderr
            .contains("no journal for container \"nosuchcontainer\""),
        "{}",
        r.stderr
    );
    let r = inspect(&d.0, &["../../etc/passwd"]);
    assert_eq!(
        r.code, 1,
        "an id is matched against the listing, never used as a path"
    );
    let r = inspect(&d.0, &["deadbeef"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("moved aside") && r.stderr.contains("deadbeef.corrupt-"),
        "a quarantined id says so: {}",
        r.stderr
    );
    assert_eq!(snapshot(&d.0), before, "inspect changed the journal dir");
}

#[test]
fn json_prints_the_raw_records() {
    let d = journal();
    let r = inspect(&d.0, &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all: Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(
        all,
        json!([complete_record(), incomplete_record()]),
        "every record, as stored, sorted by id"
    );
    let r = inspect(&d.0, &["fedcba9876", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let one: Record = serde_json::from_str(&r.stdout).expect("a record");
    assert_eq!(one, incomplete_record());
}

/// With `--json`, stdout is JSON whatever happens: an empty list without a journal, and
/// `{"error": ...}` (exit 1, the message on stderr too) when the container cannot be shown.
#[test]
fn json_is_printed_in_every_case() {
    let d = journal();
    fs::write(d.0.join("badc0ffee.json"), b"{not json\n").unwrap();
    write(
        &d.0,
        &Record {
            container_id: "fedcba0000".into(),
            ..incomplete_record()
        },
    );
    let missing = d.0.join("no-journal-here");
    let empty = d.0.join("empty");
    fs::create_dir(&empty).unwrap();
    let before = snapshot(&d.0);
    let rows: &[(&str, &Path, &[&str], i32, Option<&str>)] = &[
        ("no journal directory", &missing, &[], 0, None),
        ("an empty journal directory", &empty, &[], 0, None),
        (
            "an id without a journal directory",
            &missing,
            &["abc"],
            1,
            Some("no journal directory at"),
        ),
        (
            "an unknown id",
            &d.0,
            &["nosuchcontainer"],
            1,
            Some("no journal for container \"nosuchcontainer\""),
        ),
        (
            "an ambiguous prefix",
            &d.0,
            &["fedcba"],
            1,
            Some("\"fedcba\" matches 2 containers: fedcba0000, fedcba9876"),
        ),
        (
            "a quarantined record",
            &d.0,
            &["deadbeef"],
            1,
            Some("did not parse and was moved aside as"),
        ),
        (
            "a record that is not JSON",
            &d.0,
            &["badc0ffee"],
            1,
            Some("badc0ffee.json: not JSON"),
        ),
    ];
    for (name, dir, args, code, error) in rows {
        let mut all = args.to_vec();
        all.push("--json");
        let r = inspect(dir, &all);
        assert_eq!(r.code, *code, "{name}: {}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{name}: stdout is not JSON ({e}): {:?}", r.stdout));
        match error {
            None => assert_eq!(v, json!([]), "{name}"),
            Some(msg) => {
                let got = v["error"].as_str().unwrap_or_default();
                assert!(got.contains(msg), "{name}: {v}");
                assert!(r.stderr.contains(got), "{name}: stderr {:?}", r.stderr);
            }
        }
    }
    assert!(!missing.exists(), "inspect must not create the journal dir");
    assert_eq!(snapshot(&d.0), before, "inspect changed the journal dir");
}

#[test]
fn missing_or_empty_journal_dir() {
    let d = TempDir::new("m");
    let missing = d.0.join("plexus");
    let r = inspect(&missing, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no journal directory at"), "{}", r.stdout);
    assert!(!missing.exists(), "inspect must not create the journal dir");
    let r = inspect(&missing, &["abc"]);
    assert_eq!(r.code, 1, "an id cannot be found without a journal");
    assert!(!missing.exists());

    fs::create_dir(&missing).unwrap();
    let r = inspect(&missing, &[]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.trim(), "no journaled containers");
    assert!(snapshot(&missing).is_empty());
}

#[test]
fn unreadable_record_is_flagged() {
    let d = journal();
    fs::write(d.0.join("badc0ffee.json"), b"{not json\n").unwrap();
    let before = snapshot(&d.0);
    let r = inspect(&d.0, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("badc0ffee"))
        .unwrap();
    assert!(row.contains("unreadable"), "{row}");
    assert!(
        r.stdout.contains("badc0ffee.json: not JSON"),
        "{}",
        r.stdout
    );
    let r = inspect(&d.0, &["badc0ffee"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not JSON"), "{}", r.stderr);
    assert_eq!(
        snapshot(&d.0),
        before,
        "inspect must not quarantine or change anything"
    );
}

/// After a real ADD (bridge cluster network + macvlan), inspect shows both attachments with
/// the addresses the interfaces really have in the pod.
#[test]
fn inspect_after_a_real_add() {
    let env = common::TestEnv::new("insp", 91);
    let pod = env.add_pod();
    let cfg = common::conf::standard(&env, "1.0.0");
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    let eth0_addr = env.addrs(&pod, "eth0");
    let net1_addr = env.addrs(&pod, "net1");
    assert_eq!(
        (eth0_addr.len(), net1_addr.len()),
        (1, 1),
        "one address each"
    );

    let jdir = env.journal_dir();
    let before = snapshot(&jdir);
    let r = inspect(&jdir, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&id[..id.len().min(13)]))
        .unwrap_or_else(|| panic!("no row for {id}:\n{}", r.stdout));
    assert!(
        row.contains("complete") && row.contains("default/p"),
        "{row}"
    );
    assert!(row.contains("2 (eth0,net1)"), "{row}");

    let r = inspect(&jdir, &[&id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    let eth0 = line_of(
        out,
        &format!("eth0  cluster network \"{}\"", common::conf::CLUSTER),
    );
    let net1 = line_of(out, &format!("net1  network \"{}\"", common::conf::MACVLAN));
    assert!(eth0 < net1, "{out}");
    let addresses = |from: usize| {
        out.lines()
            .skip(from)
            .find(|l| l.trim_start().starts_with("addresses"))
            .unwrap()
            .to_string()
    };
    assert!(addresses(eth0).contains(&eth0_addr[0]), "{out}");
    assert!(addresses(net1).contains(&net1_addr[0]), "{out}");
    assert!(
        out.lines().skip(eth0).any(|l| l.contains("bridge")),
        "{out}"
    );
    assert_eq!(snapshot(&jdir), before, "inspect changed the journal dir");

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}
