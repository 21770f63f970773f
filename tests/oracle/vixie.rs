//! An independent cron reference, written from Vixie cron 3.0pl1 as Debian
//! ships it (entry.c: `load_entry`, `get_list`, `get_range`, `get_number`;
//! cron.c: `find_jobs` and the main loop's clock-change handling). It shares
//! no code with jobctl's cron translator: it parses a line character by
//! character the way cron does (including what cron silently tolerates) and
//! matches wall-clock minutes directly, without any translation.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DOW_NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One parsed crontab entry: a bit per allowed value (indexed from the
/// field's low bound, as cron's bitstrings are) and cron's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub minute: [bool; 60],
    pub hour: [bool; 24],
    /// Index 0 = day 1.
    pub dom: [bool; 31],
    /// Index 0 = January.
    pub month: [bool; 12],
    /// Index 0 = Sunday … 7 = Sunday.
    pub dow: [bool; 8],
    pub dom_star: bool,
    pub dow_star: bool,
    pub min_star: bool,
    pub hr_star: bool,
    pub reboot: bool,
    /// cron accepted the line only by ignoring something: characters after
    /// a field (`Skip_Nonblanks`), or a backwards range that sets nothing.
    pub lenient: bool,
}

/// A character source like cron's `get_char` on a FILE: `None` is EOF.
struct Chars<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Chars<'_> {
    fn get(&mut self) -> Option<u8> {
        let c = self.bytes.get(self.pos).copied();
        self.pos += 1;
        c
    }
}

fn is_blank(c: Option<u8>) -> bool {
    matches!(c, Some(b' ' | b'\t'))
}

/// `get_number`: alphanumerics; a name from `names`, or all digits.
fn get_number(
    chars: &mut Chars<'_>,
    mut ch: Option<u8>,
    low: usize,
    names: &[&str],
) -> (Option<u8>, Option<usize>) {
    let mut temp = String::new();
    while let Some(c) = ch.filter(u8::is_ascii_alphanumeric) {
        temp.push(char::from(c));
        ch = chars.get();
    }
    if temp.is_empty() {
        return (ch, None);
    }
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&temp)) {
        return (ch, Some(i + low));
    }
    if temp.bytes().all(|b| b.is_ascii_digit()) {
        // atoi; long strings of digits overflow in C, treat as huge.
        return (ch, Some(temp.parse::<usize>().unwrap_or(usize::MAX)));
    }
    (ch, None)
}

/// One field as `get_list` and `get_range` parse it: cron's bitstring, the
/// field's bounds and names, and whether cron was lenient with it.
struct Field<'a> {
    bits: &'a mut [bool],
    low: usize,
    high: usize,
    names: &'a [&'a str],
    lenient: &'a mut bool,
}

/// `get_range`. Returns the next character, or `Err` for cron's EOF error.
fn get_range(
    chars: &mut Chars<'_>,
    mut ch: Option<u8>,
    f: &mut Field<'_>,
) -> Result<Option<u8>, ()> {
    let (low, high, names) = (f.low, f.high, f.names);
    let (num1, num2);
    if ch == Some(b'*') {
        num1 = low;
        num2 = high;
        ch = chars.get();
        if ch.is_none() {
            return Err(());
        }
    } else {
        let (c, n1) = get_number(chars, ch, low, names);
        let n1 = n1.ok_or(())?;
        ch = c;
        if ch.is_none() {
            return Err(());
        }
        if ch != Some(b'-') {
            // A single number; a step needs a range.
            if ch == Some(b'/') {
                return Err(());
            }
            if n1 < low || n1 > high {
                return Err(());
            }
            f.bits[n1 - low] = true;
            return Ok(ch);
        }
        ch = chars.get();
        if ch.is_none() {
            return Err(());
        }
        let (c, n2) = get_number(chars, ch, low, names);
        ch = c;
        if ch.is_none() {
            return Err(());
        }
        num1 = n1;
        num2 = n2.ok_or(())?;
    }
    let step = if ch == Some(b'/') {
        ch = chars.get();
        if ch.is_none() {
            return Err(());
        }
        let (c, n3) = get_number(chars, ch, 0, &[]);
        ch = c;
        match n3 {
            Some(n) if ch.is_some() && n > 0 => n,
            _ => return Err(()),
        }
    } else {
        1
    };
    if num1 < low || num1 > high || num2 < low || num2 > high {
        return Err(());
    }
    if num1 > num2 {
        *f.lenient = true;
    }
    let mut i = num1;
    while i <= num2 {
        f.bits[i - low] = true;
        i = i.saturating_add(step);
    }
    Ok(ch)
}

/// `get_list`: ranges separated by commas, then whatever follows up to the
/// next blank is skipped, then the blanks.
fn get_list(
    chars: &mut Chars<'_>,
    mut ch: Option<u8>,
    f: &mut Field<'_>,
) -> Result<Option<u8>, ()> {
    loop {
        ch = get_range(chars, ch, f)?;
        if ch == Some(b',') {
            ch = chars.get();
        } else {
            break;
        }
    }
    if !is_blank(ch) && ch.is_some() {
        *f.lenient = true;
    }
    while ch.is_some() && !is_blank(ch) {
        ch = chars.get();
    }
    while is_blank(ch) {
        ch = chars.get();
    }
    Ok(ch)
}

/// Parses the schedule part of a user-crontab line (5 fields or an
/// @-macro) as cron's `load_entry` does. `None` where cron reports an error.
pub fn parse(schedule: &str) -> Option<Entry> {
    // cron needs a command after the schedule.
    let line = format!("{schedule} cmd");
    let mut chars = Chars {
        bytes: line.as_bytes(),
        pos: 0,
    };
    let mut e = Entry {
        minute: [false; 60],
        hour: [false; 24],
        dom: [false; 31],
        month: [false; 12],
        dow: [false; 8],
        dom_star: false,
        dow_star: false,
        min_star: false,
        hr_star: false,
        reboot: false,
        lenient: false,
    };
    let mut ch = chars.get();
    while is_blank(ch) {
        ch = chars.get();
    }
    if ch == Some(b'@') {
        let rest: String = line[chars.pos..]
            .chars()
            .take_while(|c| !matches!(c, ' ' | '\t' | '\n'))
            .collect();
        match rest.as_str() {
            "reboot" => e.reboot = true,
            "yearly" | "annually" => {
                e.minute[0] = true;
                e.hour[0] = true;
                e.dom[0] = true;
                e.month[0] = true;
                e.dow = [true; 8];
                e.dow_star = true;
            }
            "monthly" => {
                e.minute[0] = true;
                e.hour[0] = true;
                e.dom[0] = true;
                e.month = [true; 12];
                e.dow = [true; 8];
                e.dow_star = true;
            }
            "weekly" => {
                e.minute[0] = true;
                e.hour[0] = true;
                e.dom = [true; 31];
                e.dom_star = true;
                e.month = [true; 12];
                e.dow[0] = true;
            }
            "daily" | "midnight" => {
                e.minute[0] = true;
                e.hour[0] = true;
                e.dom = [true; 31];
                e.month = [true; 12];
                e.dow = [true; 8];
            }
            "hourly" => {
                e.minute[0] = true;
                e.hour = [true; 24];
                e.dom = [true; 31];
                e.month = [true; 12];
                e.dow = [true; 8];
                e.hr_star = true;
            }
            _ => return None,
        }
    } else {
        let mut lenient = false;
        for (bits, low, high, names, star) in [
            (&mut e.minute[..], 0, 59, &[][..], Some(&mut e.min_star)),
            (&mut e.hour[..], 0, 23, &[], Some(&mut e.hr_star)),
            (&mut e.dom[..], 1, 31, &[], Some(&mut e.dom_star)),
            (&mut e.month[..], 1, 12, &MONTH_NAMES[..], None),
            (&mut e.dow[..], 0, 7, &DOW_NAMES, Some(&mut e.dow_star)),
        ] {
            if let Some(star) = star {
                *star = ch == Some(b'*');
            }
            let mut field = Field {
                bits,
                low,
                high,
                names,
                lenient: &mut lenient,
            };
            ch = get_list(&mut chars, ch, &mut field).ok()?;
            ch?;
        }
        // What is left must be exactly our "cmd".
        if &line[chars.pos - 1..] != "cmd" {
            return None;
        }
        e.lenient = lenient;
    }
    if e.dow[0] || e.dow[7] {
        e.dow[0] = true;
        e.dow[7] = true;
    }
    Some(e)
}

impl Entry {
    /// cron's `find_jobs` test for one local wall-clock minute.
    pub fn matches(&self, t: DateTime) -> bool {
        let dom = self.dom[t.day() as usize - 1];
        let dow = self.dow[t.weekday().to_sunday_zero_offset() as usize];
        self.minute[t.minute() as usize]
            && self.hour[t.hour() as usize]
            && self.month[t.month() as usize - 1]
            && if self.dom_star || self.dow_star {
                dow && dom
            } else {
                dow || dom
            }
    }

    /// Whether cron calls this a "wildcard" job (minute or hour field
    /// starting with `*`).
    pub fn is_wildcard(&self) -> bool {
        self.min_star || self.hr_star
    }

    /// The first `n` minutes after `after` (exclusive) at which the entry
    /// matches, in `zone`, scanning at most `days` days. Each local minute
    /// is taken once, at its earliest instant: meant for windows without
    /// clock changes, where that is what cron does.
    pub fn next_matches(
        &self,
        zone: &TimeZone,
        after: Timestamp,
        n: usize,
        days: i64,
    ) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let start: Date = after.to_zoned(zone.clone()).date();
        for d in 0..days {
            let Ok(date) = start.checked_add(jiff::Span::new().days(d)) else {
                break;
            };
            let probe = date.at(0, 0, 0, 0);
            // Day-level check first (cron checks every field every minute;
            // skipping days that cannot match changes nothing).
            let dom = self.dom[date.day() as usize - 1];
            let dow = self.dow[date.weekday().to_sunday_zero_offset() as usize];
            let day_ok = self.month[date.month() as usize - 1]
                && if self.dom_star || self.dow_star {
                    dom && dow
                } else {
                    dom || dow
                };
            if !day_ok {
                continue;
            }
            for h in 0..24i8 {
                if !self.hour[h as usize] {
                    continue;
                }
                for m in 0..60i8 {
                    let t = probe.with().hour(h).minute(m).build().expect("valid time");
                    if !self.matches(t) {
                        continue;
                    }
                    let Ok(z) = t.to_zoned(zone.clone()) else {
                        continue;
                    };
                    let ts = z.timestamp();
                    if ts > after {
                        out.push(ts);
                        if out.len() == n {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }
}

/// One run of the cron daemon simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// When cron started the job (its wake-up, on a minute boundary).
    pub at: Timestamp,
    /// The wall-clock minute cron ran it for.
    pub for_minute: DateTime,
}

/// Simulates cron's main loop (cron.c) after `from` and before `to`, waking at every
/// minute boundary, including its handling of clock changes: after a jump
/// forward of 5 minutes to 3 hours (spring forward) it runs wildcard jobs
/// for the current minute and fixed-time jobs for every skipped minute;
/// after a jump back of up to 3 hours (fall back) it runs only wildcard jobs
/// until the clock catches up with where it was.
pub fn simulate(entry: &Entry, zone: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Run> {
    // cron's clock: wall-clock minutes since the epoch (time + GMToff) / 60.
    let clock = |t: Timestamp| -> i64 {
        let offset = i64::from(zone.to_offset(t).seconds());
        (t.as_second() + offset).div_euclid(60)
    };
    let minute_of = |virtual_minute: i64| -> DateTime {
        Timestamp::from_second(virtual_minute * 60)
            .expect("in range")
            .to_zoned(TimeZone::UTC)
            .datetime()
    };
    let mut runs = Vec::new();
    let mut find_jobs = |vtime: i64, at: Timestamp, wild: bool, non_wild: bool| {
        let t = minute_of(vtime);
        if entry.matches(t) && ((non_wild && !entry.is_wildcard()) || (wild && entry.is_wildcard()))
        {
            runs.push(Run { at, for_minute: t });
        }
    };
    let first = Timestamp::from_second(from.as_second().div_euclid(60) * 60).expect("in range");
    let mut virtual_time = clock(first);
    let mut wake = first;
    loop {
        wake = wake
            .checked_add(jiff::SignedDuration::from_secs(60))
            .expect("in range");
        if wake >= to {
            break;
        }
        let time_running = clock(wake);
        let diff = time_running - virtual_time;
        if diff == 1 {
            virtual_time = time_running;
            find_jobs(virtual_time, wake, true, true);
            continue;
        }
        let kind = if diff > 3 * 60 {
            3
        } else if diff > 5 {
            2
        } else if diff > 0 {
            1
        } else if diff > -3 * 60 {
            0
        } else {
            -1
        };
        match kind {
            1 => {
                while virtual_time < time_running {
                    virtual_time += 1;
                    find_jobs(virtual_time, wake, true, true);
                }
            }
            2 => {
                find_jobs(time_running, wake, true, false);
                while virtual_time < time_running {
                    virtual_time += 1;
                    find_jobs(virtual_time, wake, false, true);
                }
            }
            0 => find_jobs(time_running, wake, true, false),
            _ => {
                virtual_time = time_running;
                find_jobs(time_running, wake, true, true);
            }
        }
    }
    runs
}
