//! Kubernetes' name rules, as its API server checks them
//! (k8s.io/apimachinery `validation.IsDNS1123Subdomain`, `IsDNS1123Label`,
//! `IsQualifiedName`, `IsValidLabelValue`; the CronJob's 52-character limit;
//! `validateTimeZone` of the batch API).

/// The longest CronJob name: the controller appends 11 characters (`-` and
/// a time stamp) to name each Job, which must stay within 63.
pub const MAX_CRONJOB_NAME: usize = 52;

/// A DNS-1123 label: lowercase letters, digits and `-`, starting and ending
/// with a letter or digit, at most 63 characters (namespaces, container
/// names).
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63
        && label_shape(
            name,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            |c| c == '-',
        )
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && label_shape(
            name,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            |c| c == '-' || c == '.',
        )
        && name.split('.').all(|part| {
            label_shape(
                part,
                |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
                |c| c == '-',
            )
        })
}

/// Non-empty, starting and ending with an `end` character, with `end` or
/// `inner` characters between.
fn label_shape(s: &str, end: impl Fn(char) -> bool, inner: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    end(first) && end(last) && s.chars().all(|c| end(c) || inner(c))
}

/// The name part of a label or annotation key, and a non-empty label value:
/// at most 63 characters, letters, digits, `-`, `_`, `.`, starting and
/// ending with a letter or digit.
pub fn is_label_name(name: &str) -> bool {
    name.len() <= 63
        && label_shape(
            name,
            |c| c.is_ascii_alphanumeric(),
            |c| matches!(c, '-' | '_' | '.'),
        )
}

/// A label value: empty, or shaped like [`is_label_name`].
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

/// A `timeZone` the batch API accepts: each `/`-separated part 1 to 14 of
/// `[A-Za-z0-9._+-]`, not `.`, `..` or starting with `-`, and not `Local`.
pub fn is_time_zone(zone: &str) -> bool {
    !zone.eq_ignore_ascii_case("local")
        && zone.split('/').all(|part| {
            (1..=14).contains(&part.len())
                && part != "."
                && part != ".."
                && !part.starts_with('-')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        })
}

/// A CronJob name made from a job name: lowercase, every character other
/// than a letter, digit, `-` or `.` (jobctl allows `_` and capitals) turned
/// into `-`, and anything but a letter or digit trimmed from both ends.
/// `None` when nothing is left.
pub fn cronjob_name(job: &str) -> Option<String> {
    let mapped: String = job
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    // No empty label, no label ending or starting with `-`.
    let mut labels: Vec<String> = Vec::new();
    for label in mapped.split('.') {
        let label = label.trim_matches('-');
        if !label.is_empty() {
            labels.push(label.to_string());
        }
    }
    let name = labels.join(".");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("nightly-refresh"));
        assert!(is_dns_label("a"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(""));
        assert!(is_dns_label(&"a".repeat(63)));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("a.-b"));
        assert!(!is_dns_subdomain("a_b"));
        assert!(!is_dns_subdomain(".a"));
    }

    #[test]
    fn label_names_and_values() {
        assert!(is_label_name("data-platform"));
        assert!(is_label_name("A_b.c"));
        assert!(!is_label_name("ops@example.com"));
        assert!(!is_label_name("_x"));
        assert!(!is_label_name(""));
        assert!(!is_label_name(&"a".repeat(64)));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value("é"));
    }

    #[test]
    fn time_zones() {
        assert!(is_time_zone("Europe/London"));
        assert!(is_time_zone("UTC"));
        assert!(is_time_zone("America/Argentina/ComodRivadavia"));
        assert!(is_time_zone("Etc/GMT+5"));
        assert!(!is_time_zone("Local"));
        assert!(!is_time_zone("America/Fifteen_Chars_X"));
        assert!(!is_time_zone("a//b"));
        assert!(!is_time_zone("-x"));
        assert!(!is_time_zone("../etc"));
    }

    #[test]
    fn cronjob_names_from_job_names() {
        assert_eq!(
            cronjob_name("nightly-refresh").as_deref(),
            Some("nightly-refresh")
        );
        assert_eq!(
            cronjob_name("Nightly_Refresh").as_deref(),
            Some("nightly-refresh")
        );
        assert_eq!(cronjob_name("_x_").as_deref(), Some("x"));
        assert_eq!(cronjob_name("a._b").as_deref(), Some("a.b"));
        assert_eq!(cronjob_name("a..b").as_deref(), Some("a.b"));
        assert_eq!(cronjob_name("___"), None);
        for job in ["A", "b_", "x.y-", "9", "a.-.b"] {
            let name = cronjob_name(job).unwrap();
            assert!(is_dns_subdomain(&name), "{job} → {name}");
        }
    }
}
