//! Kubernetes object names: the DNS-1123 rules, with a reason a user can act on. Annotations,
//! `CNI_ARGS` and `plexus lint` all check names here.

/// DNS-1123 subdomain: dot-separated labels of `[a-z0-9-]`, each starting and ending with a letter
/// or digit, at most 253 characters in all.
///
/// # Errors
/// Why it is not one.
pub fn check_subdomain(s: &str) -> Result<(), &'static str> {
    if s.len() > 253 {
        return Err("is longer than 253 characters");
    }
    s.split('.').try_for_each(label_chars).map_err(|reason| {
        if reason == LOWERCASE {
            "is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        } else {
            reason
        }
    })
}

/// DNS-1123 label: `[a-z0-9-]`, starting and ending with a letter or digit, at most 63 characters.
///
/// # Errors
/// Why it is not one.
pub fn check_label(s: &str) -> Result<(), &'static str> {
    if s.len() > 63 {
        return Err("is longer than 63 characters");
    }
    label_chars(s).map_err(|reason| {
        if reason == LOWERCASE {
            "is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        } else {
            reason
        }
    })
}

const LOWERCASE: &str = "lowercase";

fn label_chars(s: &str) -> Result<(), &'static str> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(LOWERCASE);
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Err("has uppercase letters (names are lowercase)");
    }
    let edges_ok =
        bytes.first().copied().is_some_and(alnum) && bytes.last().copied().is_some_and(alnum);
    if !edges_ok || !bytes.iter().all(|&b| alnum(b) || b == b'-') {
        return Err(LOWERCASE);
    }
    Ok(())
}

/// True for a DNS-1123 label (a namespace name).
pub fn is_dns_label(s: &str) -> bool {
    check_label(s).is_ok()
}

/// True for a DNS-1123 subdomain (a pod or NAD name).
pub fn is_dns_subdomain(s: &str) -> bool {
    check_subdomain(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let long_label = "a".repeat(64);
        let rows = [
            ("simple", "default", true, true),
            ("dashes", "kube-system", true, true),
            ("dotted", "a.b", false, true),
            ("upper", "Default", false, false),
            ("leading dash", "-a", false, false),
            ("slash", "a/b", false, false),
            ("dotdot", "..", false, false),
            ("empty", "", false, false),
            ("64-character label", long_label.as_str(), false, true),
        ];
        for (name, s, label, sub) in rows {
            assert_eq!(is_dns_label(s), label, "{name}");
            assert_eq!(is_dns_subdomain(s), sub, "{name}");
        }
    }
}
