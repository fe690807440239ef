//! Shortening values quoted in messages: the one pair of rules for every error and log line.

/// `s` cut to at most `max` bytes at a character boundary, with `...` appended when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The last `max` bytes of `s` at a character boundary, with `...` prepended when cut (the end
/// of a plugin's stderr is where its error is).
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows = [
            ("short", "abc", 5, "abc", "abc"),
            ("exact", "abcde", 5, "abcde", "abcde"),
            ("long", "abcdefgh", 3, "abc...", "...fgh"),
            ("multibyte", "ééé", 3, "é...", "...é"),
        ];
        for (name, s, max, head, end) in rows {
            assert_eq!(truncate(s, max), head, "{name}");
            assert_eq!(tail(s, max), end, "{name}");
        }
    }
}
