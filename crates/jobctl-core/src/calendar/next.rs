//! Next-elapse computation: systemd 252's `find_next()` and
//! `calendar_spec_next_usec()`, over the glibc time arithmetic of
//! [`super::libc_time`].
//!
//! systemd walks a broken-down local time forward field by field (year,
//! month, day, weekday, hour, minute, second), letting `mktime()` normalize
//! impossible dates (Feb 30 → Mar 2) and DST gaps, and restarting whenever
//! normalization moved a field. The quirks that follow from this are part of
//! systemd's observable behaviour and are reproduced exactly: a time inside a
//! spring-forward gap is skipped for that day, a fall-back overlap fires only
//! in its first occurrence (and an expression like `minutely` skips the
//! repeated hour), impossible dates never elapse, and nothing elapses after
//! 2199.

use super::libc_time::{Clock, Tm};
use super::spec::{Chain, MAX_YEAR, Spec, USEC_PER_SEC};

/// systemd's safety valve (`MAX_CALENDAR_ITERATIONS`).
const MAX_CALENDAR_ITERATIONS: usize = 1000;

/// systemd's `USEC_TIMESTAMP_FORMATTABLE_MAX` on 64-bit: 9999-12-30 23:59:59 UTC.
pub(crate) const USEC_TIMESTAMP_FORMATTABLE_MAX: u64 = 253_402_214_399_000_000;

const USEC: u64 = USEC_PER_SEC as u64;

/// Why no next elapse was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoElapse {
    /// `-ENOENT`: the expression never elapses again.
    Never,
    /// `-EINVAL`: the base time is past systemd's range.
    BaseOutOfRange,
    /// `-EDEADLK`: 1000 iterations without a result.
    InfiniteLoop,
    /// `-EINVAL` from the final `mktime()`.
    Compute,
}

/// `calendar_spec_next_usec_impl`: the first elapse strictly after `usec`
/// (microseconds since the epoch), computed on `clock`.
pub(crate) fn next_usec(spec: &Spec, usec: u64, clock: &mut Clock<'_>) -> Result<u64, NoElapse> {
    if usec > USEC_TIMESTAMP_FORMATTABLE_MAX {
        return Err(NoElapse::BaseOutOfRange);
    }
    let usec = usec + 1;
    let t = (usec / USEC) as i64;
    let Some(mut tm) = clock.localtime(t) else {
        return Err(NoElapse::BaseOutOfRange);
    };
    let mut tm_usec = (usec % USEC) as i32;

    find_next(spec, clock, &mut tm, &mut tm_usec)?;

    let t = clock.mktime(&mut tm);
    if t < 0 {
        return Err(NoElapse::Compute);
    }
    Ok(t as u64 * USEC + tm_usec as u64)
}

/// Result of `tm_within_bounds`.
#[derive(PartialEq, Eq)]
enum Bounds {
    /// Negative: past 2199, `mktime()` failed, or normalization went backwards.
    Error,
    /// 0: normalization moved the time forward (and `tm` now holds it).
    Moved,
    /// 1: the time is valid as it is.
    Same,
}

/// A field of the broken-down time, largest first.
#[derive(Clone, Copy)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

/// Resets every field smaller than `field` to its first value, as systemd
/// does when a larger field moved to a later match (or overflowed).
fn reset_below(c: &mut Tm, usec: &mut i32, field: Field) {
    if matches!(field, Field::Year) {
        c.mon = 0;
    }
    if matches!(field, Field::Year | Field::Month) {
        c.mday = 1;
    }
    if matches!(field, Field::Year | Field::Month | Field::Day) {
        c.hour = 0;
    }
    if !matches!(field, Field::Minute) {
        c.min = 0;
    }
    c.sec = 0;
    *usec = 0;
}

/// The outcome of matching one field: an error when no value of it matched,
/// else whether normalizing the new time moved it.
fn bounds_after(matched: Result<bool, ()>, c: &mut Tm, clock: &mut Clock<'_>) -> Bounds {
    match matched {
        Err(()) => Bounds::Error,
        Ok(_) => tm_within_bounds(c, clock),
    }
}

fn tm_within_bounds(tm: &mut Tm, clock: &mut Clock<'_>) -> Bounds {
    // Caps impossible dates such as *-02-31, which would otherwise loop.
    if tm.year + 1900 > MAX_YEAR {
        return Bounds::Error;
    }
    let mut t = *tm;
    if clock.mktime(&mut t) < 0 {
        return Bounds::Error;
    }
    // If normalization changed a field, the smaller fields restart (3-33
    // normalizes to 4-2, which would skip 4-1 otherwise).
    let cmp = if t.year != tm.year {
        t.mon = 0;
        t.year.cmp(&tm.year)
    } else if t.mon != tm.mon {
        t.mday = 1;
        t.mon.cmp(&tm.mon)
    } else if t.mday != tm.mday {
        t.hour = 0;
        t.mday.cmp(&tm.mday)
    } else if t.hour != tm.hour {
        t.min = 0;
        t.hour.cmp(&tm.hour)
    } else if t.min != tm.min {
        t.sec = 0;
        t.min.cmp(&tm.min)
    } else {
        t.sec.cmp(&tm.sec)
    };
    match cmp {
        std::cmp::Ordering::Less => Bounds::Error,
        std::cmp::Ordering::Greater => {
            *tm = t;
            Bounds::Moved
        }
        std::cmp::Ordering::Equal => Bounds::Same,
    }
}

/// `find_end_of_month`: the day of month `day` days before the end of
/// `tm`'s month counts as day 1 (`~01` = the last day), or -1.
fn find_end_of_month(tm: &Tm, day: i32, clock: &mut Clock<'_>) -> i32 {
    let mut t = *tm;
    t.mon += 1;
    t.mday = 1 - day;
    if clock.mktime(&mut t) < 0 || t.mon != tm.mon {
        return -1;
    }
    t.mday
}

/// `find_matching_component`: the earliest value ≥ `*val` that an element of
/// `chain` allows. `Ok(true)` when `*val` changed, `Err` when none does.
fn find_matching_component(
    spec: &Spec,
    chain: &Chain,
    is_day: bool,
    tm: &Tm,
    val: &mut i32,
    clock: &mut Clock<'_>,
) -> Result<bool, ()> {
    if chain.is_empty() {
        return Ok(false);
    }
    let end_of_month = spec.end_of_month && is_day;
    let mut best: Option<i32> = None;
    for c in chain {
        let (start, stop) = if end_of_month {
            let start = find_end_of_month(tm, c.start, clock);
            let stop = find_end_of_month(tm, c.stop, clock);
            if stop > 0 {
                (stop, start)
            } else {
                (start, stop)
            }
        } else {
            (c.start, c.stop)
        };
        if start >= *val {
            if best.is_none_or(|d| start < d) {
                best = Some(start);
            }
        } else if c.repeat > 0 {
            // DIV_ROUND_UP(*val - start, repeat) repetitions after start.
            let k = start + c.repeat * ((*val - start + c.repeat - 1) / c.repeat);
            if best.is_none_or(|d| k < d) && (stop < 0 || k <= stop) {
                best = Some(k);
            }
        }
    }
    let d = best.ok_or(())?;
    let changed = *val != d;
    *val = d;
    Ok(changed)
}

fn matches_weekday(bits: i32, tm: &Tm, clock: &mut Clock<'_>) -> bool {
    if !(0..127).contains(&bits) {
        return true;
    }
    let mut t = *tm;
    if clock.mktime(&mut t) < 0 {
        return false;
    }
    let k = if t.wday == 0 { 6 } else { t.wday - 1 };
    bits & (1 << k) != 0
}

fn tm_compare(a: &Tm, b: &Tm) -> std::cmp::Ordering {
    (a.year, a.mon, a.mday, a.hour, a.min, a.sec)
        .cmp(&(b.year, b.mon, b.mday, b.hour, b.min, b.sec))
}

/// systemd's `find_next`: advances `tm`/`usec` to the next matching time.
fn find_next(
    spec: &Spec,
    clock: &mut Clock<'_>,
    tm: &mut Tm,
    usec: &mut i32,
) -> Result<(), NoElapse> {
    use std::cmp::Ordering;

    let mut c = *tm;
    let mut tm_usec = *usec;
    let mut invalidate_dst = false;

    for _ in 0..MAX_CALENDAR_ITERATIONS {
        // Normalize the current date.
        clock.mktime(&mut c);
        if !invalidate_dst {
            c.isdst = spec.dst();
        }

        // Year.
        let mut val = c.year + 1900;
        let view = Tm { year: val, ..c };
        let r = find_matching_component(spec, &spec.year, false, &view, &mut val, clock);
        c.year = val - 1900;
        match r {
            Err(()) => return Err(NoElapse::Never),
            Ok(true) => reset_below(&mut c, &mut tm_usec, Field::Year),
            Ok(false) => {}
        }
        if tm_within_bounds(&mut c, clock) != Bounds::Same {
            return Err(NoElapse::Never);
        }

        // Month.
        let mut val = c.mon + 1;
        let view = Tm { mon: val, ..c };
        let r = find_matching_component(spec, &spec.month, false, &view, &mut val, clock);
        c.mon = val - 1;
        if r == Ok(true) {
            reset_below(&mut c, &mut tm_usec, Field::Month);
        }
        match bounds_after(r, &mut c, clock) {
            Bounds::Error => {
                c.year += 1;
                reset_below(&mut c, &mut tm_usec, Field::Year);
                continue;
            }
            Bounds::Moved => continue,
            Bounds::Same => {}
        }

        // Day of month.
        let mut val = c.mday;
        let r = find_matching_component(spec, &spec.day, true, &c, &mut val, clock);
        c.mday = val;
        if r == Ok(true) {
            reset_below(&mut c, &mut tm_usec, Field::Day);
        }
        match bounds_after(r, &mut c, clock) {
            Bounds::Error => {
                c.mon += 1;
                reset_below(&mut c, &mut tm_usec, Field::Month);
                continue;
            }
            Bounds::Moved => continue,
            Bounds::Same => {}
        }

        // Weekday.
        if !matches_weekday(spec.weekdays_bits, &c, clock) {
            c.mday += 1;
            reset_below(&mut c, &mut tm_usec, Field::Day);
            continue;
        }

        // Hour.
        let mut val = c.hour;
        let r = find_matching_component(spec, &spec.hour, false, &c, &mut val, clock);
        c.hour = val;
        if r == Ok(true) {
            reset_below(&mut c, &mut tm_usec, Field::Hour);
        }
        match bounds_after(r, &mut c, clock) {
            Bounds::Error => {
                c.mday += 1;
                reset_below(&mut c, &mut tm_usec, Field::Day);
                continue;
            }
            // The hour we set may not exist (DST): start again from the
            // normalized time.
            Bounds::Moved => continue,
            Bounds::Same => {}
        }

        // Minute.
        let mut val = c.min;
        let r = find_matching_component(spec, &spec.minute, false, &c, &mut val, clock);
        c.min = val;
        if r == Ok(true) {
            reset_below(&mut c, &mut tm_usec, Field::Minute);
        }
        match bounds_after(r, &mut c, clock) {
            Bounds::Error => {
                c.hour += 1;
                reset_below(&mut c, &mut tm_usec, Field::Hour);
                continue;
            }
            Bounds::Moved => continue,
            Bounds::Same => {}
        }

        // Second and microsecond, matched as one value.
        let mut val = c.sec * USEC_PER_SEC + tm_usec;
        let view = Tm { sec: val, ..c };
        let r = find_matching_component(spec, &spec.microsecond, false, &view, &mut val, clock);
        tm_usec = val % USEC_PER_SEC;
        c.sec = val / USEC_PER_SEC;
        match bounds_after(r, &mut c, clock) {
            Bounds::Error => {
                c.min += 1;
                reset_below(&mut c, &mut tm_usec, Field::Minute);
                continue;
            }
            Bounds::Moved => continue,
            Bounds::Same => {}
        }

        // Not later than where we started (DST moved us back): advance an
        // hour and let mktime() sort out the DST flag.
        let mut order = tm_compare(tm, &c);
        if order == Ordering::Equal {
            order = (*usec).cmp(&(tm_usec + 1));
        }
        if order != Ordering::Less {
            invalidate_dst = true;
            c.hour += 1;
            continue;
        }

        *tm = c;
        *usec = tm_usec;
        return Ok(());
    }
    Err(NoElapse::InfiniteLoop)
}
