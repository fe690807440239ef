//! The journal record of one container: the attach transaction itself. Each attachment is a
//! [`Step`] carrying its own state; the record on disk *is* the list of steps, so ADD, rollback,
//! DEL, GC, CHECK (and later hot-plug) read and write one type.
//!
//! Records are versioned data: [`Record::decode`] reads every format plexus has written
//! (`format` 1 from plexus 0.1.0, `format` 2 since) and never re-judges a stored delegate config
//! by today's rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::conf::ConfList;
use crate::plan::{Attachment, Origin};

/// The record format this release writes.
pub const FORMAT: u32 = 2;

/// The pod a record belongs to (from `CNI_ARGS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodId {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, when the runtime sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The journal record of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Record format version ([`FORMAT`]).
    pub format: u32,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` at ADD time.
    pub netns: String,
    /// The runtime's `CNI_IFNAME`.
    pub ifname: String,
    /// The runtime's `CNI_ARGS`.
    pub cni_args: String,
    /// The pod, when the call was for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodId>,
    /// When the record was created (Unix seconds; 0 when unknown).
    #[serde(default)]
    pub created: u64,
    /// True once ADD has succeeded as a whole.
    pub complete: bool,
    /// The attachments, in plan order.
    pub steps: Vec<Step>,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Named before it runs; it may have started (a crash leaves it so), so DEL releases it.
    Pending,
    /// ADD succeeded; the step's result is cached.
    Added,
    /// ADD failed; the plugin may have left something, so DEL releases it.
    AddFailed,
    /// DELeted cleanly; nothing left.
    Released,
    /// DEL failed; the next DEL retries it (`error` says why).
    ReleaseFailed,
}

/// One attachment of the pod and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The network's name as network-status shows it.
    pub network: String,
    /// The interface in the pod.
    pub ifname: String,
    /// Where the network came from.
    pub origin: Origin,
    /// The delegate config, as run.
    pub conf: Value,
    /// `runtimeConfig` as given to the delegate.
    #[serde(default)]
    pub runtime_config: Map<String, Value>,
    /// `CNI_ARGS` given to this step's delegates.
    #[serde(default)]
    pub cni_args: String,
    /// Gateways this interface carries the default route for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_route: Vec<String>,
    /// The schedule: the steps (indexes) whose ADD must be done before this one starts. DEL
    /// runs it backwards: a step is DELeted once every step that waited for it is.
    #[serde(default)]
    pub after: Vec<usize>,
    /// Where it stands.
    pub state: State,
    /// The delegate's ADD result (in the delegate's version), once it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The last failure met by this step (ADD or DEL), for `plexus inspect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Step {
    /// A pending step for an attachment of the plan, waiting for `after`.
    pub fn new(a: &Attachment, after: Vec<usize>) -> Step {
        Step {
            network: a.network.clone(),
            ifname: a.ifname.clone(),
            origin: a.origin,
            conf: a.conf.to_value(),
            runtime_config: a.runtime_config.clone(),
            cni_args: a.cni_args.clone(),
            default_route: a.default_route.clone(),
            after,
            state: State::Pending,
            result: None,
            error: None,
        }
    }

    /// The stored config as delegates get it, read without today's validation; `None` when it
    /// has no usable shape (then the step cannot be run and stays for the operator).
    pub fn conf_list(&self) -> Option<ConfList> {
        ConfList::from_stored(&self.conf, &self.network)
    }

    /// True when the step may have left something in the pod or the node that DEL must release.
    pub fn needs_release(&self) -> bool {
        self.state != State::Released
    }

    /// True for the cluster network's step.
    pub fn is_cluster(&self) -> bool {
        self.origin == Origin::Cluster
    }

    /// The plugin types of the step's config (for messages), `?` when unknown.
    pub fn types(&self) -> String {
        self.conf_list()
            .map(|c| c.types())
            .unwrap_or_else(|| "?".into())
    }

    /// True when this step is the one that `a` would create (same network, interface and
    /// delegate parameters).
    pub fn is_for(&self, a: &Attachment) -> bool {
        self.network == a.network
            && self.ifname == a.ifname
            && self.conf == a.conf.to_value()
            && self.runtime_config == a.runtime_config
            && self.cni_args == a.cni_args
    }
}

/// Why a stored record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a record of any format plexus knows.
    #[error("not a plexus record: {0}")]
    Decode(String),
    /// A format newer than this release reads.
    #[error("record format {0} is newer than this plexus reads (up to {FORMAT})")]
    Format(u32),
    /// A step names a schedule dependency that is not an earlier step.
    #[error("step {step} waits for step {after}, which is not an earlier step")]
    Schedule {
        /// The step.
        step: usize,
        /// The bad dependency.
        after: usize,
    },
}

impl Record {
    /// A record for a container before anything ran.
    pub fn new(
        container_id: &str,
        netns: &str,
        ifname: &str,
        cni_args: &str,
        pod: Option<PodId>,
        created: u64,
    ) -> Record {
        Record {
            format: FORMAT,
            container_id: container_id.to_string(),
            netns: netns.to_string(),
            ifname: ifname.to_string(),
            cni_args: cni_args.to_string(),
            pod,
            created,
            complete: false,
            steps: Vec::new(),
        }
    }

    /// The record as one journal line.
    ///
    /// # Errors
    /// Only if a value cannot be serialised (never for values read from JSON).
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a journal line of any format plexus has written.
    ///
    /// # Errors
    /// [`RecordError`] when it is not a record, or one from a newer plexus.
    pub fn decode(line: &[u8]) -> Result<Record, RecordError> {
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe =
            serde_json::from_slice(line).map_err(|e| RecordError::Decode(e.to_string()))?;
        let rec = match probe.format {
            1 => super::legacy::decode_v1(line)?,
            FORMAT => {
                serde_json::from_slice(line).map_err(|e| RecordError::Decode(e.to_string()))?
            }
            n => return Err(RecordError::Format(n)),
        };
        rec.check_schedule()?;
        Ok(rec)
    }

    /// Every dependency names an earlier step (so DEL's reverse order exists).
    fn check_schedule(&self) -> Result<(), RecordError> {
        for (i, s) in self.steps.iter().enumerate() {
            if let Some(&after) = s.after.iter().find(|&&a| a >= i) {
                return Err(RecordError::Schedule { step: i, after });
            }
        }
        Ok(())
    }

    /// Indexes of the steps DEL still has to release.
    pub fn unreleased(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].needs_release())
            .collect()
    }

    /// True when no step is left to release.
    pub fn all_released(&self) -> bool {
        self.steps.iter().all(|s| !s.needs_release())
    }

    /// True when a DEL of some step failed (a rollback, the runtime's DEL, or the rollback of
    /// a hot-plug addition in a complete record) and the step waits for the next DEL or
    /// hot-plug pass: `plexus inspect` shows it `stuck`, the agent counts it.
    pub fn is_stuck(&self) -> bool {
        self.steps.iter().any(|s| s.state == State::ReleaseFailed)
    }

    /// The attachments this record says are in the pod now, in plan order: the one rule for
    /// what network-status lists, what CHECK and the agent's health rounds check and what the
    /// agent counts as a pod's interfaces.
    ///
    /// A step is attached when its record is complete (the runtime's ADD succeeded) and the
    /// step is [`State::Added`]. Nothing else is: a record that is not complete is an ADD still
    /// running or one being rolled back (the runtime was or will be told it failed); a pending
    /// or failed step is a hot-plug addition that never finished; a released one is gone; one
    /// whose DEL failed is on its way out (a hot-plug addition whose rollback failed, kept only
    /// for the next DEL or hot-plug pass to release). A hot-plug removal whose DEL fails puts
    /// its step back to [`State::Added`]: that network is still the pod's and stays listed.
    pub fn attached(&self) -> impl Iterator<Item = &Step> + '_ {
        self.steps.iter().filter(|s| self.holds(s))
    }

    /// Indexes of the steps left over by an interrupted or failed change: the steps still to
    /// release that are not [`attached`](Self::attached) (in a complete record, what a hot-plug
    /// pass started and did not finish; in an incomplete one, every unreleased step).
    pub fn leftover(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].needs_release() && !self.holds(&self.steps[i]))
            .collect()
    }

    /// The rule of [`attached`](Self::attached) for one of this record's steps.
    fn holds(&self, step: &Step) -> bool {
        self.complete && step.state == State::Added
    }

    /// The cluster network's step (the first), if any.
    pub fn cluster(&self) -> Option<&Step> {
        self.steps.first().filter(|s| s.is_cluster())
    }

    /// Drops the released steps of a record that lives on (a network removed from a running
    /// pod), renumbering the schedule: a step that waited for a dropped step waits for what
    /// that one waited for.
    pub fn compact(&mut self) {
        let keep: Vec<bool> = self.steps.iter().map(Step::needs_release).collect();
        // What each step waits for, through dropped steps, in old indexes.
        let mut through: Vec<Vec<usize>> = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let mut deps = Vec::new();
            for &a in &s.after {
                if keep.get(a) == Some(&true) {
                    deps.push(a);
                } else if let Some(inherited) = through.get(a) {
                    deps.extend(inherited.iter().copied());
                }
            }
            deps.sort_unstable();
            deps.dedup();
            through.push(deps);
        }
        let mut new_index = vec![usize::MAX; self.steps.len()];
        let mut n = 0;
        for (i, k) in keep.iter().enumerate() {
            if *k {
                new_index[i] = n;
                n += 1;
            }
        }
        let steps = std::mem::take(&mut self.steps);
        self.steps = steps
            .into_iter()
            .zip(through)
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|((mut s, deps), _)| {
                s.after = deps.into_iter().map(|a| new_index[a]).collect();
                s
            })
            .collect();
    }
}

#[cfg(test)]
pub mod sample;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attached_is_the_added_steps_of_a_complete_record() {
        // (complete, state of net1) -> (attached interfaces, leftover indexes)
        for complete in [true, false] {
            for state in sample::STATES {
                let r = sample::record("c", "/n", complete, state);
                let attached: Vec<&str> = r.attached().map(|s| s.ifname.as_str()).collect();
                let (want_attached, want_leftover): (Vec<&str>, Vec<usize>) =
                    match (complete, state) {
                        (true, State::Added) => (vec!["eth0", "net1"], vec![]),
                        (true, State::Released) => (vec!["eth0"], vec![]),
                        (true, _) => (vec!["eth0"], vec![1]),
                        (false, State::Released) => (vec![], vec![0]),
                        (false, _) => (vec![], vec![0, 1]),
                    };
                let row = format!("complete {complete}, net1 {state:?}");
                assert_eq!(attached, want_attached, "{row}");
                assert_eq!(r.leftover(), want_leftover, "{row}");
                // A failed DEL is stuck whether or not the record is complete (a hot-plug
                // addition's failed rollback lives in a complete one).
                assert_eq!(r.is_stuck(), state == State::ReleaseFailed, "{row}");
            }
        }
    }

    #[test]
    fn decode_table() {
        let v2 = json!({"format":2,"containerId":"c","netns":"/n","ifname":"eth0","cniArgs":"",
            "complete":true,"steps":[
              {"network":"a","ifname":"eth0","origin":"cluster","conf":{},"after":[],"state":"added"},
              {"network":"b","ifname":"net1","origin":"selected","conf":{},"after":[0],"state":"pending"}]});
        let mut bad_after = v2.clone();
        bad_after["steps"][0]["after"] = json!([1]);
        let rows: Vec<(&str, Vec<u8>, Result<usize, &str>)> = vec![
            ("format 2", v2.to_string().into_bytes(), Ok(2)),
            ("future format", br#"{"format":3}"#.to_vec(), Err("newer")),
            (
                "no format",
                br#"{"steps":[]}"#.to_vec(),
                Err("not a plexus record"),
            ),
            (
                "garbage",
                b"\x00garbage".to_vec(),
                Err("not a plexus record"),
            ),
            (
                "forward dependency",
                bad_after.to_string().into_bytes(),
                Err("waits for step 1"),
            ),
        ];
        for (name, line, want) in rows {
            match (Record::decode(&line), want) {
                (Ok(r), Ok(n)) => assert_eq!(r.steps.len(), n, "{name}"),
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn compact_drops_released_steps_and_keeps_the_schedule() {
        let step = |network: &str, after: &[usize], state: State| Step {
            network: network.into(),
            ifname: network.into(),
            origin: Origin::Selected,
            conf: json!({}),
            runtime_config: Map::new(),
            cni_args: String::new(),
            default_route: vec![],
            after: after.to_vec(),
            state,
            result: None,
            error: None,
        };
        let mut r = Record::new("c", "/n", "eth0", "", None, 0);
        r.steps = vec![
            step("a", &[], State::Added),
            step("b", &[0], State::Released),
            step("c", &[1], State::Added),
            step("d", &[2], State::Released),
            step("e", &[3, 0], State::Pending),
        ];
        r.compact();
        let got: Vec<(&str, Vec<usize>)> = r
            .steps
            .iter()
            .map(|s| (s.network.as_str(), s.after.clone()))
            .collect();
        assert_eq!(got, [("a", vec![]), ("c", vec![0]), ("e", vec![0, 1])]);
        r.check_schedule().unwrap();
    }

    #[test]
    fn a_stored_config_is_not_judged_by_todays_rules() {
        // A cniVersion this release does not speak and a plugin name it would refuse today:
        // still a usable step (the executor refuses to run a non-plain name on its own).
        let s: Step = serde_json::from_value(json!({"network":"n","ifname":"net1",
            "origin":"selected","conf":{"cniVersion":"9.9.9","name":"n","type":"future-plugin",
            "someNewField":1},"state":"added"}))
        .unwrap();
        let c = s.conf_list().expect("usable");
        assert_eq!(c.types(), "future-plugin");
        assert_eq!(c.cni_version, "9.9.9");
        let shapeless: Step = serde_json::from_value(json!({"network":"n","ifname":"net1",
            "origin":"selected","conf":"not an object","state":"added"}))
        .unwrap();
        assert!(shapeless.conf_list().is_none());
    }
}
