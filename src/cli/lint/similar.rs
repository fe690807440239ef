//! "Did you mean": the known name a misspelled one most likely meant.

/// Edit distance between `a` and `b` ignoring ASCII case: insertions, deletions,
/// substitutions and swaps of two neighbours each count one (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<u8> = a.bytes().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<u8> = b.bytes().map(|c| c.to_ascii_lowercase()).collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate `word` most likely misspells: differing only in case, by one edit (words of 4
/// bytes or more), or by two (8 or more); the closest such, the first on a tie. `None` when
/// `word` is itself a candidate or nothing is that close (a name of its own, not a typo).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if candidates.contains(&word) {
        return None;
    }
    let allowed = match word.len() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_table() {
        let plugins = [
            "bridge",
            "macvlan",
            "host-local",
            "ptp",
            "tap",
            "tuning",
            "vlan",
        ];
        let keys = ["cniDir", "namespaceIsolation", "readinessindicatorfile"];
        let rows: &[(&str, &str, &[&str], Option<&str>)] = &[
            ("swapped letters", "macvlna", &plugins, Some("macvlan")),
            (
                "a letter missing",
                "host-locl",
                &plugins,
                Some("host-local"),
            ),
            ("a letter doubled", "tunning", &plugins, Some("tuning")),
            ("case only", "Macvlan", &plugins, Some("macvlan")),
            (
                "two edits, long word",
                "host-lcal",
                &plugins,
                Some("host-local"),
            ),
            ("two edits, short word", "macvtap", &plugins, None),
            ("three letters are never guessed", "tip", &plugins, None),
            ("a name of its own", "whereabouts", &plugins, None),
            ("exact", "bridge", &plugins, None),
            (
                "misspelled key",
                "namespaceIsolaton",
                &keys,
                Some("namespaceIsolation"),
            ),
            ("key in the wrong case", "cnidir", &keys, Some("cniDir")),
            (
                "camel-cased Multus key",
                "readinessIndicatorfile",
                &keys,
                Some("readinessindicatorfile"),
            ),
            ("unrelated key", "padding", &keys, None),
        ];
        for (name, word, cands, want) in rows {
            assert_eq!(closest(word, cands), *want, "{name}");
        }
    }
}
