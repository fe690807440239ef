//! The plugin's side of the agent: [`AgentConnect`], a [`Connect`] that asks the agent's
//! caches first and falls back, per call and for any reason, to exactly what the plugin does
//! without an agent (the API server, connected to only then); and [`Reporter`], which times
//! each attachment and sends the call's outcome to the agent in one datagram, best effort.
//!
//! Used for ADD only: DEL never talks to the agent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::proto::{self, Answer, Ask, Fallback, Question, Reply, Report, StepReport};
use crate::cni::env::Command;
use crate::k8s::client::{ApiError, PodInfo};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::PodRef;
use crate::resolve::cluster::{ApiConnector, Cluster, Connect, NadKey};
use crate::txn::Step;
use crate::txn::observe::Observer;

/// How long the plugin waits for an answer from the agent's caches.
pub const QUERY_DEADLINE: Duration = Duration::from_millis(50);
/// How long the plugin waits for the agent to confirm the network-status PATCH it handed over
/// (the agent makes a real API request) before sending it itself.
pub const STATUS_DEADLINE: Duration = Duration::from_secs(1);
/// Of a deadline, how long the agent may wait for its caches (the rest is for the answer).
const WAIT_SHARE: f64 = 0.8;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Collects what one CNI call reports to the agent: each attachment's delegate calls (as the
/// engine's [`Observer`]) and each fallback.
#[derive(Debug, Default)]
pub struct Reporter {
    steps: Mutex<Vec<StepReport>>,
    fallbacks: Mutex<Vec<Fallback>>,
}

impl Observer for Reporter {
    fn step(&self, command: Command, step: &Step, elapsed: Duration, ok: bool) {
        lock(&self.steps).push(StepReport {
            verb: command.as_str().to_string(),
            network: step.network.clone(),
            plugin: step.types(),
            seconds: elapsed.as_secs_f64(),
            ok,
        });
    }
}

impl Reporter {
    /// A fallback happened.
    pub fn fell_back(&self, why: Fallback) {
        tracing::debug!(reason = why.as_str(), "agent: doing without it");
        lock(&self.fallbacks).push(why);
    }

    /// The fallbacks so far.
    pub fn fallbacks(&self) -> Vec<Fallback> {
        lock(&self.fallbacks).clone()
    }

    /// The report of a finished call.
    pub fn report(
        &self,
        verb: Command,
        code: Option<u32>,
        rollback: Option<&str>,
        elapsed: Duration,
    ) -> Report {
        Report {
            v: proto::VERSION,
            verb: verb.as_str().to_string(),
            code,
            seconds: elapsed.as_secs_f64(),
            rollback: rollback.map(str::to_string),
            fallbacks: self.fallbacks(),
            steps: lock(&self.steps).clone(),
        }
    }

    /// Sends `report` to the agent listening next to `socket`: one non-blocking datagram,
    /// dropped when nobody listens or the agent's queue is full. Never fails, never waits.
    pub fn send(socket: &Path, report: &Report) {
        let Ok(s) = UnixDatagram::unbound() else {
            return;
        };
        if s.set_nonblocking(true).is_err() {
            return;
        }
        if let Err(e) = s.send_to(&report.encode(), proto::report_socket(socket)) {
            tracing::debug!(error = %e, "agent: report dropped");
        }
    }
}

/// A [`Connect`] that asks the agent at `socket` first, and `api` for whatever the agent does
/// not answer in time (connecting to the API server only then).
#[derive(Debug, Clone)]
pub struct AgentConnect {
    /// The agent's socket.
    pub socket: PathBuf,
    /// How long to wait for a cache answer.
    pub deadline: Duration,
    /// How long to wait for the agent's PATCH.
    pub status_deadline: Duration,
    /// The direct path: what the plugin does without an agent.
    pub api: ApiConnector,
    /// Where fallbacks are counted.
    pub reporter: Arc<Reporter>,
    /// The connection to the agent, shared by every question of the call and its report.
    pub link: Arc<Mutex<Link>>,
}

impl AgentConnect {
    /// A connect for the agent at `socket`, with the plugin's deadlines.
    pub fn new(socket: PathBuf, api: ApiConnector, reporter: Arc<Reporter>) -> AgentConnect {
        AgentConnect {
            socket,
            deadline: QUERY_DEADLINE,
            status_deadline: STATUS_DEADLINE,
            api,
            reporter,
            link: Arc::default(),
        }
    }

    /// Sends `report` on the call's connection to the agent, if it is up, without waiting (a
    /// line the socket cannot take at once is dropped): the agent receives it whatever its
    /// datagram queue holds. False when there is no usable connection or the line was not
    /// taken whole (then [`Reporter::send`]).
    pub fn report(&self, report: &Report) -> bool {
        let mut link = lock(&self.link);
        let Link::Up(stream) = &mut *link else {
            return false;
        };
        let ask = Ask {
            v: proto::VERSION,
            wait_ms: 0,
            question: Question::Report {
                report: report.clone(),
            },
        };
        let Ok(mut line) = serde_json::to_vec(&ask) else {
            return false;
        };
        line.push(b'\n');
        let s = stream.get_mut();
        if s.set_nonblocking(true).is_err() {
            return false;
        }
        let sent = s.write_all(&line);
        if let Err(e) = &sent {
            // The agent drops a line without its end: the datagram carries it instead.
            tracing::debug!(error = %e, "agent: report not taken on the connection");
        }
        *link = Link::Down(Fallback::AgentError);
        sent.is_ok()
    }
}

impl Connect for AgentConnect {
    fn connect(&self, budget: Option<Duration>) -> Result<Option<Box<dyn Cluster>>, ApiError> {
        // Without cluster access the plugin reads nothing from the cluster, agent or not.
        if !self.api.configured() {
            return self.api.connect(budget);
        }
        Ok(Some(Box::new(AgentCluster {
            via: self.clone(),
            budget,
            api: OnceLock::new(),
        })))
    }
}

/// The connection to the agent of one call.
#[derive(Debug, Default)]
pub enum Link {
    /// Not connected yet.
    #[default]
    Untried,
    /// Connected.
    Up(BufReader<UnixStream>),
    /// Not usable for the rest of the call, and why.
    Down(Fallback),
}

/// The cluster as seen through the agent, with the API server behind it.
struct AgentCluster {
    via: AgentConnect,
    budget: Option<Duration>,
    api: OnceLock<Result<Box<dyn Cluster>, ApiError>>,
}

impl AgentCluster {
    /// The API server, connected on first use.
    fn api(&self) -> Result<&dyn Cluster, ApiError> {
        let api = self.api.get_or_init(|| {
            self.via
                .api
                .connect(self.budget)?
                .ok_or_else(|| ApiError::Config("no cluster access".into()))
        });
        match api {
            Ok(c) => Ok(&**c),
            Err(e) => Err(e.clone()),
        }
    }

    /// Asks the agent; `Err` says why the plugin must do without it for this question.
    fn ask(&self, question: Question, deadline: Duration) -> Result<Reply, Fallback> {
        let start = Instant::now();
        let mut link = lock(&self.via.link);
        if let Link::Untried = *link {
            *link = match connect(&self.via.socket) {
                Ok(s) => Link::Up(BufReader::new(s)),
                Err(why) => Link::Down(why),
            };
        }
        let stream = match &mut *link {
            Link::Up(s) => s,
            Link::Down(why) => return Err(*why),
            Link::Untried => return Err(Fallback::AgentError),
        };
        let ask = Ask {
            v: proto::VERSION,
            wait_ms: (deadline.as_secs_f64() * WAIT_SHARE * 1000.0) as u64,
            question,
        };
        match exchange(stream, &ask, start + deadline) {
            // The agent answered: the link stays up for the next question.
            Ok(Reply::Unknown { reason }) => Err(reason),
            Ok(Reply::Error { message }) => {
                tracing::debug!(%message, "agent: answered with an error");
                Err(Fallback::AgentError)
            }
            Ok(reply) => Ok(reply),
            Err(why) => {
                // A late answer would be read as the next one: the link is done for this call.
                *link = Link::Down(why);
                Err(why)
            }
        }
    }

    fn fall_back(&self, why: Fallback) {
        self.via.reporter.fell_back(why);
    }
}

/// Connects without ever waiting (a full backlog counts as refused).
fn connect(socket: &Path) -> Result<UnixStream, Fallback> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let refused = |e: rustix::io::Errno| match e {
        rustix::io::Errno::NOENT => Fallback::NoSocket,
        _ => Fallback::Refused,
    };
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(refused)?;
    let addr = SocketAddrUnix::new(socket).map_err(refused)?;
    rustix::net::connect(&fd, &addr).map_err(refused)?;
    let stream = UnixStream::from(fd);
    stream
        .set_nonblocking(false)
        .map_err(|_| Fallback::Refused)?;
    Ok(stream)
}

/// Writes one question and reads one answer before `deadline`; `Err` when the link failed
/// (no answer in time, a broken or foreign one).
fn exchange(
    stream: &mut BufReader<UnixStream>,
    ask: &Ask,
    deadline: Instant,
) -> Result<Reply, Fallback> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Fallback::Deadline)
    };
    let mut line = serde_json::to_vec(ask).map_err(|_| Fallback::AgentError)?;
    line.push(b'\n');
    let timed_out = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Fallback::Deadline,
        _ => Fallback::Refused,
    };
    stream
        .get_ref()
        .set_write_timeout(Some(left()?))
        .map_err(|_| Fallback::AgentError)?;
    stream.get_mut().write_all(&line).map_err(timed_out)?;
    let mut answer = Vec::new();
    loop {
        stream
            .get_ref()
            .set_read_timeout(Some(left()?))
            .map_err(|_| Fallback::AgentError)?;
        match stream.read_until(b'\n', &mut answer) {
            Ok(0) => return Err(Fallback::AgentError),
            Ok(_) if answer.ends_with(b"\n") => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(timed_out(e)),
        }
    }
    match proto::version_of(&answer) {
        Ok(proto::VERSION) => {}
        Ok(_) => return Err(Fallback::Version),
        Err(_) => return Err(Fallback::AgentError),
    }
    let answer: Answer = serde_json::from_slice(&answer).map_err(|_| Fallback::AgentError)?;
    Ok(answer.body)
}

impl Cluster for AgentCluster {
    fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        let question = Question::Pod {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
        };
        let why = match self.ask(question, self.via.deadline) {
            Ok(Reply::Pod { uid, annotations }) => match &pod.uid {
                Some(want) if *want != uid => Fallback::UidMismatch,
                _ => return Ok(Some(pod_info(pod, uid, annotations))),
            },
            Ok(_) => Fallback::AgentError,
            Err(why) => why,
        };
        self.fall_back(why);
        self.api()?.pod(pod)
    }

    fn nads(
        &self,
        wanted: &[NadKey],
    ) -> Result<std::collections::HashMap<NadKey, NadObject>, ApiError> {
        let why = match self.ask(
            Question::Nads {
                keys: wanted.to_vec(),
            },
            self.via.deadline,
        ) {
            Ok(Reply::Nads { nads }) => match found(wanted, nads) {
                Some(found) => return Ok(found),
                None => Fallback::AgentError,
            },
            Ok(_) => Fallback::AgentError,
            Err(why) => why,
        };
        self.fall_back(why);
        self.api()?.nads(wanted)
    }

    fn patch_status(
        &self,
        pod: &PodRef,
        annotations: &Map<String, Value>,
        event: Option<&Value>,
    ) -> Result<bool, ApiError> {
        let question = Question::Status {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            annotations: annotations.clone(),
            event: event.cloned(),
        };
        let why = match self.ask(question, self.via.status_deadline) {
            Ok(Reply::Patched { found }) => return Ok(found),
            Ok(_) => Fallback::AgentError,
            Err(why) => why,
        };
        self.fall_back(why);
        // A merge PATCH is idempotent; an event is not: post it only if the agent surely never
        // got the question.
        let event = match why {
            Fallback::NoSocket | Fallback::Refused | Fallback::Version => event,
            _ => None,
        };
        self.api()?.patch_status(pod, annotations, event)
    }
}

/// What the API's GET of the pod gives plexus, from the agent's answer.
fn pod_info(pod: &PodRef, uid: String, annotations: BTreeMap<String, String>) -> PodInfo {
    PodInfo {
        metadata: kube::core::ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(uid),
            annotations: Some(annotations),
            ..Default::default()
        },
    }
}

/// The NADs the agent sent, keyed; `None` when one asked for is missing or unreadable.
fn found(
    wanted: &[NadKey],
    nads: Vec<Value>,
) -> Option<std::collections::HashMap<NadKey, NadObject>> {
    let mut out = std::collections::HashMap::new();
    for v in nads {
        let nad: NadObject = serde_json::from_value(v).ok()?;
        let key = (nad.metadata.namespace.clone()?, nad.metadata.name.clone()?);
        out.insert(key, nad);
    }
    wanted.iter().all(|k| out.contains_key(k)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without cluster access the plugin reads nothing from the cluster, agent or not: the
    /// agent is not even asked.
    #[test]
    fn without_cluster_access_nothing_is_asked() {
        assert!(
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_none(),
            "in a pod the in-cluster settings count as cluster access: run this outside one"
        );
        let dir = std::env::temp_dir().join(format!("plexus-agent-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let api = ApiConnector {
            kubeconfig: None,
            timeout: Duration::from_secs(1),
            budget: Duration::from_secs(1),
        };
        let c = AgentConnect::new(socket.clone(), api, Arc::default());
        assert!(c.connect(None).unwrap().is_none());
        assert!(listener.accept().is_err(), "nobody connected");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
