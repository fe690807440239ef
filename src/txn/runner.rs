//! The one runner of steps. ADD starts every step whose schedule allows it, up to a bound on
//! concurrency, journals each outcome, and on the first failure kills what is still running;
//! release (DEL and rollback) walks the same schedule backwards. Each step runs on a thread of
//! its own that waits for its delegate (a delegate dies with the thread that spawned it).

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use super::Txn;
use super::observe::{NoObserver, Observer};
use super::record::{Record, State, Step};
use crate::cni::conf::ConfList;
use crate::cni::env::Command;
use crate::cni::result::CniResult;
use crate::delegate::list::{self, PluginFailure};
use crate::delegate::{Cancel, DelegateError, Executor, Invocation};
use crate::error::{DelegateFailure, Error};
use crate::journal::JournalError;

/// Runs the steps of one container's transaction.
pub struct Runner<'a> {
    exec: &'a dyn Executor,
    container_id: &'a str,
    limit: usize,
    cancel: Cancel,
    observer: &'a dyn Observer,
}

/// What may extend an ADD while its first steps run: the resolution of the pod.
#[derive(Debug)]
pub enum Extension<T> {
    /// The pod's plan starts with the steps already in the record: these steps follow them.
    Append(Vec<Step>, T),
    /// The pod's plan does not start with what was started (it overrides its default network):
    /// stop, roll back, run it from the start.
    Replan(T),
}

/// Why an ADD run stopped before every step was added.
#[derive(Debug)]
pub enum Stop<T> {
    /// The first step whose ADD failed.
    Delegate {
        /// Its index.
        step: usize,
        /// How.
        failure: PluginFailure,
    },
    /// The record could not be written.
    Journal(JournalError),
    /// Resolving the pod failed.
    Extend(Error),
    /// The pod's plan differs from what was started.
    Replan(T),
}

/// An ADD run that stopped: why, and which steps it started (every one to roll back).
#[derive(Debug)]
pub struct Stopped<T> {
    /// Why.
    pub cause: Stop<T>,
    /// The steps started, in index order.
    pub started: Vec<usize>,
}

/// The extension work, run on a thread of its own beside the steps.
pub type Extend<'e, T> = Box<dyn FnOnce() -> Result<Extension<T>, Error> + Send + 'e>;

enum Msg<T> {
    Added(usize, Result<Value, PluginFailure>),
    Extended(Result<Extension<T>, Error>),
    Synced(Result<(), JournalError>),
    Released(usize, Vec<PluginFailure>),
    /// A thread panicked before answering (only where panics unwind: tests).
    Panicked,
}

/// Sends `msg` from a runner thread; if the thread panics first, tells the coordinator so it
/// panics too instead of waiting forever (the panic then reaches the caller).
struct Reply<T> {
    tx: Option<mpsc::Sender<Msg<T>>>,
}

impl<T> Reply<T> {
    fn new(tx: &mpsc::Sender<Msg<T>>) -> Reply<T> {
        Reply {
            tx: Some(tx.clone()),
        }
    }

    fn send(mut self, msg: Msg<T>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(msg);
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Panicked);
        }
    }
}

/// What a message changed in an ADD run (ordered: the strongest wins when several arrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    /// Nothing to journal.
    None,
    /// An outcome to journal.
    Dirty,
    /// Steps appended: to journal before they start, and to make durable.
    Appended,
}

/// The state of one ADD run.
struct AddRun<'r, T> {
    rec: &'r mut Record,
    started: Vec<bool>,
    stop: Option<Stop<T>>,
    carried: Option<T>,
    running: usize,
    awaiting: usize,
}

impl<T> AddRun<'_, T> {
    /// Stops the run at its first failure: what runs is killed, nothing else starts.
    fn fail(&mut self, cancel: &Cancel, why: Stop<T>) {
        if self.stop.is_none() {
            cancel.cancel();
            self.stop = Some(why);
        }
    }

    fn more_to_run(&self) -> bool {
        self.running > 0 || self.awaiting > 0 || self.started.iter().any(|s| !s)
    }

    fn handle(&mut self, msg: Msg<T>, cancel: &Cancel) -> Effect {
        match msg {
            Msg::Added(i, Ok(result)) => {
                self.running -= 1;
                self.rec.steps[i].state = State::Added;
                self.rec.steps[i].result = Some(result);
                return Effect::Dirty;
            }
            Msg::Added(i, Err(failure)) => {
                self.running -= 1;
                self.rec.steps[i].state = State::AddFailed;
                self.rec.steps[i].error = Some(failure.to_string());
                self.fail(cancel, Stop::Delegate { step: i, failure });
            }
            Msg::Extended(Ok(Extension::Append(steps, t))) => {
                self.awaiting -= 1;
                self.carried = Some(t);
                if self.stop.is_none() {
                    self.rec.steps.extend(steps);
                    self.started.resize(self.rec.steps.len(), false);
                    return Effect::Appended;
                }
            }
            Msg::Extended(Ok(Extension::Replan(t))) => {
                self.awaiting -= 1;
                // What runs finishes (and is rolled back); nothing else starts.
                self.stop.get_or_insert(Stop::Replan(t));
            }
            Msg::Extended(Err(e)) => {
                self.awaiting -= 1;
                self.fail(cancel, Stop::Extend(e));
            }
            Msg::Synced(r) => {
                self.awaiting -= 1;
                if let Err(e) = r {
                    self.fail(cancel, Stop::Journal(e));
                }
            }
            Msg::Released(..) | Msg::Panicked => panic!("a step thread panicked"),
        }
        Effect::None
    }
}

/// What one step needs on its thread (owned: the record keeps changing meanwhile).
struct Job {
    index: usize,
    step: Step,
}

impl<'a> Runner<'a> {
    /// A runner with at most `limit` steps in flight (at least 1).
    pub fn new(exec: &'a dyn Executor, container_id: &'a str, limit: usize) -> Runner<'a> {
        Runner {
            exec,
            container_id,
            limit: limit.max(1),
            cancel: Cancel::new(),
            observer: &NoObserver,
        }
    }

    /// The same runner, telling `observer` about every delegate call.
    pub fn observed(mut self, observer: &'a dyn Observer) -> Runner<'a> {
        self.observer = observer;
        self
    }

    /// ADDs every pending step of `txn` in the pod's namespace `netns`, each once the steps it
    /// waits for are added. `extend`, if given, runs beside the first steps and may append the
    /// rest of the plan (written to the journal before any of them starts, and made durable on
    /// another thread meanwhile). With `sync_now`, the record as it is is made durable on
    /// another thread while the steps run. Each outcome is journaled while anything is left to
    /// run; the caller writes the final record. Returns once everything it started, the
    /// extension and the syncs are done.
    ///
    /// # Errors
    /// [`Stopped`] at the first failure, after every step still running was killed and
    /// waited for: the steps it started are the ones to roll back.
    pub fn add<T: Send>(
        &self,
        txn: &mut Txn<'_>,
        netns: &str,
        extend: Option<Extend<'_, T>>,
        sync_now: bool,
    ) -> Result<Option<T>, Box<Stopped<T>>> {
        let held = &*txn.held;
        let mut run = AddRun {
            started: vec![false; txn.rec.steps.len()],
            rec: &mut txn.rec,
            stop: None,
            carried: None,
            running: 0,
            awaiting: 0,
        };
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel::<Msg<T>>();
            let sync = |run: &mut AddRun<'_, T>| {
                let reply = Reply::new(&tx);
                run.awaiting += 1;
                s.spawn(move || reply.send(Msg::Synced(held.sync())));
            };
            if let Some(f) = extend {
                let reply = Reply::new(&tx);
                run.awaiting += 1;
                s.spawn(move || reply.send(Msg::Extended(f())));
            }
            if sync_now {
                sync(&mut run);
            }
            loop {
                // With a bound of one, the step runs on this thread: no hop to another thread
                // and back (each a wake-up, milliseconds on a loaded node), and the delegate is
                // the child of the thread that waits for it. Messages of the extension and of
                // the syncs queue meanwhile and are handled right after.
                let mut effect = Effect::None;
                if run.stop.is_none() {
                    let room = self.limit - run.running;
                    let mut next = ready(run.rec, &run.started, room).into_iter().peekable();
                    if self.limit == 1
                        && let Some(index) = next.next()
                    {
                        run.started[index] = true;
                        run.running += 1;
                        let job = Job {
                            index,
                            step: run.rec.steps[index].clone(),
                        };
                        let outcome = self.add_one(&job, netns);
                        effect = run.handle(Msg::Added(index, outcome), &self.cancel);
                    }
                    for index in next {
                        run.started[index] = true;
                        run.running += 1;
                        let job = Job {
                            index,
                            step: run.rec.steps[index].clone(),
                        };
                        let reply = Reply::new(&tx);
                        s.spawn(move || {
                            reply.send(Msg::Added(job.index, self.add_one(&job, netns)));
                        });
                    }
                }
                if effect == Effect::None {
                    // Done when nothing runs and nothing more can come (a stopped run does not
                    // wait for the extension: the scope joins its thread, whose answer is
                    // dropped).
                    if run.running == 0 && (run.awaiting == 0 || run.stop.is_some()) {
                        break;
                    }
                    let Ok(msg) = rx.recv() else { break };
                    effect = run.handle(msg, &self.cancel);
                }
                // Outcomes that arrived together are journaled together.
                while let Ok(more) = rx.try_recv() {
                    effect = effect.max(run.handle(more, &self.cancel));
                }
                if effect == Effect::None || run.stop.is_some() {
                    continue;
                }
                // New steps are named on disk before any of them starts (and made durable
                // meanwhile); outcomes are journaled while anything is left to run.
                if effect == Effect::Dirty && !run.more_to_run() {
                    continue;
                }
                match super::write(held, run.rec) {
                    Ok(()) if effect == Effect::Appended => sync(&mut run),
                    Ok(()) => {}
                    Err(e) => run.fail(&self.cancel, Stop::Journal(e)),
                }
            }
        });
        match run.stop {
            None => Ok(run.carried),
            Some(cause) => Err(Box::new(Stopped {
                cause,
                started: (0..run.started.len()).filter(|&i| run.started[i]).collect(),
            })),
        }
    }

    /// The step's stored config and the environment of one of its calls.
    fn call<'j>(
        &'j self,
        job: &'j Job,
        command: Command,
        netns: &'j str,
    ) -> Result<(ConfList, Invocation<'j>), PluginFailure> {
        let conf = job.step.conf_list().ok_or_else(|| PluginFailure {
            plugin: job.step.types(),
            source: DelegateError::Unusable,
        })?;
        let inv = Invocation {
            command,
            container_id: self.container_id,
            netns,
            ifname: &job.step.ifname,
            args: &job.step.cni_args,
            // Only an ADD is stopped early; a DEL always runs to its end.
            cancel: (command == Command::Add).then_some(&self.cancel),
        };
        Ok((conf, inv))
    }

    fn add_one(&self, job: &Job, netns: &str) -> Result<Value, PluginFailure> {
        let (conf, inv) = self.call(job, Command::Add, netns)?;
        let start = Instant::now();
        let r = list::add(self.exec, &conf, &inv, &job.step.runtime_config).map(|(v, _)| v);
        self.observer
            .step(Command::Add, &job.step, start.elapsed(), r.is_ok());
        r
    }

    /// Releases (DELs) steps `which` of `rec`, backwards through the schedule: a step once every
    /// step in `which` that waited for it is released (whatever the outcome), up to the
    /// concurrency bound. Marks each [`State::Released`] or [`State::ReleaseFailed`] and
    /// returns every failure. `netns` may be empty (the pod's namespace is gone).
    pub fn release(&self, rec: &mut Record, which: &[usize], netns: &str) -> Vec<DelegateFailure> {
        let which: BTreeSet<usize> = which
            .iter()
            .copied()
            .filter(|&i| i < rec.steps.len())
            .collect();
        let mut done: BTreeSet<usize> = BTreeSet::new();
        let mut started: BTreeSet<usize> = BTreeSet::new();
        let mut failures = Vec::new();
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel::<Msg<()>>();
            let mut running = 0usize;
            loop {
                let ready: Vec<usize> = which
                    .iter()
                    .rev()
                    .copied()
                    .filter(|i| !started.contains(i))
                    .filter(|&j| {
                        which
                            .iter()
                            .filter(|&&i| rec.steps[i].after.contains(&j))
                            .all(|i| done.contains(i))
                    })
                    .take(self.limit - running)
                    .collect();
                let mut inline = None;
                for i in ready {
                    started.insert(i);
                    running += 1;
                    let job = Job {
                        index: i,
                        step: rec.steps[i].clone(),
                    };
                    // One at a time: on this thread (see `add`).
                    if self.limit == 1 {
                        inline = Some((i, self.release_one(&job, netns)));
                        break;
                    }
                    let reply = Reply::new(&tx);
                    s.spawn(move || {
                        reply.send(Msg::Released(job.index, self.release_one(&job, netns)))
                    });
                }
                if running == 0 {
                    break;
                }
                let (i, errs) = match inline {
                    Some(done) => done,
                    None => match rx.recv() {
                        Ok(Msg::Released(i, errs)) => (i, errs),
                        Ok(_) => panic!("a release thread panicked"),
                        Err(_) => break,
                    },
                };
                running -= 1;
                done.insert(i);
                let step = &mut rec.steps[i];
                if errs.is_empty() {
                    step.state = State::Released;
                    step.error = None;
                } else {
                    step.state = State::ReleaseFailed;
                    step.error = Some(
                        errs.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                failures.extend(
                    errs.into_iter()
                        .map(|f| DelegateFailure::of_step(Command::Del, step, f)),
                );
            }
        });
        failures
    }

    fn release_one(&self, job: &Job, netns: &str) -> Vec<PluginFailure> {
        let (conf, inv) = match self.call(job, Command::Del, netns) {
            Ok(c) => c,
            Err(f) => return vec![f],
        };
        let start = Instant::now();
        let failures = list::del(
            self.exec,
            &conf,
            &inv,
            &job.step.runtime_config,
            job.step.result.as_ref(),
        );
        self.observer.step(
            Command::Del,
            &job.step,
            start.elapsed(),
            failures.is_empty(),
        );
        failures
    }

    /// Rolls back an ADD run that stopped: releases every step it started, and marks the steps
    /// it never started released (nothing of them exists).
    pub fn roll_back(
        &self,
        rec: &mut Record,
        started: &[usize],
        netns: &str,
    ) -> Vec<DelegateFailure> {
        for (i, s) in rec.steps.iter_mut().enumerate() {
            if !started.contains(&i) && s.state == State::Pending {
                s.state = State::Released;
            }
        }
        self.release(rec, started, netns)
    }
}

/// Steps that can start now: pending, not started, every step they wait for added; at most
/// `room` of them, in index order.
fn ready(rec: &Record, started: &[bool], room: usize) -> Vec<usize> {
    (0..rec.steps.len())
        .filter(|&i| !started[i] && rec.steps[i].state == State::Pending)
        .filter(|&i| {
            rec.steps[i]
                .after
                .iter()
                .all(|&j| rec.steps.get(j).is_some_and(|d| d.state == State::Added))
        })
        .take(room)
        .collect()
}

/// The parsed result of a step, in its config's version.
pub fn parsed_result(step: &Step) -> Option<CniResult> {
    let conf = step.conf_list()?;
    CniResult::from_value(step.result.as_ref()?, &conf.cni_version).ok()
}
