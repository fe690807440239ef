//! Serving the plugin: the unix stream socket (directory 0700, socket 0600: root only) that
//! answers questions from the caches and sends network-status PATCHes over the agent's own
//! connection, and the report datagram socket beside it whose reports become metrics.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixDatagram, UnixListener, UnixStream};

use super::cache::{Caches, Key, SlimPod};
use super::metrics::Metrics;
use super::proto::{self, Answer, Ask, Fallback, Question, Reply, Report};
use crate::k8s::client::Api;

/// Longest question line the agent reads (a network-status for many interfaces fits).
const MAX_LINE: usize = 1 << 20;
/// How long a failing accept or receive waits before it tries again.
pub(crate) const ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Longest the agent waits for its caches on a question, whatever the plugin asks.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// What answering needs.
pub struct Served {
    /// The caches.
    pub caches: Arc<Caches>,
    /// The API, for the PATCHes handed over (its timeouts fit the plugin's deadline).
    pub api: Api,
    /// Where questions and reports are counted.
    pub metrics: Arc<Metrics>,
}

/// Binds `path` as the agent's socket (and `<path>.report`): the directory is created 0700, a
/// stale socket from an earlier run is replaced, both sockets are 0600; the guard removes them
/// when dropped (a failed bind leaves neither).
///
/// # Errors
/// When the directory or a socket cannot be made, or `path` exists and is not a socket.
pub fn bind(path: &Path) -> io::Result<(UnixListener, UnixDatagram, Bound)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let report = proto::report_socket(path);
    for p in [path, report.as_path()] {
        remove_stale(p)?;
    }
    let bound = (|| {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let reports = UnixDatagram::bind(&report)?;
        std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o600))?;
        Ok((listener, reports, Bound(path.to_path_buf())))
    })();
    if bound.is_err() {
        // Neither socket is left for plugins to knock on in vain.
        unbind(path);
    }
    bound
}

/// Removes the sockets at `path` when dropped: every way out of the agent, a failed start
/// included.
#[derive(Debug)]
pub struct Bound(pub PathBuf);

impl Drop for Bound {
    fn drop(&mut self) {
        unbind(&self.0);
    }
}

/// Removes a socket left by an earlier run; refuses to remove anything else.
fn remove_stale(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(p),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", p.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the sockets (on a clean stop).
pub fn unbind(path: &Path) {
    let report: PathBuf = proto::report_socket(path);
    for p in [path, report.as_path()] {
        let _ = remove_stale(p);
    }
}

/// Accepts plugins' connections until the task is dropped, each served on its own task.
pub async fn serve(listener: UnixListener, served: Arc<Served>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let served = served.clone();
                tokio::spawn(async move { connection(stream, &served).await });
            }
            Err(e) => {
                // Out of descriptors or memory: give the process a moment instead of spinning.
                tracing::warn!(error = %e, "agent socket: accept failed");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Answers each question line of one connection until the plugin closes it.
async fn connection(stream: UnixStream, served: &Served) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).take(u64::MAX);
    let mut line = Vec::new();
    loop {
        line.clear();
        lines.set_limit(MAX_LINE as u64);
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with(b"\n") => return,
            Ok(_) => {}
        }
        let (op, reply) = answer(&line, served).await;
        served.metrics.socket(op, kind(&reply));
        let mut out = serde_json::to_vec(&Answer {
            v: proto::VERSION,
            body: reply,
        })
        .unwrap_or_default();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn kind(r: &Reply) -> &'static str {
    match r {
        Reply::Pod { .. } => "pod",
        Reply::Nads { .. } => "nads",
        Reply::Patched { .. } => "patched",
        Reply::Noted => "noted",
        Reply::Unknown { .. } => "unknown",
        Reply::Error { .. } => "error",
    }
}

/// One question's answer, and the question's name for metrics.
async fn answer(line: &[u8], served: &Served) -> (&'static str, Reply) {
    match proto::version_of(line) {
        Ok(proto::VERSION) => {}
        Ok(v) => {
            return (
                "invalid",
                Reply::Error {
                    message: format!(
                        "protocol version {v} is not spoken here (this agent speaks {})",
                        proto::VERSION
                    ),
                },
            );
        }
        Err(e) => {
            return (
                "invalid",
                Reply::Error {
                    message: format!("not a question: {e}"),
                },
            );
        }
    }
    let ask: Ask = match serde_json::from_slice(line) {
        Ok(a) => a,
        Err(e) => {
            return (
                "invalid",
                Reply::Error {
                    message: format!("not a question: {e}"),
                },
            );
        }
    };
    let wait = Duration::from_millis(ask.wait_ms).min(MAX_WAIT);
    let caches = &served.caches;
    match ask.question {
        Question::Pod {
            namespace,
            name,
            uid,
        } => {
            let key: Key = (namespace, name);
            // Ok: the pod asked for; Err: what to answer if it does not come in time (another
            // incarnation is answered as it is: the plugin sees the mismatch).
            let identity = |p: &SlimPod| (p.uid.clone(), p.annotations.clone());
            let look = |c: &Caches| match (c.pod_state().synced, c.pod_with(&key, identity)) {
                (false, _) => Err(Reply::Unknown {
                    reason: Fallback::NotSynced,
                }),
                (true, None) => Err(Reply::Unknown {
                    reason: Fallback::NotCached,
                }),
                (true, Some((pod_uid, annotations))) => {
                    let right = uid.as_deref().is_none_or(|u| u == pod_uid);
                    let reply = Reply::Pod {
                        uid: pod_uid,
                        annotations,
                    };
                    if right { Ok(reply) } else { Err(reply) }
                }
            };
            ("pod", either(caches.wait_for(wait, look).await))
        }
        Question::Nads { keys } => {
            let look = |c: &Caches| match (c.nad_state().synced, c.nads(&keys)) {
                (false, _) => Err(Reply::Unknown {
                    reason: Fallback::NotSynced,
                }),
                (true, None) => Err(Reply::Unknown {
                    reason: Fallback::NotCached,
                }),
                (true, Some(nads)) => Ok(Reply::Nads { nads }),
            };
            ("nads", either(caches.wait_for(wait, look).await))
        }
        Question::Status {
            namespace,
            name,
            annotations,
            event,
        } => (
            "status",
            status(served, &namespace, &name, &annotations, event).await,
        ),
        Question::Report { report } => {
            served.metrics.report(&report);
            ("report", Reply::Noted)
        }
    }
}

/// The network-status PATCH (and event) handed over by the plugin.
async fn status(
    served: &Served,
    namespace: &str,
    name: &str,
    annotations: &serde_json::Map<String, serde_json::Value>,
    event: Option<serde_json::Value>,
) -> Reply {
    let patched = served
        .api
        .patch_status(namespace, name, annotations, event.as_ref())
        .await;
    match patched {
        Ok(found) => Reply::Patched { found },
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    }
}

/// Turns report datagrams into metrics until the task is dropped. A report that is not one is
/// dropped.
pub async fn reports(socket: Arc<UnixDatagram>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; proto::MAX_REPORT + 1];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => count(&buf[..n], &metrics),
            Err(_) => tokio::time::sleep(ERROR_PAUSE).await,
        }
    }
}

/// Counts every report already received and not yet counted (a scrape sees every call that
/// ended before it).
pub fn drain(socket: &UnixDatagram, metrics: &Metrics) {
    let mut buf = vec![0u8; proto::MAX_REPORT + 1];
    while let Ok(n) = socket.try_recv(&mut buf) {
        count(&buf[..n], metrics);
    }
}

fn count(datagram: &[u8], metrics: &Metrics) {
    if proto::version_of(datagram).ok() != Some(proto::VERSION) {
        return;
    }
    if let Ok(r) = serde_json::from_slice::<Report>(datagram) {
        metrics.report(&r);
    }
}

/// The reply, whether the cache had what was asked for or time ran out.
fn either(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}
