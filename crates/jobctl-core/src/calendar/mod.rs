//! systemd calendar expressions (`OnCalendar=`), parsed, normalized and
//! computed exactly as systemd 252 does, without systemd.
//!
//! The grammar is systemd.time(7)'s "Calendar Events": weekdays, dates,
//! times, `*`, lists, ranges (`..`), repetitions (`/`), the `~` end-of-month
//! forms, fractional seconds, `@EPOCH`, the shorthands (`daily`, `weekly`, …)
//! and a trailing time zone. Acceptance, the normalized form and every elapse
//! match `systemd-analyze calendar` on the same host; the differential tests
//! in `tests/calendar_oracle.rs` hold the engine to that.
//!
//! # API
//!
//! ```
//! use jobctl_core::calendar::{CalendarSpec, ZoneLookup};
//! use jiff::{Timestamp, tz::TimeZone};
//!
//! struct Zones;
//! impl ZoneLookup for Zones {
//!     fn zone(&self, name: &str) -> Option<TimeZone> {
//!         (name == "UTC").then_some(TimeZone::UTC)
//!     }
//! }
//!
//! let spec = CalendarSpec::parse("Mon..Fri 9:00")?;
//! assert_eq!(spec.normalized(), "Mon..Fri *-*-* 09:00:00");
//! let after: Timestamp = "2025-01-04T12:00:00Z".parse()?; // a Saturday
//! let next = spec.next_elapse(after, &TimeZone::UTC, &Zones)?;
//! assert_eq!(next, Some("2025-01-06T09:00:00Z".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`CalendarSpec::parse`] checks syntax only: a trailing word that looks
//!   like a zone name is taken as one, and whether that zone exists is
//!   checked by [`CalendarSpec::check_zone`] or when computing.
//!   [`CalendarSpec::parse_with`] takes [`ParseOptions`]: a [`ZoneLookup`] to
//!   check zones while parsing (exactly systemd's behaviour), and the local
//!   zone's abbreviations ([`LocalAbbreviations`]), which systemd also
//!   accepts as a suffix (`12:00 EDT` on a New York host).
//! - [`CalendarSpec::normalized`] is `systemd-analyze calendar`'s
//!   "Normalized form".
//! - [`CalendarSpec::next_elapse`] returns the first elapse strictly after a
//!   time, `None` when the expression never elapses again (impossible dates,
//!   past 2199). Expressions without a zone are computed in `local` (the
//!   host's zone for systemd); named zones come from the [`ZoneLookup`].
//!   [`CalendarSpec::elapses`] iterates.
//! - The core does no I/O: the caller supplies zones. The `jobctl` binary's
//!   lookup reads `/usr/share/zoneinfo` as systemd does.
//!
//! # How exactness is achieved
//!
//! systemd computes with glibc's `mktime()`, and its answers inside DST gaps
//! and overlaps follow from glibc's probing algorithm. `libc_time.rs`
//! reproduces that algorithm over jiff's reading of the same TZif files, and
//! `next.rs` reproduces systemd's `find_next()` loop on top of it.

mod error;
mod gap;
mod libc_time;
mod next;
mod parse;
mod spec;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use error::{CalendarError, ErrorKind};
pub use gap::Gap;
pub use spec::CalendarWarning;

use libc_time::Clock;
use next::NoElapse;
pub(crate) use spec::Component;
use spec::{Spec, Zone};

/// Finds time zones by their exact zoneinfo name; defined beside the other
/// inputs the core takes from the world ([`crate::context`]).
pub use crate::context::ZoneLookup;

/// The local zone's standard and daylight-saving abbreviations, as glibc
/// holds them in `tzname[0]` and `tzname[1]` (e.g. `EST` and `EDT`). systemd
/// accepts either as an expression's suffix, meaning local time with DST
/// forced off or on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAbbreviations {
    pub standard: String,
    pub daylight: String,
}

impl LocalAbbreviations {
    /// The abbreviations glibc reports for `zone` after converting `at`:
    /// the one in effect at `at`, and the next one of the other kind (the
    /// same one when the zone has no DST any more).
    pub fn of(zone: &TimeZone, at: Timestamp) -> LocalAbbreviations {
        let info = zone.to_offset_info(at);
        let current = info.abbreviation().to_string();
        let is_dst = info.dst().is_dst();
        let other = zone
            .following(at)
            .take(8)
            .find(|t| t.dst().is_dst() != is_dst)
            .map(|t| t.abbreviation().to_string())
            .unwrap_or_else(|| current.clone());
        if is_dst {
            LocalAbbreviations {
                standard: other,
                daylight: current,
            }
        } else {
            LocalAbbreviations {
                standard: current,
                daylight: other,
            }
        }
    }
}

/// How [`CalendarSpec::parse_with`] resolves a trailing zone word.
#[derive(Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// Checks that a trailing zone exists, as systemd does while parsing.
    /// Without it, a trailing word containing a letter is taken as a zone
    /// name and checked later.
    pub zones: Option<&'a dyn ZoneLookup>,
    /// The local zone's abbreviations, accepted as suffixes (systemd's
    /// `tzname[]` check). Without them such a suffix must be a zone name.
    pub local_abbreviations: Option<&'a LocalAbbreviations>,
}

impl fmt::Debug for ParseOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseOptions")
            .field("zones", &self.zones.map(|_| "dyn ZoneLookup"))
            .field("local_abbreviations", &self.local_abbreviations)
            .finish()
    }
}

/// A parsed, normalized systemd calendar expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    source: String,
    spec: Spec,
}

impl CalendarSpec {
    /// Parses `expr` as systemd does, checking syntax and ranges. A trailing
    /// zone name is not checked for existence (see [`Self::check_zone`]).
    pub fn parse(expr: &str) -> Result<CalendarSpec, CalendarError> {
        Self::parse_with(expr, &ParseOptions::default())
    }

    /// Parses `expr` with zone checks and local abbreviations, exactly as
    /// systemd on a host with those zones.
    pub fn parse_with(
        expr: &str,
        options: &ParseOptions<'_>,
    ) -> Result<CalendarSpec, CalendarError> {
        let spec = parse::parse(expr, options)?;
        Ok(CalendarSpec {
            source: expr.to_string(),
            spec,
        })
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The normalized form, exactly `systemd-analyze calendar`'s
    /// "Normalized form" (e.g. `Mon..Fri *-*-* 09:00:00`).
    pub fn normalized(&self) -> String {
        self.spec.to_normalized_string()
    }

    /// The zone written in the expression: `Some("UTC")` for a ` UTC`
    /// suffix, `Some(name)` for an IANA name, `None` for local time
    /// (including a local abbreviation such as `EDT`, see
    /// [`Self::local_abbreviation`]).
    pub fn timezone(&self) -> Option<&str> {
        match &self.spec.zone {
            Zone::Utc => Some("UTC"),
            Zone::Named(name) => Some(name),
            Zone::Local | Zone::LocalAbbreviation { .. } => None,
        }
    }

    /// The byte range of the zone suffix in [`Self::source`], if any.
    pub fn timezone_span(&self) -> Option<std::ops::Range<usize>> {
        self.spec.zone_span.clone()
    }

    /// A local-zone abbreviation suffix (`EST`, `EDT`) and whether it forces
    /// daylight saving time on.
    pub fn local_abbreviation(&self) -> Option<(&str, bool)> {
        match &self.spec.zone {
            Zone::LocalAbbreviation { name, dst } => Some((name, *dst == 1)),
            _ => None,
        }
    }

    /// Parts that systemd accepts but computes wrongly (see
    /// [`CalendarWarning`]); jobctl computes them as systemd does, so these
    /// are advice, not errors.
    pub fn warnings(&self) -> Vec<CalendarWarning> {
        spec::open_ended_repetition_warnings(&self.spec)
    }

    /// The shortest time the expression can leave between two consecutive
    /// elapses, when that is under a minute, with where its seconds are
    /// written; `None` when elapses are at least a minute apart.
    pub fn shortest_gap(&self) -> Option<Gap> {
        gap::shortest_gap(&self.spec)
    }

    /// The same expression for every year (its year list dropped): whether
    /// the rest of it names a time that exists at all.
    pub(crate) fn any_year(&self) -> CalendarSpec {
        let mut spec = self.spec.clone();
        spec.year.clear();
        CalendarSpec {
            source: self.source.clone(),
            spec,
        }
    }

    /// The parsed, normalized expression, for the cron export
    /// ([`crate::export`]), which reads its value sets.
    pub(crate) fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Whether elapses are computed in UTC (a ` UTC` suffix or `@EPOCH`).
    pub fn is_utc(&self) -> bool {
        self.spec.utc
    }

    /// Checks that the expression's zone exists in `zones` (systemd rejects
    /// the expression otherwise). `Ok` when there is no named zone.
    pub fn check_zone(&self, zones: &dyn ZoneLookup) -> Result<(), CalendarError> {
        self.resolve_named_zone(zones).map(|_| ())
    }

    fn resolve_named_zone(
        &self,
        zones: &dyn ZoneLookup,
    ) -> Result<Option<TimeZone>, CalendarError> {
        let Zone::Named(name) = &self.spec.zone else {
            return Ok(None);
        };
        let span = self.spec.zone_span.clone().unwrap_or(0..0);
        if let Some(plain) = name.strip_prefix("right/") {
            return Err(CalendarError::new(
                ErrorKind::UnsupportedZone,
                format!("time zone \"{name}\" counts leap seconds, which jobctl does not compute"),
                span,
            )
            .with_hint(format!(
                "use the zone without the right/ prefix: \"{plain}\""
            )));
        }
        match zones.zone(name) {
            Some(tz) => Ok(Some(tz)),
            None => Err(parse::unknown_zone_error(name, span, Some(zones))),
        }
    }

    /// The first elapse strictly after `after`, as systemd computes it;
    /// `None` if the expression never elapses again.
    ///
    /// `local` is the zone for expressions without a zone suffix (systemd
    /// uses the host's zone); `zones` resolves a named suffix. Sub-microsecond
    /// parts of `after` are ignored, as systemd counts microseconds.
    pub fn next_elapse(
        &self,
        after: Timestamp,
        local: &TimeZone,
        zones: &dyn ZoneLookup,
    ) -> Result<Option<Timestamp>, CalendarError> {
        self.elapses(after, local, zones)?.next().transpose()
    }

    /// The elapses after `after`, in order (what `systemd-analyze calendar
    /// --iterations=N` prints). The zone is resolved once, up front.
    ///
    /// glibc's `mktime()` memory starts as if the last call had been for a
    /// time near `after` in `local` (see [`MktimeMemory`]).
    pub fn elapses<'a>(
        &'a self,
        after: Timestamp,
        local: &TimeZone,
        zones: &dyn ZoneLookup,
    ) -> Result<Elapses<'a>, CalendarError> {
        self.elapses_with(after, local, zones, MktimeMemory::at(local, after))
    }

    /// Like [`Self::elapses`], starting from a given `mktime()` memory; read
    /// it back with [`Elapses::memory`] to carry it to the next expression
    /// as one process would (`jobctl calendar` does this to reproduce
    /// `systemd-analyze calendar` exactly).
    pub fn elapses_with<'a>(
        &'a self,
        after: Timestamp,
        local: &TimeZone,
        zones: &dyn ZoneLookup,
        memory: MktimeMemory,
    ) -> Result<Elapses<'a>, CalendarError> {
        let named = self.resolve_named_zone(zones)?;
        // systemd computes expressions with a zone in a forked child: the
        // child starts from the parent's memory and its own is thrown away.
        let in_child = named.is_some();
        let zone = if self.spec.utc {
            None
        } else {
            Some(named.unwrap_or_else(|| local.clone()))
        };
        Ok(Elapses {
            spec: &self.spec,
            zone,
            in_child,
            memory,
            after: Some(after),
        })
    }
}

/// glibc's `mktime()` remembers the UTC offset of its previous result (one
/// number per process) and starts its next search there. Inside an overlap
/// where both sides have the same DST flag (a change of standard offset, as
/// in Africa/Casablanca in 1985 or Asia/Almaty in 2024) that memory alone
/// decides which occurrence `mktime()` returns, so systemd's answer depends
/// on what the process computed before. jobctl models it explicitly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MktimeMemory(i64);

impl MktimeMemory {
    /// A process that has not called `mktime()` yet (how `systemd-analyze`
    /// starts).
    pub fn fresh() -> Self {
        MktimeMemory(0)
    }

    /// As after a `mktime()` of a time near `at` in `zone`: the state of a
    /// long-running process such as systemd's manager, which keeps computing
    /// elapses near the present.
    pub fn at(zone: &TimeZone, at: Timestamp) -> Self {
        MktimeMemory(-i64::from(zone.to_offset(at).seconds()))
    }
}

impl FromStr for CalendarSpec {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CalendarSpec::parse(s)
    }
}

impl fmt::Display for CalendarSpec {
    /// Writes the normalized form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

/// Iterator over the elapses of a [`CalendarSpec`]; see
/// [`CalendarSpec::elapses`]. Stops after the last elapse or an error.
pub struct Elapses<'a> {
    spec: &'a Spec,
    /// `None` computes in UTC.
    zone: Option<TimeZone>,
    /// Computed in a throw-away child (expressions with a zone suffix).
    in_child: bool,
    memory: MktimeMemory,
    after: Option<Timestamp>,
}

impl Elapses<'_> {
    /// The `mktime()` memory of the process after the elapses computed so far.
    pub fn memory(&self) -> MktimeMemory {
        self.memory
    }
}

impl Iterator for Elapses<'_> {
    type Item = Result<Timestamp, CalendarError>;

    fn next(&mut self) -> Option<Self::Item> {
        let after = self.after.take()?;
        let mut clock = Clock::with_guess(self.zone.as_ref(), self.memory.0);
        let result = next_after(self.spec, after, &mut clock);
        // UTC computations use timegm(), whose memory is separate and
        // irrelevant (UTC has no overlaps).
        if !self.in_child && self.zone.is_some() {
            self.memory = MktimeMemory(clock.offset_guess());
        }
        match result {
            Ok(Some(ts)) => {
                self.after = Some(ts);
                Some(Ok(ts))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

fn next_after(
    spec: &Spec,
    after: Timestamp,
    clock: &mut Clock<'_>,
) -> Result<Option<Timestamp>, CalendarError> {
    let usec = after.as_microsecond();
    let Ok(usec) = u64::try_from(usec) else {
        return Err(CalendarError::new(
            ErrorKind::BaseTimeOutOfRange,
            "systemd computes elapses only from times after 1970-01-01",
            0..0,
        ));
    };
    match next::next_usec(spec, usec, clock) {
        Ok(next) => {
            let ts = Timestamp::from_microsecond(next as i64).map_err(|_| {
                CalendarError::new(ErrorKind::Compute, "elapse is out of range", 0..0)
            })?;
            Ok(Some(ts))
        }
        Err(NoElapse::Never) => Ok(None),
        Err(NoElapse::BaseOutOfRange) => Err(CalendarError::new(
            ErrorKind::BaseTimeOutOfRange,
            "systemd computes elapses only from times up to 9999-12-30 23:59:59 UTC",
            0..0,
        )),
        Err(NoElapse::InfiniteLoop) => Err(CalendarError::new(
            ErrorKind::InfiniteLoop,
            "systemd gives up after 1000 steps (\"Infinite loop in calendar calculation\") \
             and the timer fails",
            0..0,
        )
        .with_hint(
            "this happens for some times next to DST changes; a time that is not in the \
             gap or overlap (e.g. a whole hour) avoids it",
        )),
        Err(NoElapse::Compute) => Err(CalendarError::new(
            ErrorKind::Compute,
            "systemd cannot compute the next elapse (mktime failed)",
            0..0,
        )),
    }
}

/// The elapses of several expressions together, in order: a job's
/// schedules, the `OnCalendar=` lines of one timer, a cron line's
/// translation. Each expression is computed on its own (from its own
/// `mktime()` memory), as systemd does for the lines of one timer; a time at
/// which several fire comes once, as systemd fires once. Expressions that
/// never elapse again drop out; an error ends the sequence with it.
pub struct UnionElapses<'a> {
    each: Vec<std::iter::Peekable<Elapses<'a>>>,
}

impl<'a> UnionElapses<'a> {
    pub fn new(
        specs: &'a [CalendarSpec],
        after: Timestamp,
        local: &TimeZone,
        zones: &dyn ZoneLookup,
    ) -> Result<Self, CalendarError> {
        let mut each = Vec::with_capacity(specs.len());
        for spec in specs {
            each.push(spec.elapses(after, local, zones)?.peekable());
        }
        Ok(UnionElapses { each })
    }
}

impl Iterator for UnionElapses<'_> {
    type Item = Result<Timestamp, CalendarError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, it) in self.each.iter_mut().enumerate() {
            match it.peek() {
                Some(Ok(ts)) if best.is_none_or(|(_, b)| *ts < b) => best = Some((i, *ts)),
                Some(Err(_)) => return it.next(),
                _ => {}
            }
        }
        let (i, ts) = best?;
        self.each[i].next();
        // Several expressions may fire at the same time; systemd fires once.
        for it in self.each.iter_mut() {
            while it
                .peek()
                .is_some_and(|r| r.as_ref().is_ok_and(|t| *t == ts))
            {
                it.next();
            }
        }
        Some(Ok(ts))
    }
}

/// The earliest next elapse of several expressions: the first of
/// [`UnionElapses`]. `None` if none elapses.
pub fn next_elapse_of_any(
    specs: &[CalendarSpec],
    after: Timestamp,
    local: &TimeZone,
    zones: &dyn ZoneLookup,
) -> Result<Option<Timestamp>, CalendarError> {
    UnionElapses::new(specs, after, local, zones)?
        .next()
        .transpose()
}

#[cfg(test)]
mod tests;
