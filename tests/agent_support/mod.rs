//! The node agent in tests: the real `plexus-agent` binary run in a test's node netns against
//! the test API server (with a token of its own, so its requests and the plugin's are told
//! apart), a client of its socket, its HTTP endpoint reached from inside the netns, and fake
//! agents that answer the plugin as a broken or foreign agent would.

#![allow(dead_code)]
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plexus::agent::proto::{self, Answer, Ask, Question, Reply, Report};
use plexus_testapi::{Recorded, TOKEN, TestApiServer};
use serde_json::{Value, json};

use crate::common::k8s::{Cluster, Pod};

/// The node the agent runs on (its pods are cached).
pub const NODE: &str = "node-a";
/// The agent's bearer token: its requests carry it, the plugin's carry [`TOKEN`].
pub const AGENT_TOKEN: &str = "plexus-agent-test-token";
/// The agent's HTTP endpoint, on the node netns's loopback.
pub const METRICS_PORT: u16 = 9402;

/// The agent binary under test.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plexus-agent"))
}

/// Stores `pod` scheduled on `node` with these annotations (replacing any earlier version).
pub fn put_pod_on(cluster: &Cluster, pod: &Pod, node: &str, annotations: &[(&str, &str)]) {
    let ann: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    cluster.api.put_pod(json!({
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
            "annotations": ann},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]},
    }));
}

/// Requests the plugin made (its token).
pub fn plugin_requests(api: &TestApiServer) -> Vec<Recorded> {
    let bearer = format!("Bearer {TOKEN}");
    api.requests()
        .into_iter()
        .filter(|r| r.authorization == bearer)
        .collect()
}

/// Requests the agent made (its token).
pub fn agent_requests(api: &TestApiServer) -> Vec<Recorded> {
    let bearer = format!("Bearer {AGENT_TOKEN}");
    api.requests()
        .into_iter()
        .filter(|r| r.authorization == bearer)
        .collect()
}

/// `METHOD path` of each request, for messages and comparisons.
pub fn calls(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// plexus's config for `cluster` with `agentSocket`.
pub fn conf_with_agent(cluster: &Cluster, socket: &Path) -> Value {
    let mut conf = cluster.conf();
    conf["agentSocket"] = json!(socket);
    conf
}

/// The health rounds are off unless a test sets their interval: their condition PATCHes would
/// join the requests other tests count (tests/agent_health.rs turns them on).
fn health_off(extra: &[&str]) -> &'static [&'static str] {
    if extra
        .iter()
        .any(|a| a.starts_with("--health-interval-seconds"))
    {
        &[]
    } else {
        &["--health-interval-seconds=0"]
    }
}

/// A running `plexus-agent`, stopped (SIGKILL) on drop if the test did not stop it.
pub struct Agent {
    child: Option<Child>,
    /// Its socket.
    pub socket: PathBuf,
    /// The installed conflist it reads.
    pub conflist: PathBuf,
    log: PathBuf,
    follower: Option<std::thread::JoinHandle<()>>,
    node_netns: String,
}

/// Copies `stderr` into `log` on a thread (which ends with the process); the channel gets one
/// message when a line containing `word` appears.
pub fn follow(
    stderr: std::process::ChildStderr,
    log: &Path,
    word: &'static str,
) -> (std::sync::mpsc::Receiver<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut file = std::fs::File::create(log).expect("agent log");
    let thread = std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            let _ = writeln!(file, "{line}");
            if !told && line.contains(word) {
                let _ = tx.send(());
                told = true;
            }
        }
    });
    (rx, thread)
}

impl Agent {
    /// Starts the agent in `cluster`'s node netns with its own kubeconfig, the plugin config
    /// `conf` as its installed conflist, and `extra` flags.
    pub fn start(cluster: &Cluster, conf: &Value, extra: &[&str]) -> Agent {
        Self::start_until(cluster, conf, extra, "serving")
    }

    /// [`Agent::start`], returning once the agent's stderr has a line containing `word`.
    pub fn start_until(
        cluster: &Cluster,
        conf: &Value,
        extra: &[&str],
        word: &'static str,
    ) -> Agent {
        let dir = cluster.env.dir.join("agent");
        std::fs::create_dir_all(&dir).expect("agent dir");
        let token = dir.join("token");
        std::fs::write(&token, AGENT_TOKEN).expect("agent token");
        let kubeconfig = dir.join("kubeconfig");
        let theirs = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
        let token_line = theirs
            .lines()
            .find(|l| l.trim_start().starts_with("tokenFile:"))
            .expect("a tokenFile line")
            .to_string();
        let ours = theirs.replace(
            &token_line,
            &format!("    tokenFile: {}", json!(token.to_string_lossy())),
        );
        std::fs::write(&kubeconfig, ours).expect("agent kubeconfig");
        let conflist = dir.join("00-00-plexus.conflist");
        let list = json!({"cniVersion": conf["cniVersion"], "name": "plexus-cni-network",
            "plugins": [conf]});
        std::fs::write(&conflist, list.to_string()).expect("conflist");
        let socket = dir.join("run").join("agent.sock");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &cluster.env.node])
            .arg(agent_bin())
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--node-name={NODE}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--cni-conf={}", conflist.display()))
            .arg(format!("--metrics-addr=127.0.0.1:{METRICS_PORT}"))
            .args(health_off(extra))
            .args(extra)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn plexus-agent");
        cluster.env.track_pid(child.id());
        let log = dir.join("agent.log");
        let (serving, follower) = follow(child.stderr.take().expect("stderr"), &log, word);
        let agent = Agent {
            child: Some(child),
            socket,
            conflist,
            log,
            follower: Some(follower),
            node_netns: cluster.env.node.clone(),
        };
        // Its stderr says when it serves: the socket is bound by then.
        if serving.recv_timeout(Duration::from_secs(60)).is_err() {
            panic!("plexus-agent never said {word:?}: {}", agent.log());
        }
        agent
    }

    /// What the agent wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks the agent one question (the agent may wait up to `wait` for its caches).
    pub fn ask(&self, question: Question, wait: Duration) -> Reply {
        ask_raw(
            &self.socket,
            &Ask {
                v: proto::VERSION,
                wait_ms: wait.as_millis() as u64,
                question,
            },
        )
    }

    /// Waits until the agent's cache holds `pod` (as this incarnation); panics after 60 s.
    pub fn wait_for_pod(&self, pod: &Pod) {
        let q = Question::Pod {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: Some(pod.uid.clone()),
        };
        match self.ask(q, Duration::from_secs(60)) {
            Reply::Pod { uid, .. } if uid == pod.uid => {}
            other => panic!(
                "the agent never cached {}/{}: {other:?}; {}",
                pod.namespace,
                pod.name,
                self.log()
            ),
        }
    }

    /// Waits until the agent's NAD cache holds `ns/name`; panics after 60 s.
    pub fn wait_for_nad(&self, ns: &str, name: &str) {
        let q = Question::Nads {
            keys: vec![(ns.into(), name.into())],
        };
        match self.ask(q, Duration::from_secs(60)) {
            Reply::Nads { .. } => {}
            other => panic!(
                "the agent never cached NAD {ns}/{name}: {other:?}; {}",
                self.log()
            ),
        }
    }

    /// `GET path` on the agent's HTTP endpoint, from inside the node netns: status and body.
    pub fn http(&self, path: &str) -> (u16, String) {
        let netns = format!("/run/netns/{}", self.node_netns);
        let path = path.to_string();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&netns).expect("open netns");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            let mut s = std::net::TcpStream::connect(("127.0.0.1", METRICS_PORT))
                .expect("connect to the agent's endpoint");
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .expect("write");
            let mut text = String::new();
            s.read_to_string(&mut text).expect("read");
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let code = head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (code, body.to_string())
        })
        .join()
        .expect("http thread")
    }

    /// The value of the series `name{labels...}` on `/metrics`, if present.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let (_, text) = self.http("/metrics");
        metric(&text, name, labels)
    }

    /// SIGTERM, then waits for the agent to exit (and its log to be complete); its exit
    /// status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let status = child.wait().expect("wait for the agent");
        if let Some(f) = self.follower.take() {
            let _ = f.join();
        }
        status
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One question on a fresh connection to `socket`; the reply (panics on a broken answer).
pub fn ask_raw(socket: &Path, ask: &Ask) -> Reply {
    let s = UnixStream::connect(socket).expect("connect to the agent");
    let mut w = s.try_clone().expect("clone");
    let mut line = serde_json::to_vec(ask).expect("encode");
    line.push(b'\n');
    w.write_all(&line).expect("ask");
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .expect("read answer");
    let a: Answer = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"));
    assert_eq!(a.v, proto::VERSION);
    a.body
}

/// The value of `name{labels...}` in an exposition text: the first series of that name whose
/// labels include every pair.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// What a fake agent does with each question.
#[derive(Debug, Clone)]
pub enum Fake {
    /// Reads the question and never answers.
    Silent,
    /// Answers with this line (any bytes, a newline is added).
    Says(String),
}

/// A fake agent on `socket`: serves connections on a thread as `fake` says, and receives the
/// plugin's reports (on a connection, or as datagrams).
pub struct FakeAgent {
    /// Its socket.
    pub socket: PathBuf,
    reports: std::sync::mpsc::Receiver<Report>,
    /// Questions received (reports aside), in order.
    pub questions: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeAgent {
    /// Binds `dir/agent.sock` (and its report socket) and serves on threads.
    pub fn start(dir: &Path, fake: Fake) -> FakeAgent {
        std::fs::create_dir_all(dir).expect("dir");
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake agent");
        let datagrams = UnixDatagram::bind(proto::report_socket(&socket)).expect("bind reports");
        let (tx, reports) = std::sync::mpsc::channel();
        let from_datagrams = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; proto::MAX_REPORT + 1];
            while let Ok(n) = datagrams.recv(&mut buf) {
                if let Ok(r) = serde_json::from_slice(&buf[..n]) {
                    let _ = from_datagrams.send(r);
                }
            }
        });
        let questions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = questions.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (fake, seen, tx) = (fake.clone(), seen.clone(), tx.clone());
                std::thread::spawn(move || {
                    let mut w = stream.try_clone().expect("clone");
                    let mut lines = BufReader::new(stream);
                    loop {
                        let mut q = String::new();
                        match lines.read_line(&mut q) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if let Ok(Ask {
                            question: Question::Report { report },
                            ..
                        }) = serde_json::from_str(&q)
                        {
                            let _ = tx.send(report);
                            continue;
                        }
                        seen.lock().unwrap().push(q);
                        if let Fake::Says(a) = &fake
                            && w.write_all(format!("{a}\n").as_bytes()).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        FakeAgent {
            socket,
            reports,
            questions,
        }
    }

    /// The next report the plugin sent (panics after 60 s without one).
    pub fn report(&self) -> Report {
        self.reports
            .recv_timeout(Duration::from_secs(60))
            .expect("a report from the plugin")
    }
}
