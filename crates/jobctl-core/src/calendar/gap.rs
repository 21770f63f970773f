//! The shortest time an expression can leave between two consecutive
//! elapses, when that is under a minute: what jobctl's minimum-interval rule
//! (`schedule::MIN_INTERVAL`) is checked against.
//!
//! Every field but the seconds repeats at least a minute apart, so gaps under
//! a minute come from the seconds field alone: between two of its values in
//! the same minute, or from its last value of one minute to its first of the
//! next when two consecutive minutes match. (DST changes can bring two local
//! times closer in real time; those gaps are not counted.)

use std::collections::BTreeMap;
use std::ops::Range;

use super::spec::{Chain, Component, Spec, USEC_PER_SEC};

const MINUTE: i64 = 60 * USEC_PER_SEC as i64;

/// Above this many second values an expression is only judged by its
/// repetitions, which are then necessarily short.
const MAX_VALUES: usize = 100_000;

/// A gap between two elapses, and where the seconds that make it are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub usec: u64,
    /// A byte range in the expression (empty when the seconds were implied).
    pub span: Range<usize>,
}

pub(crate) fn shortest_gap(spec: &Spec) -> Option<Gap> {
    let seconds = &spec.microsecond;
    if seconds.is_empty() {
        // No seconds constraint at all: every microsecond.
        return Some(Gap {
            usec: 1,
            span: 0..0,
        });
    }
    let mut values: BTreeMap<i64, Range<usize>> = BTreeMap::new();
    let mut total = 0usize;
    for c in seconds {
        let (start, limit, repeat) = bounds(c, MINUTE - 1);
        if start > limit {
            continue;
        }
        total += if repeat > 0 {
            ((limit - start) / repeat) as usize + 1
        } else {
            1
        };
    }
    if total > MAX_VALUES {
        // Some repetition has that many values within a minute: the shortest
        // of those repetitions is a gap (and far under a second).
        return seconds
            .iter()
            .filter_map(|c| {
                let (start, limit, repeat) = bounds(c, MINUTE - 1);
                (repeat > 0 && start + repeat <= limit).then(|| Gap {
                    usec: repeat as u64,
                    span: c.span.clone(),
                })
            })
            .min_by_key(|g| g.usec);
    }
    for c in seconds {
        let (start, limit, repeat) = bounds(c, MINUTE - 1);
        let mut v = start;
        while v <= limit {
            values.entry(v).or_insert_with(|| c.span.clone());
            if repeat == 0 {
                break;
            }
            v += repeat;
        }
    }
    let mut best: Option<Gap> = None;
    let mut consider = |usec: i64, span: &Range<usize>| {
        if usec < MINUTE && best.as_ref().is_none_or(|b| (usec as u64) < b.usec) {
            best = Some(Gap {
                usec: usec as u64,
                span: span.clone(),
            });
        }
    };
    let mut previous: Option<i64> = None;
    for (&v, span) in &values {
        if let Some(p) = previous {
            consider(v - p, span);
        }
        previous = Some(v);
    }
    if let (Some((&first, span)), Some((&last, _))) =
        (values.first_key_value(), values.last_key_value())
        && consecutive_minutes(spec)
    {
        consider(MINUTE - last + first, span);
    }
    best
}

/// `(first value, last value the component may take, step)`; step 0 for a
/// single value.
fn bounds(c: &Component, max: i64) -> (i64, i64, i64) {
    let start = i64::from(c.start);
    let repeat = i64::from(c.repeat.max(0));
    let limit = if c.stop >= 0 {
        i64::from(c.stop).min(max)
    } else if repeat > 0 {
        max
    } else {
        start
    };
    (start, limit, repeat)
}

/// The values a minute or hour chain allows (empty: all of 0..=max).
fn allowed(chain: &Chain, max: i64) -> Vec<bool> {
    let mut out = vec![chain.is_empty(); max as usize + 1];
    for c in chain {
        let (start, limit, repeat) = bounds(c, max);
        let mut v = start.max(0);
        while v <= limit {
            out[v as usize] = true;
            if repeat == 0 {
                break;
            }
            v += repeat;
        }
    }
    out
}

fn has_neighbours(allowed: &[bool]) -> bool {
    allowed.windows(2).any(|w| w[0] && w[1])
}

/// Whether two consecutive minutes can both match: within an hour, or
/// across one (minute 59 and minute 0 of the next hour).
fn consecutive_minutes(spec: &Spec) -> bool {
    let minutes = allowed(&spec.minute, 59);
    if has_neighbours(&minutes) {
        return true;
    }
    if !(minutes[0] && minutes[59]) {
        return false;
    }
    let hours = allowed(&spec.hour, 23);
    // Across midnight the day changes too; taken as possible.
    has_neighbours(&hours) || (hours[0] && hours[23])
}

#[cfg(test)]
mod tests {
    use super::super::CalendarSpec;

    fn gap(expr: &str) -> Option<u64> {
        CalendarSpec::parse(expr)
            .unwrap()
            .shortest_gap()
            .map(|g| g.usec)
    }

    #[test]
    fn gaps_under_a_minute() {
        assert_eq!(gap("*:*:00/0.000001"), Some(1));
        assert_eq!(gap("*:*:*"), Some(1_000_000));
        assert_eq!(gap("*:*:00/15"), Some(15_000_000));
        assert_eq!(gap("*:*:00,00.5"), Some(500_000));
        assert_eq!(gap("*:*:10..12"), Some(1_000_000));
        // From the last second of a minute to the first of the next.
        assert_eq!(gap("*:*:59.5,00"), Some(500_000));
        assert_eq!(gap("*:00,01:59.5,00"), Some(500_000));
        assert_eq!(gap("*:59,00:59.5,00"), Some(500_000));
        // ... but not when the next minute never matches.
        assert_eq!(gap("*:00,30:59.5,00"), Some(59_500_000));
        assert_eq!(gap("03:59,00:59.5,00"), Some(59_500_000));
    }

    #[test]
    fn a_minute_or_more_is_no_gap() {
        assert_eq!(gap("minutely"), None);
        assert_eq!(gap("*:*:00"), None);
        assert_eq!(gap("*:*:30.5"), None);
        assert_eq!(gap("daily"), None);
        assert_eq!(gap("*-02-30"), None);
        assert_eq!(gap("*:00/5"), None);
    }

    #[test]
    fn the_span_points_at_the_seconds() {
        let expr = "*:*:00/0.000001";
        let g = CalendarSpec::parse(expr).unwrap().shortest_gap().unwrap();
        assert_eq!(&expr[g.span], "00/0.000001");
    }
}
