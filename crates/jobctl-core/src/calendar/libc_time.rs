//! Broken-down time the way glibc 2.36 handles it: `localtime_r`, `gmtime_r`,
//! `mktime` and `timegm`, reproduced over a [`jiff::tz::TimeZone`].
//!
//! systemd computes calendar elapses by repeatedly normalizing a `struct tm`
//! with `mktime()`. Inside a DST gap or overlap the answer `mktime()` gives
//! depends on the requested `tm_isdst`, on the order in which glibc probes
//! candidate offsets, and on the offset guess it remembers from its previous
//! call. To agree with systemd to the second in every zone, [`Clock`]
//! reproduces glibc's algorithm (time/mktime.c, `__mktime_internal`) step for
//! step, including that remembered guess; `jiff` supplies only the
//! timestamp → (offset, is-DST) conversion that glibc's `localtime_r` does
//! from the same TZif files.
//!
//! This is our own code, written from reading glibc's; the structure follows
//! glibc's so that the two can be compared line by line.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// glibc's `struct tm`, with the fields systemd's calendar code touches.
/// `year` counts from 1900 and `mon` from 0, as in C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tm {
    pub sec: i32,
    pub min: i32,
    pub hour: i32,
    pub mday: i32,
    pub mon: i32,
    pub year: i32,
    pub wday: i32,
    pub yday: i32,
    pub isdst: i32,
}

const TM_YEAR_BASE: i64 = 1900;
const EPOCH_YEAR: i64 = 1970;

/// Days before each month, for normal and leap years (glibc's `__mon_yday`).
const MON_YDAY: [[i64; 13]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

/// Whether `year + 1900` is a leap year (glibc's `leapyear`).
fn leapyear(year: i64) -> bool {
    (year & 3) == 0 && (year % 100 != 0 || ((year / 100) & 3) == ((-(TM_YEAR_BASE / 100)) & 3))
}

/// `(year1-yday1 hour1:min1:sec1) - (year0-yday0 hour0:min0:sec0)` in
/// seconds, with years counted from 1900 and values not necessarily in range
/// (glibc's `ydhms_diff`).
#[allow(clippy::too_many_arguments)]
fn ydhms_diff(
    year1: i64,
    yday1: i64,
    hour1: i64,
    min1: i64,
    sec1: i64,
    year0: i64,
    yday0: i64,
    hour0: i64,
    min0: i64,
    sec0: i64,
) -> i64 {
    // Leap days between the two years, valid for negative years too.
    let a4 = (year1 >> 2) + (TM_YEAR_BASE >> 2) - i64::from(year1 & 3 == 0);
    let b4 = (year0 >> 2) + (TM_YEAR_BASE >> 2) - i64::from(year0 & 3 == 0);
    let a100 = a4.div_euclid(25);
    let b100 = b4.div_euclid(25);
    let a400 = a100 >> 2;
    let b400 = b100 >> 2;
    let intervening_leap_days = (a4 - b4) - (a100 - b100) + (a400 - b400);

    let years = year1 - year0;
    let days = 365 * years + yday1 - yday0 + intervening_leap_days;
    let hours = 24 * days + hour1 - hour0;
    let minutes = 60 * hours + min1 - min0;
    60 * minutes + sec1 - sec0
}

fn tm_diff(year: i64, yday: i64, hour: i64, min: i64, sec: i64, tp: &Tm) -> i64 {
    ydhms_diff(
        year,
        yday,
        hour,
        min,
        sec,
        i64::from(tp.year),
        i64::from(tp.yday),
        i64::from(tp.hour),
        i64::from(tp.min),
        i64::from(tp.sec),
    )
}

/// Do two `tm_isdst` values differ, treating negative as "unknown"?
fn isdst_differ(a: i32, b: i32) -> bool {
    ((a == 0) != (b == 0)) && a >= 0 && b >= 0
}

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian):
/// (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Breaks `local_seconds` (seconds since the epoch, already shifted by the
/// UTC offset) into a [`Tm`]. Returns `None` when the year does not fit.
fn offtime(local_seconds: i64, isdst: i32) -> Option<Tm> {
    let days = local_seconds.div_euclid(86_400);
    let rem = local_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let leap = usize::from(leapyear(y - TM_YEAR_BASE));
    let yday = MON_YDAY[leap][(m - 1) as usize] + d - 1;
    // 1970-01-01 was a Thursday (wday 4).
    let wday = (days + 4).rem_euclid(7);
    Some(Tm {
        sec: (rem % 60) as i32,
        min: ((rem / 60) % 60) as i32,
        hour: (rem / 3600) as i32,
        mday: d as i32,
        mon: (m - 1) as i32,
        year: i32::try_from(y - TM_YEAR_BASE).ok()?,
        wday: wday as i32,
        yday: yday as i32,
        isdst,
    })
}

/// The clock systemd's calendar code runs against: either UTC (`gmtime_r` /
/// `timegm`, for `... UTC` expressions) or a time zone (`localtime_r` /
/// `mktime`), plus the offset guess glibc's `mktime` carries from one call to
/// the next.
pub(crate) struct Clock<'a> {
    zone: Option<&'a TimeZone>,
    /// glibc's `static mktime_offset_t localtime_offset` (or `gmtime_offset`).
    offset_guess: i64,
}

impl<'a> Clock<'a> {
    /// A clock in `zone`, or in UTC when `zone` is `None`, in a process that
    /// has not called `mktime()` yet.
    pub fn new(zone: Option<&'a TimeZone>) -> Self {
        Self::with_guess(zone, 0)
    }

    /// A clock whose `mktime()` starts from `offset_guess` (glibc's
    /// remembered `t - local_fields` of the previous call).
    pub fn with_guess(zone: Option<&'a TimeZone>, offset_guess: i64) -> Self {
        Clock { zone, offset_guess }
    }

    /// The offset guess the next `mktime()` will start from.
    pub fn offset_guess(&self) -> i64 {
        self.offset_guess
    }

    pub fn is_utc(&self) -> bool {
        self.zone.is_none()
    }

    /// `localtime_r` (or `gmtime_r` in UTC mode). `None` when `t` is outside
    /// the range jiff can represent (years -9999..=9999).
    pub fn localtime(&self, t: i64) -> Option<Tm> {
        match self.zone {
            None => offtime(t, 0),
            Some(zone) => {
                let ts = Timestamp::from_second(t).ok()?;
                let info = zone.to_offset_info(ts);
                let offset = i64::from(info.offset().seconds());
                offtime(t + offset, i32::from(info.dst().is_dst()))
            }
        }
    }

    /// `mktime` (or `timegm` in UTC mode): normalizes `tm` in place and
    /// returns the timestamp, or returns -1 and leaves `tm` alone (except that
    /// `timegm` clears `tm_isdst` first, as glibc's does).
    pub fn mktime(&mut self, tm: &mut Tm) -> i64 {
        if self.is_utc() {
            tm.isdst = 0;
        }
        self.mktime_internal(tm)
    }

    /// glibc's `__mktime_internal`: invert `localtime` by probing, starting
    /// from the previous call's offset.
    fn mktime_internal(&mut self, tp: &mut Tm) -> i64 {
        let sec_requested = i64::from(tp.sec);
        let min = i64::from(tp.min);
        let hour = i64::from(tp.hour);
        let mday = i64::from(tp.mday);
        let mon = tp.mon;
        let isdst = tp.isdst;

        // Bring the month into range and adjust the year accordingly.
        let mon_remainder = mon % 12;
        let negative_mon_remainder = i32::from(mon_remainder < 0);
        let mon_years = mon / 12 - negative_mon_remainder;
        let year = i64::from(tp.year) + i64::from(mon_years);
        let mon_yday = MON_YDAY[usize::from(leapyear(year))]
            [(mon_remainder + 12 * negative_mon_remainder) as usize]
            - 1;
        let yday = mon_yday + mday;

        // glibc clamps the seconds because its arithmetic assumes 60-second
        // minutes, then adds the difference back at the end.
        let sec = sec_requested.clamp(0, 59);

        // `int negative_offset_guess = 0 - off` (wrapping into an int).
        let negative_offset_guess = i64::from(0i64.wrapping_sub(self.offset_guess) as i32);
        let t0 = ydhms_diff(
            year,
            yday,
            hour,
            min,
            sec,
            EPOCH_YEAR - TM_YEAR_BASE,
            0,
            0,
            0,
            negative_offset_guess,
        );
        let (mut t, mut t1, mut t2) = (t0, t0, t0);
        let mut dst2 = 0;
        let mut remaining_probes = 6;
        let mut tm;
        let mut matched = true;

        loop {
            tm = match self.localtime(t) {
                Some(tm) => tm,
                None => return -1,
            };
            let dt = tm_diff(year, yday, hour, min, sec, &tm);
            if dt == 0 {
                break;
            }
            let tm_dst = i32::from(tm.isdst != 0);
            if t == t1
                && t != t2
                && (tm.isdst < 0
                    || if isdst < 0 {
                        dst2 <= tm_dst
                    } else {
                        (isdst != 0) != (tm.isdst != 0)
                    })
            {
                // Oscillating between two candidates: the requested time is
                // in a spring-forward gap. Take this one, as glibc does.
                matched = false;
                break;
            }
            remaining_probes -= 1;
            if remaining_probes == 0 {
                return -1;
            }
            t1 = t2;
            t2 = t;
            t += dt;
            dst2 = tm_dst;
        }

        if matched && isdst_differ(isdst, tm.isdst) {
            // The match has the wrong tm_isdst: look for a neighbouring time
            // with the requested one and use its UTC offset.
            const STRIDE: i64 = 601_200;
            const DURATION_MAX: i64 = 536_454_000;
            const DELTA_BOUND: i64 = DURATION_MAX / 2 + STRIDE;
            let mut found = None;
            let mut delta = STRIDE;
            'search: while delta < DELTA_BOUND {
                for direction in [-1i64, 1] {
                    let ot = t + delta * direction;
                    let Some(otm) = self.localtime(ot) else {
                        return -1;
                    };
                    if !isdst_differ(isdst, otm.isdst) {
                        let gt = ot + tm_diff(year, yday, hour, min, sec, &otm);
                        if let Some(gtm) = self.localtime(gt) {
                            found = Some((gt, gtm));
                            break 'search;
                        }
                    }
                }
                delta += STRIDE;
            }
            match found {
                Some((gt, gtm)) => {
                    t = gt;
                    tm = gtm;
                }
                None => return -1,
            }
        }

        // Remember the offset for the next call: t - t0 - negative_offset_guess.
        self.offset_guess = t.wrapping_sub(t0).wrapping_sub(negative_offset_guess);

        if sec_requested != i64::from(tm.sec) {
            let sec_adjustment = i64::from(sec == 0 && tm.sec == 60) - sec + sec_requested;
            t += sec_adjustment;
            tm = match self.localtime(t) {
                Some(tm) => tm,
                None => return -1,
            };
        }

        *tp = tm;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(year: i32, mon: i32, mday: i32, hour: i32, min: i32, sec: i32, isdst: i32) -> Tm {
        Tm {
            sec,
            min,
            hour,
            mday,
            mon: mon - 1,
            year: year - 1900,
            isdst,
            ..Tm::default()
        }
    }

    #[test]
    fn civil_conversion_round_trips() {
        let clock = Clock::new(None);
        for t in [
            -86_400 * 366,
            -1,
            0,
            951_782_400,   // 2000-02-29
            4_107_456_000, // 2100-02-28 (not a leap year)
            7_258_118_399, // 2199-12-31 23:59:59
        ] {
            let tm = clock.localtime(t).unwrap();
            let mut copy = tm;
            copy.wday = -1;
            copy.yday = -1;
            assert_eq!(Clock::new(None).mktime(&mut copy), t, "{tm:?}");
            assert_eq!(copy, tm);
        }
    }

    #[test]
    fn timegm_normalizes_out_of_range_fields() {
        let mut clock = Clock::new(None);
        // 2023-02-31 → 2023-03-03; 24:60 → next day 01:00.
        let mut t = tm(2023, 2, 31, 24, 60, 0, -1);
        let ts = clock.mktime(&mut t);
        assert_eq!((t.mon, t.mday, t.hour, t.min), (2, 4, 1, 0));
        assert_eq!(ts, 1_677_891_600);
        // Month 13 of 2023 is January 2024.
        let mut t = tm(2023, 14, 1, 0, 0, 0, -1);
        clock.mktime(&mut t);
        assert_eq!((t.year, t.mon), (124, 1));
    }

    #[test]
    fn mktime_in_a_gap_follows_glibc() {
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let mut clock = Clock::new(Some(&ny));
        // 2024-03-10 02:30 does not exist in New York.
        let mut t = tm(2024, 3, 10, 2, 30, 0, -1);
        let ts = clock.mktime(&mut t);
        assert!(ts > 0);
        // Either neighbour is 1h away from the wall-clock request.
        assert!(t.hour == 1 || t.hour == 3, "{t:?}");
    }

    #[test]
    fn mktime_honours_isdst_in_an_overlap() {
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let mut clock = Clock::new(Some(&ny));
        // 2024-11-03 01:30 happens twice: EDT (05:30Z) then EST (06:30Z).
        let mut edt = tm(2024, 11, 3, 1, 30, 0, 1);
        assert_eq!(clock.mktime(&mut edt), 1_730_611_800);
        let mut est = tm(2024, 11, 3, 1, 30, 0, 0);
        assert_eq!(clock.mktime(&mut est), 1_730_615_400);
        assert_eq!((edt.isdst, est.isdst), (1, 0));
    }
}
