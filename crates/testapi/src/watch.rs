//! Lists and watches as kube-apiserver serves them: query parameters, field selectors, pages
//! (`limit`, `continue`), the event history a watch resumes from (`resourceVersion`), `410 Gone`
//! once that history is compacted, bookmarks, and the streaming body of a watch.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::status::{ApiStatus, Resource};

/// How many events a resource's history keeps; a watch from before the oldest kept one gets
/// `410 Gone`, as from a compacted etcd.
const HISTORY: usize = 20_000;

/// The query parameters of a list or watch.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Query {
    /// `watch=true` (or `1`).
    pub(crate) watch: bool,
    /// `resourceVersion`, when given and not empty.
    pub(crate) resource_version: Option<String>,
    /// `allowWatchBookmarks=true`.
    pub(crate) bookmarks: bool,
    /// `fieldSelector`.
    pub(crate) fields: Selector,
    /// `limit`, when more than 0.
    pub(crate) limit: Option<usize>,
    /// `continue`.
    pub(crate) continue_token: Option<String>,
}

impl Query {
    /// Parses a query string (without `?`) for `resource`.
    pub(crate) fn parse(query: &str, resource: Resource) -> Result<Query, ApiStatus> {
        let mut q = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match decode(key).as_str() {
                "watch" => q.watch = value == "true" || value == "1",
                "resourceVersion" if !value.is_empty() => q.resource_version = Some(value),
                "allowWatchBookmarks" => q.bookmarks = value == "true" || value == "1",
                "fieldSelector" => q.fields = Selector::parse(&value, resource)?,
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| ApiStatus::bad_request(format!("invalid limit {value:?}")))?;
                    q.limit = (n > 0).then_some(n);
                }
                "continue" if !value.is_empty() => q.continue_token = Some(value),
                "sendInitialEvents" if value == "true" => {
                    return Err(ApiStatus::bad_request(
                        "sendInitialEvents is not served by this test server",
                    ));
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Percent-decoding of a query component (`+` is a space, as form encoding writes it).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A field selector: `path=value`, `path==value` or `path!=value` terms joined by commas.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Selector {
    terms: Vec<(String, bool, String)>,
}

impl Selector {
    /// Parses a selector, refusing fields the API server does not index for `resource`.
    fn parse(s: &str, resource: Resource) -> Result<Selector, ApiStatus> {
        let supported: &[&str] = match resource {
            Resource::Pods => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            _ => &["metadata.name", "metadata.namespace"],
        };
        let mut terms = Vec::new();
        for term in s.split(',').filter(|t| !t.trim().is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiStatus::bad_request(format!(
                    "invalid field selector {s:?}: {term:?} has no operator"
                )));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(ApiStatus::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Selector { terms })
    }

    /// Whether `obj` matches (a missing field reads as empty, as the API server's do).
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, equal, want)| {
            let mut v = obj;
            for part in field.split('.') {
                v = &v[part];
            }
            let have = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == *want) == *equal
        })
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
struct Change {
    revision: u64,
    kind: &'static str,
    object: Value,
}

/// One open watch stream.
#[derive(Debug)]
struct Stream {
    namespace: Option<String>,
    fields: Selector,
    bookmarks: bool,
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Stream {
    fn wants(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.fields.matches(obj)
    }

    fn send(&self, kind: &str, object: &Value) -> bool {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).is_ok()
    }
}

/// The change history and open watches of one resource.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    history: VecDeque<Change>,
    /// A watch from a revision below this one has missed changes: `410 Gone`.
    floor: u64,
    streams: Vec<Stream>,
}

impl Watches {
    /// Records a change and sends it to every stream it concerns: `old` is the object before
    /// (`None` when created), `new` after (`None` when deleted, then `old` carries the deletion's
    /// revision). A change that moves an object into or out of a stream's selection is sent to
    /// that stream as ADDED or DELETED.
    pub(crate) fn record(&mut self, revision: u64, old: Option<&Value>, new: Option<&Value>) {
        let (kind, object) = match (old, new) {
            (None, Some(n)) => ("ADDED", n),
            (Some(_), Some(n)) => ("MODIFIED", n),
            (Some(o), None) => ("DELETED", o),
            (None, None) => return,
        };
        self.history.push_back(Change {
            revision,
            kind,
            object: object.clone(),
        });
        if self.history.len() > HISTORY
            && let Some(gone) = self.history.pop_front()
        {
            self.floor = gone.revision;
        }
        self.streams.retain(|s| {
            let was = old.is_some_and(|o| s.wants(o));
            let is = new.is_some_and(|n| s.wants(n));
            match (was, is) {
                (false, true) if kind == "MODIFIED" => s.send("ADDED", object),
                (true, false) if kind == "MODIFIED" => s.send("DELETED", object),
                (false, false) => !s.tx.is_closed(),
                _ => s.send(kind, object),
            }
        });
    }

    /// Opens a watch: `current` is every stored object of the resource (sent as ADDED when the
    /// watch starts from no revision or `0`); later changes follow as they happen.
    pub(crate) fn open(
        &mut self,
        resource: Resource,
        namespace: Option<&str>,
        query: &Query,
        current: &[&Value],
        revision: u64,
    ) -> WatchBody {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = Stream {
            namespace: namespace.map(str::to_owned),
            fields: query.fields.clone(),
            bookmarks: query.bookmarks,
            tx,
        };
        let from = query
            .resource_version
            .as_deref()
            .filter(|rv| *rv != "0")
            .map(|rv| rv.parse::<u64>().unwrap_or(0));
        match from {
            None => {
                for obj in current.iter().filter(|o| stream.wants(o)) {
                    stream.send("ADDED", obj);
                }
            }
            Some(rv) if rv < self.floor => {
                let status =
                    ApiStatus::gone(format!("too old resource version: {rv} ({})", self.floor));
                stream.send("ERROR", &status.to_json());
                return WatchBody { rx };
            }
            Some(rv) => {
                for c in self.history.iter().filter(|c| c.revision > rv) {
                    if stream.wants(&c.object) {
                        stream.send(c.kind, &c.object);
                    }
                }
            }
        }
        if stream.bookmarks {
            stream.send("BOOKMARK", &bookmark(resource, revision));
        }
        self.streams.push(stream);
        WatchBody { rx }
    }

    /// Ends every open stream (the server closing watches, as on an API server restart).
    pub(crate) fn drop_all(&mut self) {
        self.streams.clear();
    }

    /// Forgets the history: a watch resuming from any revision before `revision` gets `410`.
    pub(crate) fn compact(&mut self, revision: u64) {
        self.history.clear();
        self.floor = revision;
    }

    /// Sends a BOOKMARK at `revision` to every stream that allows bookmarks.
    pub(crate) fn bookmark(&mut self, resource: Resource, revision: u64) {
        let mark = bookmark(resource, revision);
        self.streams
            .retain(|s| !s.bookmarks || s.send("BOOKMARK", &mark));
    }

    /// Streams whose client is still there.
    pub(crate) fn open_count(&self) -> usize {
        self.streams.iter().filter(|s| !s.tx.is_closed()).count()
    }
}

/// A BOOKMARK's object: only the kind and the revision.
fn bookmark(resource: Resource, revision: u64) -> Value {
    json!({
        "apiVersion": resource.api_version(),
        "kind": resource.kind(),
        "metadata": {"resourceVersion": revision.to_string()},
    })
}

/// The body of a watch response: one JSON event per line, for as long as the watch is open.
#[derive(Debug)]
pub(crate) struct WatchBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// A page of a list: the items from `continue` on, at most `limit`, and the token of the next
/// page. Every page carries the revision of the first, so a watch from it misses nothing.
pub(crate) fn page<'a>(
    items: Vec<(&'a (String, String), &'a Value)>,
    query: &Query,
    revision: u64,
) -> Result<(Vec<&'a Value>, u64, Option<String>), ApiStatus> {
    let (revision, after) = match &query.continue_token {
        None => (revision, None),
        Some(token) => {
            let mut parts = token.splitn(3, '|');
            let rv = parts.next().and_then(|r| r.parse::<u64>().ok());
            match (rv, parts.next(), parts.next()) {
                (Some(rv), Some(ns), Some(name)) => (rv, Some((ns.to_owned(), name.to_owned()))),
                _ => {
                    return Err(ApiStatus::bad_request(format!(
                        "invalid continue token {token:?}"
                    )));
                }
            }
        }
    };
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|a| *key > a));
    let limit = query.limit.unwrap_or(usize::MAX);
    let taken: Vec<(&(String, String), &Value)> = rest.by_ref().take(limit).collect();
    let next = match (rest.next(), taken.last()) {
        (Some(_), Some(((ns, name), _))) => Some(format!("{revision}|{ns}|{name}")),
        _ => None,
    };
    Ok((taken.into_iter().map(|(_, v)| v).collect(), revision, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_table() {
        let rows: &[(&str, &str, Result<Query, u16>)] = &[
            ("empty", "", Ok(Query::default())),
            (
                "watch from a revision with bookmarks",
                "watch=true&resourceVersion=12&allowWatchBookmarks=true&timeoutSeconds=290",
                Ok(Query {
                    watch: true,
                    resource_version: Some("12".into()),
                    bookmarks: true,
                    ..Query::default()
                }),
            ),
            (
                "page",
                "limit=500&continue=3%7Cns%7Cp",
                Ok(Query {
                    limit: Some(500),
                    continue_token: Some("3|ns|p".into()),
                    ..Query::default()
                }),
            ),
            ("bad limit", "limit=x", Err(400)),
            (
                "unsupported field",
                "fieldSelector=spec.containers%3Dx",
                Err(400),
            ),
            ("streaming list", "sendInitialEvents=true", Err(400)),
        ];
        for (name, q, want) in rows {
            match (Query::parse(q, Resource::Pods), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{name}"),
                (Err(e), Err(code)) => assert_eq!(e.code, *code, "{name}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn selector_table() {
        let pod = json!({"metadata":{"name":"p","namespace":"ns"},"spec":{"nodeName":"n1"}});
        let rows = [
            ("node", "spec.nodeName%3Dn1", true),
            ("other node", "spec.nodeName=n2", false),
            ("double equals", "spec.nodeName==n1", true),
            ("not equal", "spec.nodeName!=n2", true),
            ("both", "spec.nodeName=n1,metadata.namespace=ns", true),
            ("one fails", "spec.nodeName=n1,metadata.namespace=x", false),
            ("missing field is empty", "status.phase=", true),
        ];
        for (name, q, want) in rows {
            let query = Query::parse(&format!("fieldSelector={q}"), Resource::Pods)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(query.fields.matches(&pod), want, "{name}");
        }
        assert_eq!(
            Query::parse("fieldSelector=spec.nodeName=n1", Resource::Nads).map_err(|e| e.code),
            Err(400),
            "a custom resource only has metadata fields"
        );
    }

    #[test]
    fn decode_table() {
        let rows = [
            ("plain", "abc", "abc"),
            ("escapes", "a%3Db%2Cc", "a=b,c"),
            ("plus", "a+b", "a b"),
            ("bad escape", "a%zz", "a%zz"),
            ("cut escape", "a%3", "a%3"),
        ];
        for (name, s, want) in rows {
            assert_eq!(decode(s), want, "{name}");
        }
    }
}
