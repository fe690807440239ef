//! `make bench`: what plexus adds to every pod start, measured against the floor of calling the
//! same delegates directly, in one run on one machine (issue 6).
//!
//! Scenario: a "node" network namespace with a bridge + host-local cluster network (a conflist
//! file) and a macvlan master, the embedded Kubernetes API server on the node's loopback (real
//! HTTPS with its CA in the kubeconfig, through kube-rs), one macvlan NAD and pods annotated with it. Each cycle makes a fresh
//! pod namespace per contestant, ADDs, checks `eth0` and `net1` have addresses, DELs, checks
//! nothing is left; contestants take turns (rotating order) so noise hits all alike:
//! (a) the delegates called directly, as libcni would; (b) plexus thin, annotations from a GET;
//! (c) plexus with the annotations in `runtimeConfig`; (d, on unless `--no-builtin`) plexus using
//! its built-in delegates; (e) plexus thin with `alongsideClusterNetwork`; (f) plexus thin
//! against a plain-HTTP API server (every other row speaks HTTPS, as a cluster does). Then:
//! plexus's own peak memory, 10 pods ADDed at once, 1/2/4/8 extra networks, 10 vs 1000 NADs in the
//! namespace. Prints markdown, writes JSON.
//!
//! Usage: `bench [PLEXUS] [--cycles N] [--quick] [--json PATH] [--builtin|--no-builtin] [--debug-log PATH] [--settle-ms N] [--health-only]`
#![allow(unsafe_code)] // wait4, waitid, ptrace, kill, signal: std exposes none of them
#![allow(clippy::disallowed_methods)] // a bench driver runs `ip`, the plugins and plexus itself

#[path = "bench/agent.rs"]
mod agent;
#[path = "bench/cni.rs"]
mod cni;
#[path = "bench/health.rs"]
mod health;
#[path = "bench/node.rs"]
mod node;
#[path = "bench/proc.rs"]
mod proc;
#[path = "bench/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cni::{Plexus, Step, Who};
use node::{Node, Pod};
use stats::{Series, Summary, mib, ms, paired, round};

/// The whole run is abandoned (and cleaned up) past this.
const MAX_RUNTIME: Duration = Duration::from_secs(15 * 60);
/// Extra macvlan networks per pod in the scaling table.
const SCALE: [usize; 4] = [1, 2, 4, 8];
/// Extra built-in macvlan networks per pod in the many-networks table (issue 10: 8 networks in
/// at most 2x the time of 1 with `parallelAttach`).
const MANY: [usize; 2] = [1, 8];
/// Pods in the parallel test.
const PARALLEL: usize = 10;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static STARTED: OnceLock<Instant> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Fails when the user interrupted the run or it has taken too long, so guards clean up.
fn keep_going() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    if STARTED.get().is_some_and(|t| t.elapsed() > MAX_RUNTIME) {
        return Err(format!("gave up after {}s", MAX_RUNTIME.as_secs()));
    }
    Ok(())
}

struct Args {
    plexus: PathBuf,
    cycles: usize,
    scale_cycles: usize,
    rounds: usize,
    json: PathBuf,
    builtin: bool,
    debug_log: Option<PathBuf>,
    settle: Duration,
    /// Only the attachment health row (`--health-only`).
    health_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut plexus = None;
    let mut settle = Duration::from_millis(50);
    let mut health_only = false;
    let (mut cycles, mut quick, mut json, mut builtin, mut debug_log) =
        (None, false, PathBuf::from("target/bench.json"), true, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--cycles" => {
                let v = value("--cycles")?;
                cycles = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("--cycles {v}: a positive number"))?,
                );
            }
            "--quick" => quick = true,
            "--health-only" => health_only = true,
            "--settle-ms" => {
                let v = value("--settle-ms")?;
                settle = Duration::from_millis(
                    v.parse()
                        .map_err(|_| format!("--settle-ms {v}: a number"))?,
                );
            }
            "--json" => json = PathBuf::from(value("--json")?),
            "--builtin" => builtin = true,
            "--no-builtin" => builtin = false,
            "--debug-log" => {
                debug_log =
                    Some(std::path::absolute(value("--debug-log")?).map_err(|e| e.to_string())?)
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [PLEXUS] [--cycles N] [--quick] [--json PATH] [--builtin|--no-builtin] [--debug-log PATH] [--settle-ms N] [--health-only]\n\
                     PLEXUS defaults to target/release/plexus; --quick is 5 cycles (smoke run);\n\
                     --debug-log runs plexus with logLevel debug into PATH (slower: for finding where time goes);\n\
                     --settle-ms pauses before each timed ADD and DEL (default 50) so the kernel's leftover work is billed to no one;\n\
                     --health-only measures only the attachment health round"
                );
                std::process::exit(0);
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s} (see --help)")),
            s => plexus = Some(PathBuf::from(s)),
        }
    }
    let plexus = plexus.unwrap_or_else(|| PathBuf::from("target/release/plexus"));
    let plexus =
        std::fs::canonicalize(&plexus).map_err(|e| format!("{}: {e}", plexus.display()))?;
    let cycles = cycles.unwrap_or(if quick { 5 } else { 30 });
    Ok(Args {
        plexus,
        cycles,
        scale_cycles: if quick { 2 } else { cycles.div_ceil(2).max(2) },
        rounds: if quick { 1 } else { 5 },
        json,
        builtin,
        debug_log,
        settle,
        health_only,
    })
}

fn main() {
    let _ = STARTED.set(Instant::now());
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    if let Err(e) = parse_args().and_then(|a| run(&a)) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn progress(msg: &str) {
    let t = STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
    eprintln!("[{t:6.1}s] {msg}");
}

/// One fresh pod namespace: ADD, check, DEL, check, namespace gone.
fn cycle(
    node: &Node,
    px: &Plexus,
    who: Who,
    pod: &Pod,
    traced: bool,
) -> Result<(Step, Step), String> {
    keep_going()?;
    let ns = node.pod_netns()?;
    // Let the kernel finish the asynchronous work of the previous step (namespace cleanup,
    // link teardown hold RTNL) so it is not billed to whoever runs next.
    std::thread::sleep(px.settle);
    let (add, sb) = cni::add(node, px, who, pod, &ns, traced)?;
    node.verify(&ns, pod, true)?;
    std::thread::sleep(px.settle);
    let del = cni::del(node, px, &sb, traced)?;
    node.verify(&ns, pod, false)?;
    Ok((add, del))
}

/// `cycles` rounds over `entries`, each round starting one further along, so no contestant
/// is always first after the namespace churn.
fn interleave(
    node: &Node,
    px: &Plexus,
    entries: &[(Who, &Pod)],
    cycles: usize,
    what: &str,
) -> Result<Vec<Series>, String> {
    let mut series: Vec<Series> = entries.iter().map(|(w, _)| Series::new(*w)).collect();
    for c in 0..cycles {
        for j in 0..entries.len() {
            let k = (c + j) % entries.len();
            let (who, pod) = entries[k];
            let (a, d) = cycle(node, px, who, pod, false)?;
            series[k].push(&a, &d);
        }
        if (c + 1) % 10 == 0 || c + 1 == cycles {
            progress(&format!("{what}: {}/{cycles} cycles", c + 1));
        }
    }
    Ok(series)
}

/// 10 pods ADDed at once, `rounds` times; DEL (untimed) one by one.
struct Parallel {
    who: Who,
    makespan: Vec<f64>,
    per_pod: Vec<f64>,
    requests_per_add: f64,
}

fn parallel(
    node: &Node,
    px: &Plexus,
    who: Who,
    pods: &[Pod],
    rounds: usize,
) -> Result<Parallel, String> {
    let mut p = Parallel {
        who,
        makespan: Vec::new(),
        per_pod: Vec::new(),
        requests_per_add: 0.0,
    };
    let mut requests = 0;
    for _ in 0..rounds {
        keep_going()?;
        let nss = pods
            .iter()
            .map(|_| node.pod_netns())
            .collect::<Result<Vec<_>, _>>()?;
        let batch: Vec<_> = pods.iter().zip(&nss).collect();
        let done = cni::add_parallel(node, px, who, &batch)?;
        requests += node.requests().len();
        let first = done.iter().map(|(s, _)| s.started).min();
        let last = done.iter().map(|(s, _)| s.ended).max();
        if let (Some(f), Some(l)) = (first, last) {
            p.makespan.push((l - f).as_secs_f64() * 1000.0);
        }
        p.per_pod.extend(done.iter().map(|(s, _)| s.ms));
        for ((pod, ns), (_, sb)) in batch.iter().zip(&done) {
            node.verify(ns, pod, true)?;
            cni::del(node, px, sb, false)?;
            node.verify(ns, pod, false)?;
        }
    }
    p.requests_per_add = requests as f64 / (rounds * pods.len()).max(1) as f64;
    Ok(p)
}

fn run(args: &Args) -> Result<(), String> {
    if !is_root() {
        return Err("the bench creates network namespaces: run it as root".into());
    }
    for p in ["bridge", "macvlan", "host-local"] {
        let f = Path::new(node::PLUGINS).join(p);
        if !f.exists() {
            return Err(format!(
                "{} is missing (make deps installs it)",
                f.display()
            ));
        }
    }
    let (binary_bytes, knows_builtin) = scan_binary(&args.plexus, b"builtinDelegates")
        .map_err(|e| format!("{}: {e}", args.plexus.display()))?;
    let px = Plexus {
        bin: args.plexus.clone(),
        debug_log: args.debug_log.clone(),
        settle: args.settle,
    };
    let node = Node::new()?;
    progress(&format!(
        "node namespace and API server at {} ready",
        node.api.url()
    ));
    if args.health_only {
        println!("{}", health::table(&node)?);
        return Ok(());
    }
    let result = measure(&node, &px, args, binary_bytes, knows_builtin);
    if result.is_err() {
        let log = std::fs::read_to_string(node.work.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        if !tail.is_empty() {
            eprintln!("last lines of the children's stderr:");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
    }
    result
}

/// The file's size and whether `needle` occurs in it, read in chunks (never the whole file at
/// once: the bench's own memory would show up in every child's `ru_maxrss`).
fn scan_binary(path: &Path, needle: &[u8]) -> std::io::Result<(usize, bool)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut keep, mut found) = (0, 0, false);
    loop {
        let n = f.read(&mut buf[keep..])?;
        if n == 0 {
            return Ok((total, found));
        }
        total += n;
        let end = keep + n;
        found |= buf[..end].windows(needle.len()).any(|w| w == needle);
        // Carry the tail so a match across chunk boundaries is seen.
        keep = (needle.len() - 1).min(end);
        buf.copy_within(end - keep..end, 0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[allow(clippy::too_many_lines)] // the scenarios, run in order
fn measure(
    node: &Node,
    px: &Plexus,
    args: &Args,
    binary_bytes: usize,
    knows_builtin: bool,
) -> Result<(), String> {
    let load_start = loadavg();
    // The API server's contents.
    let storage = node.put_nad("bench", "storage", 1);
    let mvs: Vec<_> = (1..=SCALE[SCALE.len() - 1])
        .map(|i| {
            (
                format!("mv{i}"),
                node.put_nad("bench", &format!("mv{i}"), 10 + i as u32),
            )
        })
        .collect();
    let one = [("storage", &storage)];
    let mut main: Vec<(Who, Pod)> = vec![
        (Who::Floor, node.put_pod("bench", "pod-a", &one)),
        (Who::Thin, node.put_pod("bench", "pod-b", &one)),
        (Who::Annotations, node.put_pod("bench", "pod-c", &one)),
    ];
    if args.builtin {
        main.push((Who::Builtin, node.put_pod("bench", "pod-d", &one)));
    }
    main.push((Who::Alongside, node.put_pod("bench", "pod-e", &one)));
    main.push((Who::PlainHttp, node.put_pod("bench", "pod-f", &one)));
    let par: Vec<Pod> = (0..PARALLEL)
        .map(|i| node.put_pod("bench", &format!("par-{i}"), &one))
        .collect();
    let scale: Vec<(usize, Pod)> = SCALE
        .iter()
        .map(|&k| {
            let nads: Vec<(&str, &_)> = mvs[..k].iter().map(|(n, c)| (n.as_str(), c)).collect();
            (k, node.put_pod("bench", &format!("scale-{k}"), &nads))
        })
        .collect();
    let mut nad_pods = Vec::new();
    for (count, subnet) in [(10usize, 30u32), (1000, 31)] {
        let ns = format!("nads{count}");
        let conf = node.put_nad(&ns, "storage", subnet);
        for i in 1..count {
            node.put_nad(&ns, &format!("filler-{i:04}"), 200);
        }
        nad_pods.push((count, node.put_pod(&ns, "pod", &[("storage", &conf)])));
    }

    if args.builtin && !knows_builtin {
        progress(
            "note: this plexus binary does not know `builtinDelegates`: (d) runs the same code as (b)",
        );
    }
    let entries: Vec<(Who, &Pod)> = main.iter().map(|(w, p)| (*w, p)).collect();
    progress("warm-up cycle");
    interleave(node, px, &entries, 1, "warm-up")?;
    let main_series = interleave(node, px, &entries, args.cycles, "main")?;

    progress("plexus's own peak memory (traced runs)");
    let mut main_series = main_series;
    for s in main_series.iter_mut() {
        let pod = &main.iter().find(|(w, _)| *w == s.who).ok_or("no pod")?.1;
        for _ in 0..args.rounds {
            let (a, d) = cycle(node, px, s.who, pod, true)?;
            s.push_traced(&a, &d);
        }
    }

    progress(&format!(
        "{PARALLEL} pods at once, {} round(s)",
        args.rounds
    ));
    let mut pars = Vec::new();
    for who in [Who::Floor, Who::Thin] {
        pars.push(parallel(node, px, who, &par, args.rounds)?);
    }

    let mut scaling = Vec::new();
    for (k, pod) in &scale {
        let s = interleave(
            node,
            px,
            &[(Who::Floor, pod), (Who::Thin, pod)],
            args.scale_cycles,
            &format!("{k} extra network(s)"),
        )?;
        scaling.push((*k, s));
    }
    let nad_entries = [
        (Who::Floor, &nad_pods[0].1),
        (Who::Thin, &nad_pods[0].1),
        (Who::Thin, &nad_pods[1].1),
    ];
    let nads = interleave(node, px, &nad_entries, args.scale_cycles, "10 vs 1000 NADs")?;
    let many = many_networks(node, px, &scale, args.scale_cycles)?;
    let agent_table = agent::table(node, px, args.cycles)?;
    let health_table = health::table(node)?;

    let left = node.leftovers();
    if !left.is_empty() {
        return Err(format!("left behind after every DEL: {}", left.join(", ")));
    }

    let meta = Meta {
        load_start: load_start.clone(),
        plexus: &args.plexus,
        binary_bytes,
        cycles: args.cycles,
        scale_cycles: args.scale_cycles,
        builtin_note: (args.builtin && !knows_builtin).then_some(
            "this plexus binary does not know builtinDelegates: (d) ran the same code as (b)",
        ),
    };
    let report = Report {
        main: main_series,
        pars,
        scaling,
        nads,
        many,
    };
    println!("{}", markdown(&meta, &report));
    println!("{agent_table}");
    println!("{health_table}");
    let json = report_json(&meta, &report);
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", args.json.display()))?;
    progress(&format!("wrote {}", args.json.display()));
    Ok(())
}

/// Every table's measurements.
struct Report {
    main: Vec<Series>,
    pars: Vec<Parallel>,
    scaling: Vec<(usize, Vec<Series>)>,
    nads: Vec<Series>,
    /// Per count of [`MANY`]: built-in strict, built-in `parallelAttach`.
    many: Vec<(usize, Vec<Series>)>,
}

/// 1 and 8 extra built-in macvlan networks, strict order against `parallelAttach`.
fn many_networks(
    node: &Node,
    px: &Plexus,
    scale: &[(usize, Pod)],
    cycles: usize,
) -> Result<Vec<(usize, Vec<Series>)>, String> {
    let mut out = Vec::new();
    for k in MANY {
        let pod = &scale
            .iter()
            .find(|(n, _)| *n == k)
            .ok_or("no pod for the many-networks table")?
            .1;
        let s = interleave(
            node,
            px,
            &[(Who::Builtin, pod), (Who::Parallel, pod)],
            cycles,
            &format!("{k} built-in network(s), strict and parallel"),
        )?;
        out.push((k, s));
    }
    Ok(out)
}

/// The many-networks table: ADD and DEL medians for 1 and 8 extra networks, and 8 against 1.
fn many_table(many: &[(usize, Vec<Series>)]) -> String {
    let mut o = String::from(
        "\nMany networks, built-in macvlan (ms, medians); target: 8 networks in at most 2x the \
         time of 1 with parallelAttach:\n\n\
         | contestant | ADD, 1 | ADD, 8 | ADD 8/1 | DEL, 1 | DEL, 8 | DEL 8/1 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let (Some((_, one)), Some((_, eight))) = (many.first(), many.last()) else {
        return o;
    };
    let mut goal = String::new();
    for (a, b) in one.iter().zip(eight) {
        let (a1, a8) = (a.add_summary().median, b.add_summary().median);
        let (d1, d8) = (a.del_summary().median, b.del_summary().median);
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            a.who.label(),
            ms(a1),
            ms(a8),
            ratio(a8, a1),
            ms(d1),
            ms(d8),
            ratio(d8, d1)
        ));
        if a.who == Who::Parallel {
            let met = |x: f64, one: f64| agent::verdict(x <= 2.0 * one);
            goal = format!(
                "\nTarget with parallelAttach, 8 networks in at most 2x the time of 1: ADD {} ({}), \
                 DEL {} ({}).\n",
                ratio(a8, a1),
                met(a8, a1),
                ratio(d8, d1),
                met(d8, d1)
            );
        }
    }
    o.push_str(&goal);
    o
}

struct Meta<'a> {
    plexus: &'a Path,
    binary_bytes: usize,
    cycles: usize,
    scale_cycles: usize,
    builtin_note: Option<&'static str>,
    load_start: String,
}

/// This process's own peak RSS (KiB).
fn own_vmhwm() -> Option<i64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn ratio(a: f64, floor: f64) -> String {
    format!("{:.2}x", a / floor)
}

#[allow(clippy::too_many_lines)] // the report, table after table
fn markdown(meta: &Meta<'_>, report: &Report) -> String {
    let Report {
        main,
        pars,
        scaling,
        nads,
        many,
    } = report;
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    let floor = &main[0];
    let (fa, fd) = (floor.add_summary(), floor.del_summary());
    line(format!(
        "### plexus bench: `{}` ({:.1} MiB), {} cycles, {} CPUs, Linux {}, load average {} at start, {} at end\n",
        meta.plexus.display(),
        meta.binary_bytes as f64 / (1024.0 * 1024.0),
        meta.cycles,
        cpus(),
        kernel(),
        meta.load_start,
        loadavg()
    ));
    let busy = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(|x| x > cpus() as f64)
    };
    if busy(&meta.load_start) || busy(&loadavg()) {
        line("**The machine was busy (load average above the CPU count): expect noise.**\n".into());
    }
    line(
        "Bridge + host-local cluster network (`eth0`) and one macvlan NAD (`net1`); times in ms.\n"
            .into(),
    );
    line("| contestant | ADD median | p90 | max | ×floor | added | DEL median | p90 | max | ×floor | added | API req/ADD | API req/DEL |".into());
    line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    for s in main {
        let (a, d) = (s.add_summary(), s.del_summary());
        let (ra, rd) = s.requests_per();
        let (ra, rd) = if s.who == Who::Floor {
            ("-".to_string(), "-".to_string())
        } else {
            (format!("{ra:.1}"), format!("{rd:.1}"))
        };
        let (pa, pd) = if s.who == Who::Floor {
            ("-".to_string(), "-".to_string())
        } else {
            (
                ms(paired(&s.add, &floor.add)),
                ms(paired(&s.del, &floor.del)),
            )
        };
        line(format!(
            "| {} | {} | {} | {} | {} | {pa} | {} | {} | {} | {} | {pd} | {ra} | {rd} |",
            s.who.label(),
            ms(a.median),
            ms(a.p90),
            ms(a.max),
            ratio(a.median, fa.median),
            ms(d.median),
            ms(d.p90),
            ms(d.max),
            ratio(d.median, fd.median),
        ));
    }
    line(
        "\n×floor: ratio of medians; added: median over cycles of (contestant − floor) in the same cycle."
            .into(),
    );
    if let Some(n) = meta.builtin_note {
        line(format!("\nNote: {n}."));
    }
    if let Some(thin) = main.iter().find(|s| s.who == Who::Thin) {
        line(format!(
            "\nAPI requests of one thin ADD: {}; of one DEL: {}.",
            if thin.add_request_list.is_empty() {
                "none".into()
            } else {
                thin.add_request_list.join(", ")
            },
            if thin.del_request_list.is_empty() {
                "none".into()
            } else {
                thin.del_request_list.join(", ")
            },
        ));
    }

    line("\n| peak RSS | ADD | DEL |\n|---|---:|---:|".into());
    for s in main {
        let who = if s.who == Who::Floor {
            "largest delegate"
        } else {
            s.who.key()
        };
        line(format!(
            "| own (VmHWM at exit): {who} | {} | {} |",
            mib(s.own_hwm_add_kb.iter().max()),
            mib(s.own_hwm_del_kb.iter().max())
        ));
    }
    for s in main {
        let who = if s.who == Who::Floor {
            "largest delegate"
        } else {
            s.who.key()
        };
        line(format!(
            "| wait4 ru_maxrss*: {who} | {} | {} |",
            mib(s.maxrss_add_kb.iter().max()),
            mib(s.maxrss_del_kb.iter().max())
        ));
    }
    line(format!(
        "\nBinary {:.2} MiB. *wait4's ru_maxrss is the largest of the process's own peak, every child \
         it reaped, and its parent's at the moment it was exec'd (the kernel keeps the old address \
         space's mark), so it over-reports; this bench's own peak is {}. VmHWM is read at the \
         process's ptrace exit stop.",
        meta.binary_bytes as f64 / (1024.0 * 1024.0),
        mib(own_vmhwm().as_ref())
    ));

    line(format!("\n{PARALLEL} pods ADDed at once (ms):\n"));
    line("| contestant | makespan median | per-pod median | per-pod p90 | API req/ADD |".into());
    line("|---|---:|---:|---:|---:|".into());
    for p in pars {
        let (m, pp) = (Summary::of(&p.makespan), Summary::of(&p.per_pod));
        let req = if p.who == Who::Floor {
            "-".into()
        } else {
            format!("{:.1}", p.requests_per_add)
        };
        line(format!(
            "| {} | {} | {} | {} | {req} |",
            p.who.label(),
            ms(m.median),
            ms(pp.median),
            ms(pp.p90)
        ));
    }

    line(format!(
        "\nScaling, medians of {} cycles (ms); added: median of per-cycle plexus thin − floor:\n",
        meta.scale_cycles
    ));
    line("| extra macvlan networks | floor ADD | plexus ADD | added | ×floor | floor DEL | plexus DEL | added | API req/ADD |".into());
    line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    for (k, s) in scaling {
        let (f, p) = (&s[0], &s[1]);
        let (fa, pa, fd, pd) = (
            f.add_summary().median,
            p.add_summary().median,
            f.del_summary().median,
            p.del_summary().median,
        );
        line(format!(
            "| {k} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            ms(fa),
            ms(pa),
            ms(paired(&p.add, &f.add)),
            ratio(pa, fa),
            ms(fd),
            ms(pd),
            ms(paired(&p.del, &f.del)),
            p.requests_per().0
        ));
    }
    line("\n| NADs in the pod's namespace | floor ADD | plexus ADD | added | API req/ADD |".into());
    line("|---:|---:|---:|---:|---:|".into());
    let f = nads[0].add_summary().median;
    for (count, s) in [(10, &nads[1]), (1000, &nads[2])] {
        let p = s.add_summary().median;
        line(format!(
            "| {count} | {} | {} | {} | {:.1} |",
            ms(f),
            ms(p),
            ms(paired(&s.add, &nads[0].add)),
            s.requests_per().0
        ));
    }
    o.push_str(&many_table(many));
    o
}

fn report_json(meta: &Meta<'_>, report: &Report) -> Value {
    let Report {
        main,
        pars,
        scaling,
        nads,
        many,
    } = report;
    let floor = &main[0];
    json!({
        "plexus": meta.plexus,
        "binary_bytes": meta.binary_bytes,
        "cycles": meta.cycles,
        "scale_cycles": meta.scale_cycles,
        "cpus": cpus(),
        "kernel": kernel(),
        "load_average_start": meta.load_start,
        "load_average_end": loadavg(),
        "bench_own_peak_rss_kb": own_vmhwm(),
        "note": meta.builtin_note,
        "main": main.iter().map(|s| s.json((s.who != Who::Floor).then_some(floor))).collect::<Vec<_>>(),
        "parallel": pars.iter().map(|p| json!({
            "contestant": p.who.key(),
            "pods": PARALLEL,
            "makespan": Summary::of(&p.makespan).json(),
            "per_pod": Summary::of(&p.per_pod).json(),
            "api_requests_per_add": round(p.requests_per_add),
        })).collect::<Vec<_>>(),
        "scaling": scaling.iter().map(|(k, s)| json!({
            "extra_networks": k,
            "floor": s[0].json(None),
            "thin": s[1].json(Some(&s[0])),
        })).collect::<Vec<_>>(),
        "nads": [
            {"nads_in_namespace": 10, "floor": nads[0].json(None), "thin": nads[1].json(Some(&nads[0]))},
            {"nads_in_namespace": 1000, "floor": nads[0].json(None), "thin": nads[2].json(Some(&nads[0]))},
        ],
        "many": many.iter().map(|(k, s)| json!({
            "extra_networks": k,
            "builtin_strict": s[0].json(None),
            "builtin_parallel": s[1].json(None),
        })).collect::<Vec<_>>(),
    })
}
