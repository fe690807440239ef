//! `plexus inspect [CONTAINER_ID]`: what the journal holds, for an operator debugging a node.
//!
//! Read-only: it lists the journal directory and reads `<id>.json` files directly; it takes no
//! locks and creates nothing (the journal's own API creates the directory and lock files), so it
//! is safe to run while the runtime calls plexus. A record being rewritten is replaced whole by a
//! rename, so a read sees the old record or the new one.

mod show;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::config::DEFAULT_CNI_DIR;
use crate::journal::is_valid_container_id;
use crate::txn::Record;

/// Arguments of `plexus inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A container id (or a unique prefix of one): show its attachments. Without it, a table of
    /// every journaled container.
    #[arg(value_name = "CONTAINER_ID")]
    pub container_id: Option<String>,
    /// The journal directory (`cniDir` of plexus's config).
    #[arg(long = "cni-dir", value_name = "DIR", default_value = DEFAULT_CNI_DIR)]
    pub cni_dir: PathBuf,
    /// Print the raw journal record(s) as JSON instead.
    #[arg(long)]
    pub json: bool,
}

/// One `<id>.json` file: its raw JSON and the record, or why it cannot be read.
pub(crate) struct Journaled {
    /// The container id (from the file name).
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// The record as stored, and typed.
    pub record: Result<(Value, Record), RecordUnreadable>,
}

/// What the journal directory holds.
pub(crate) struct Listing {
    /// Records, sorted by container id.
    pub records: Vec<Journaled>,
    /// Quarantined records (`<id>.corrupt-<nanos>`), sorted by name.
    pub quarantined: Vec<String>,
}

/// Reads the journal directory; `None` when it does not exist.
pub(crate) fn scan(dir: &Path) -> io::Result<Option<Listing>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut listing = Listing {
        records: Vec::new(),
        quarantined: Vec::new(),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".json")
            && is_valid_container_id(id)
        {
            listing.records.push(Journaled {
                id: id.to_string(),
                path: entry.path(),
                record: read_record(&entry.path()),
            });
        } else if let Some((id, _)) = name.split_once(".corrupt-")
            && is_valid_container_id(id)
        {
            listing.quarantined.push(name);
        }
    }
    listing.records.sort_by(|a, b| a.id.cmp(&b.id));
    listing.quarantined.sort();
    Ok(Some(listing))
}

/// Why a journal file cannot be shown as a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordUnreadable {
    /// The file cannot be read.
    #[error("{0}")]
    Read(#[from] io::Error),
    /// No complete newest line.
    #[error("{0}")]
    Torn(#[from] crate::journal::Unreadable),
    /// The newest line is not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not a record plexus reads.
    #[error("{0}")]
    Record(#[from] crate::txn::RecordError),
}

fn read_record(path: &Path) -> Result<(Value, Record), RecordUnreadable> {
    let bytes = fs::read(path)?;
    // The same version DEL would use: the newest line, read as DEL reads it.
    let line = crate::journal::newest_line(&bytes)?;
    let raw = serde_json::from_slice(line)?;
    let rec = Record::decode(line)?;
    Ok((raw, rec))
}

/// Why `plexus inspect` cannot show what was asked.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The journal directory cannot be listed.
    #[error("cannot read {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// There is no journal directory, so no container can be shown.
    #[error(
        "no journal directory at {}: plexus has not attached any container on this node (or \
         cniDir is elsewhere: --cni-dir)",
        dir.display()
    )]
    NoDir {
        /// The directory.
        dir: PathBuf,
    },
    /// No record for that id.
    #[error("no journal for container {id:?} in {}", dir.display())]
    NotFound {
        /// The id asked for.
        id: String,
        /// The journal directory.
        dir: PathBuf,
    },
    /// The record of that id did not parse and was quarantined.
    #[error(
        "the journal of container {id:?} did not parse and was moved aside as {}",
        moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Quarantined {
        /// The id asked for.
        id: String,
        /// The quarantined files.
        moved: Vec<PathBuf>,
    },
    /// A prefix matching several containers.
    #[error("{id:?} matches {} containers: {}", ids.len(), ids.join(", "))]
    Ambiguous {
        /// The prefix asked for.
        id: String,
        /// The ids it matches.
        ids: Vec<String>,
    },
    /// The record exists but cannot be read as one.
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The record's file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Runs `plexus inspect`. With `--json`, stdout is JSON in every case: the records (an empty
/// list without a journal), the record asked for, or `{"error": MESSAGE}` with exit 1 (the
/// message also goes to stderr, as without `--json`).
pub fn run(args: InspectArgs) -> ExitCode {
    match inspect(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plexus inspect: {e}");
            if args.json {
                println!("{}", pretty(&serde_json::json!({ "error": e.to_string() })));
            }
            ExitCode::FAILURE
        }
    }
}

/// What `plexus inspect` prints on success.
fn inspect(args: &InspectArgs) -> Result<String, InspectError> {
    let dir = &args.cni_dir;
    let listing = match scan(dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            let missing = InspectError::NoDir { dir: dir.clone() };
            return match (&args.container_id, args.json) {
                (Some(_), _) => Err(missing),
                (None, true) => Ok(format!("{}\n", pretty(&Value::Array(Vec::new())))),
                (None, false) => Ok(format!("{missing}\n")),
            };
        }
        Err(source) => {
            return Err(InspectError::ReadDir {
                dir: dir.clone(),
                source,
            });
        }
    };
    match &args.container_id {
        None => Ok(list(&listing, args.json)),
        Some(id) => one(&listing, id, dir, args.json),
    }
}

fn list(listing: &Listing, json: bool) -> String {
    if !json {
        return show::table(listing);
    }
    let mut all = Vec::new();
    for j in &listing.records {
        match &j.record {
            Ok((raw, _)) => all.push(raw.clone()),
            // Not a record: named on stderr, so the list stays a list of records.
            Err(e) => eprintln!("plexus inspect: {}: {e}", j.path.display()),
        }
    }
    format!("{}\n", pretty(&Value::Array(all)))
}

fn one(listing: &Listing, want: &str, dir: &Path, json: bool) -> Result<String, InspectError> {
    let exact = listing.records.iter().find(|j| j.id == want);
    let candidates: Vec<&Journaled> = match exact {
        Some(j) => vec![j],
        None => listing
            .records
            .iter()
            .filter(|j| j.id.starts_with(want))
            .collect(),
    };
    let j = match candidates.as_slice() {
        [j] => *j,
        [] => {
            let moved: Vec<PathBuf> = listing
                .quarantined
                .iter()
                .filter(|q| q.starts_with(&format!("{want}.corrupt-")))
                .map(|q| dir.join(q))
                .collect();
            return Err(if moved.is_empty() {
                InspectError::NotFound {
                    id: want.to_string(),
                    dir: dir.to_path_buf(),
                }
            } else {
                InspectError::Quarantined {
                    id: want.to_string(),
                    moved,
                }
            });
        }
        many => {
            return Err(InspectError::Ambiguous {
                id: want.to_string(),
                ids: many.iter().map(|j| j.id.clone()).collect(),
            });
        }
    };
    match &j.record {
        Err(reason) => Err(InspectError::Unreadable {
            path: j.path.clone(),
            reason: reason.to_string(),
        }),
        Ok((raw, _)) if json => Ok(format!("{}\n", pretty(raw))),
        Ok((_, rec)) => Ok(show::detail(rec, &j.path)),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}
