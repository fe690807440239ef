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
use crate::engine::record::Record;
use crate::journal::is_valid_container_id;

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
    pub record: Result<(Value, Record), String>,
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

fn read_record(path: &Path) -> Result<(Value, Record), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    // The same version DEL would use: the newest line that is a record.
    let (line, rec) =
        crate::journal::newest_line::<Record>(&bytes).map_err(
            |e| match crate::journal::newest::<Value>(&bytes) {
                Ok(_) => format!("not a plexus journal record: {e}"),
                Err(_) => format!("not JSON: {e}"),
            },
        )?;
    let raw = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    Ok((raw, rec))
}

/// Runs `plexus inspect`.
pub fn run(args: InspectArgs) -> ExitCode {
    let dir = &args.cni_dir;
    let listing = match scan(dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            println!(
                "no journal directory at {}: plexus has not attached any container on this node \
                 (or cniDir is elsewhere: --cni-dir)",
                dir.display()
            );
            return if args.container_id.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(e) => {
            eprintln!("plexus inspect: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    match &args.container_id {
        None => list(&listing, args.json),
        Some(id) => one(&listing, id, dir, args.json),
    }
}

fn list(listing: &Listing, json: bool) -> ExitCode {
    if json {
        let all: Vec<&Value> = listing
            .records
            .iter()
            .filter_map(|j| j.record.as_ref().ok().map(|(raw, _)| raw))
            .collect();
        for j in &listing.records {
            if let Err(e) = &j.record {
                eprintln!("plexus inspect: {}: {e}", j.path.display());
            }
        }
        println!(
            "{}",
            pretty(&Value::from(all.into_iter().cloned().collect::<Vec<_>>()))
        );
    } else {
        print!("{}", show::table(listing));
    }
    ExitCode::SUCCESS
}

fn one(listing: &Listing, want: &str, dir: &Path, json: bool) -> ExitCode {
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
            let moved: Vec<&String> = listing
                .quarantined
                .iter()
                .filter(|q| q.starts_with(&format!("{want}.corrupt-")))
                .collect();
            if moved.is_empty() {
                eprintln!(
                    "plexus inspect: no journal for container {want:?} in {}",
                    dir.display()
                );
            } else {
                for q in moved {
                    eprintln!(
                        "plexus inspect: the journal of container {want:?} did not parse and was \
                         moved aside as {}",
                        dir.join(q).display()
                    );
                }
            }
            return ExitCode::FAILURE;
        }
        many => {
            eprintln!(
                "plexus inspect: {want:?} matches {} containers: {}",
                many.len(),
                many.iter()
                    .map(|j| j.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return ExitCode::FAILURE;
        }
    };
    match &j.record {
        Err(e) => {
            eprintln!("plexus inspect: {}: {e}", j.path.display());
            ExitCode::FAILURE
        }
        Ok((raw, _)) if json => {
            println!("{}", pretty(raw));
            ExitCode::SUCCESS
        }
        Ok((_, rec)) => {
            print!("{}", show::detail(rec, &j.path));
            ExitCode::SUCCESS
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}
