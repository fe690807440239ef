//! Samples per contestant and their summaries (median, p90, max), as table cells and JSON.

use serde_json::{Value, json};

use crate::cni::{Step, Who};

/// Order statistics of a set of timings, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Summary {
    /// Median (mean of the middle two for an even count), p90 by nearest rank, max.
    pub fn of(v: &[f64]) -> Summary {
        if v.is_empty() {
            return Summary::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
        Summary {
            n,
            median,
            p90: s[rank - 1],
            max: s[n - 1],
        }
    }

    pub fn json(&self) -> Value {
        json!({"samples":self.n,"median_ms":round(self.median),"p90_ms":round(self.p90),
               "max_ms":round(self.max)})
    }
}

/// Median of the per-cycle differences `a[i] - b[i]`: contestants of one cycle run back to
/// back, so this cancels load that drifts between cycles better than a difference of medians.
pub fn paired(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    Summary::of(&d).median
}

/// Two decimals are plenty for milliseconds and KiB ratios.
pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Everything measured for one contestant in one scenario.
#[derive(Debug, Clone)]
pub struct Series {
    pub who: Who,
    pub add: Vec<f64>,
    pub del: Vec<f64>,
    pub add_requests: Vec<usize>,
    pub del_requests: Vec<usize>,
    /// wait4 `ru_maxrss` (KiB) of each ADD and of each DEL.
    pub maxrss_add_kb: Vec<i64>,
    pub maxrss_del_kb: Vec<i64>,
    /// plexus's own `VmHWM` at exit (KiB), from the traced runs.
    pub own_hwm_add_kb: Vec<i64>,
    pub own_hwm_del_kb: Vec<i64>,
    /// The requests of the last ADD and DEL, for the record.
    pub add_request_list: Vec<String>,
    pub del_request_list: Vec<String>,
}

impl Series {
    pub fn new(who: Who) -> Series {
        Series {
            who,
            add: Vec::new(),
            del: Vec::new(),
            add_requests: Vec::new(),
            del_requests: Vec::new(),
            maxrss_add_kb: Vec::new(),
            maxrss_del_kb: Vec::new(),
            own_hwm_add_kb: Vec::new(),
            own_hwm_del_kb: Vec::new(),
            add_request_list: Vec::new(),
            del_request_list: Vec::new(),
        }
    }

    /// Records one timed ADD and DEL.
    pub fn push(&mut self, add: &Step, del: &Step) {
        self.add.push(add.ms);
        self.del.push(del.ms);
        self.add_requests.push(add.requests.len());
        self.del_requests.push(del.requests.len());
        self.maxrss_add_kb.push(add.maxrss_kb);
        self.maxrss_del_kb.push(del.maxrss_kb);
        self.add_request_list = add.requests.clone();
        self.del_request_list = del.requests.clone();
    }

    /// Records one traced (untimed) ADD and DEL.
    pub fn push_traced(&mut self, add: &Step, del: &Step) {
        self.own_hwm_add_kb.extend(add.own_hwm_kb);
        self.own_hwm_del_kb.extend(del.own_hwm_kb);
    }

    pub fn add_summary(&self) -> Summary {
        Summary::of(&self.add)
    }

    pub fn del_summary(&self) -> Summary {
        Summary::of(&self.del)
    }

    /// Mean API requests per ADD and per DEL.
    pub fn requests_per(&self) -> (f64, f64) {
        let mean = |v: &[usize]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<usize>() as f64 / v.len() as f64
            }
        };
        (mean(&self.add_requests), mean(&self.del_requests))
    }

    pub fn json(&self, floor: Option<&Series>) -> Value {
        let (ra, rd) = self.requests_per();
        let (a, d) = (self.add_summary(), self.del_summary());
        let mut v = json!({
            "contestant": self.who.key(),
            "label": self.who.label(),
            "add": a.json(),
            "del": d.json(),
            "api_requests_per_add": ra,
            "api_requests_per_del": rd,
            "add_requests": self.add_request_list,
            "del_requests": self.del_request_list,
            "own_peak_rss_kb_add": self.own_hwm_add_kb.iter().max(),
            "own_peak_rss_kb_del": self.own_hwm_del_kb.iter().max(),
            "wait4_maxrss_kb_add": self.maxrss_add_kb.iter().max(),
            "wait4_maxrss_kb_del": self.maxrss_del_kb.iter().max(),
        });
        if let Some(f) = floor {
            let (fa, fd) = (f.add_summary(), f.del_summary());
            v["add_ratio_to_floor"] = json!(round(a.median / fa.median));
            v["del_ratio_to_floor"] = json!(round(d.median / fd.median));
            v["add_added_ms"] = json!(round(a.median - fa.median));
            v["del_added_ms"] = json!(round(d.median - fd.median));
            v["add_added_ms_paired"] = json!(round(paired(&self.add, &f.add)));
            v["del_added_ms_paired"] = json!(round(paired(&self.del, &f.del)));
        }
        v
    }
}

/// `12.34` style milliseconds for tables.
pub fn ms(x: f64) -> String {
    format!("{x:.2}")
}

/// KiB as MiB with one decimal, or `-`.
pub fn mib(kb: Option<&i64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1} MiB", *k as f64 / 1024.0))
}
