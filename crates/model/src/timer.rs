//! When a timer fires: the three forms of a BPMN timer event definition (`timeDate`,
//! `timeDuration`, `timeCycle`) read into a [`Schedule`], and the instants it fires at.
//!
//! Times are milliseconds since the epoch, in UTC; calendar spans (`P1M`) are added on the
//! UTC calendar. A schedule is pure: the caller says what time it is.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use flowstone_expr::Expression;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

/// Which of a timer event definition's elements gives its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// `timeDate`: an instant.
    Date,
    /// `timeDuration`: a span from when the timer is set.
    Duration,
    /// `timeCycle`: a repeating interval, or a cron expression.
    Cycle,
}

impl TimerKind {
    /// The element's name.
    pub fn element(self) -> &'static str {
        match self {
            TimerKind::Date => "timeDate",
            TimerKind::Duration => "timeDuration",
            TimerKind::Cycle => "timeCycle",
        }
    }
}

/// A timer event definition as the model writes it: its kind, its text (a time of that kind,
/// or an expression giving one when the timer is set) and the end of a cycle.
#[derive(Debug, Clone)]
pub struct TimerDef {
    /// Which element gives the time.
    pub kind: TimerKind,
    /// The element's text.
    pub time: TimerTime,
    /// Flowable's `endDate` of a cycle: no firing after it.
    pub end: Option<i64>,
}

/// The text of a timer element.
#[derive(Debug, Clone)]
pub enum TimerTime {
    /// A time of the timer's kind, checked at deploy.
    Fixed(String),
    /// An expression (`${delay}`) whose value is such a time, read when the timer is set.
    Expr(Expression),
}

impl TimerDef {
    /// The schedule a timer follows once its text is known (`text`: the fixed text, or the
    /// expression's value).
    ///
    /// # Errors
    /// What is wrong with the text.
    pub fn schedule(&self, text: &str) -> Result<Schedule, String> {
        let schedule = Schedule::parse(self.kind, text)?;
        Ok(match self.end {
            Some(end) => schedule.ending(end),
            None => schedule,
        })
    }
}

/// The instants a timer fires at.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Once, at this instant (at once when it has passed).
    At(i64),
    /// Once, this long after the timer is set (at once when zero or negative).
    After(Span),
    /// `R[n]/…`: a repeating interval.
    Repeat {
        /// How many firings; unbounded when none.
        times: Option<u32>,
        /// The first firing; one `every` after the timer is set when none.
        start: Option<i64>,
        /// The time between firings.
        every: Span,
        /// No firing after it.
        end: Option<i64>,
    },
    /// A cron expression in Quartz' style (seconds first, an optional year).
    Cron {
        /// The expression.
        cron: Box<Cron>,
        /// No firing after it.
        end: Option<i64>,
    },
}

impl Schedule {
    /// Reads the text of a timer element of `kind`; the error says what is wrong with it.
    pub fn parse(kind: TimerKind, text: &str) -> Result<Schedule, String> {
        let text = unquoted(text.trim());
        match kind {
            TimerKind::Date => parse_instant(text)
                .map(Schedule::At)
                .ok_or_else(|| format!("`{text}` is not an ISO-8601 date-time (such as 2026-12-02T10:00:00Z)")),
            TimerKind::Duration => span(text)
                .map(Schedule::After)
                .ok_or_else(|| format!("`{text}` is not an ISO-8601 duration (such as PT10M or P2D)")),
            TimerKind::Cycle if text.starts_with('R') => repeat(text),
            TimerKind::Cycle => cron(text).map(|cron| Schedule::Cron { cron: Box::new(cron), end: None }),
        }
    }

    /// A crontab as bk-sops' periodic tasks (Celery's beat) write it, one field each: minute,
    /// hour, day of week (0 or 7 is Sunday; names too), day of month, month of year; a day
    /// must match both day fields, as Celery reads them. It runs in UTC.
    pub fn crontab(fields: [&str; 5]) -> Result<Schedule, String> {
        let [minute, hour, day_of_week, day_of_month, month_of_year] = fields.map(str::trim);
        if fields.iter().any(|f| f.trim().is_empty() || f.contains(char::is_whitespace)) {
            return Err(format!("each field of a crontab is one word, got {fields:?}"));
        }
        let text = format!("{minute} {hour} {day_of_month} {month_of_year} {day_of_week}");
        let parser = CronParser::builder().seconds(Seconds::Disallowed).dom_and_dow(true).build();
        let cron = parser.parse(&text).map_err(|e| format!("`{text}` is not a crontab ({e})"))?;
        Ok(Schedule::Cron { cron: Box::new(cron), end: None })
    }

    /// The same schedule, ending at `end` (Flowable's `endDate` of a cycle).
    pub fn ending(self, end: i64) -> Schedule {
        match self {
            Schedule::Repeat { times, start, every, .. } => Schedule::Repeat { times, start, every, end: Some(end) },
            Schedule::Cron { cron, .. } => Schedule::Cron { cron, end: Some(end) },
            once => once,
        }
    }

    /// When a timer set at `now` first fires; none when it never does (a cycle that ended).
    pub fn first(&self, now: i64) -> Option<i64> {
        let due = match self {
            Schedule::At(at) => (*at).max(now),
            Schedule::After(span) => add(now, *span)?.max(now),
            Schedule::Repeat { times: Some(0), .. } => return None,
            Schedule::Repeat { start: Some(start), .. } => *start,
            Schedule::Repeat { every, .. } => add(now, *every)?,
            Schedule::Cron { cron, .. } => next_match(cron, now)?,
        };
        self.within_end(due)
    }

    /// When a timer that fired for the `fired`-th time at `last` fires next; none when that
    /// was its last firing.
    pub fn next(&self, last: i64, fired: u32) -> Option<i64> {
        let due = match self {
            Schedule::At(_) | Schedule::After(_) => return None,
            Schedule::Repeat { times: Some(times), .. } if fired >= *times => return None,
            Schedule::Repeat { every, .. } => add(last, *every)?,
            Schedule::Cron { cron, .. } => next_match(cron, last)?,
        };
        self.within_end(due)
    }

    fn within_end(&self, due: i64) -> Option<i64> {
        let end = match self {
            Schedule::Repeat { end, .. } | Schedule::Cron { end, .. } => *end,
            Schedule::At(_) | Schedule::After(_) => None,
        };
        end.is_none_or(|end| due <= end).then_some(due)
    }
}

/// The shortest interval of a repeating cycle.
const MIN_INTERVAL_MS: i64 = 100;

/// A literal written as a string of an expression language (`"PT5M"`) is the text inside.
fn unquoted(text: &str) -> &str {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

/// An ISO-8601 duration (not jiff's friendlier `10 minutes`); a zero-length or negative one
/// is read too.
fn span(text: &str) -> Option<Span> {
    static ISO: jiff::fmt::temporal::SpanParser = jiff::fmt::temporal::SpanParser::new();
    ISO.parse_span(text).ok()
}

/// `instant` plus `span` on the UTC calendar.
fn add(instant: i64, span: Span) -> Option<i64> {
    let at = Timestamp::from_millisecond(instant).ok()?.to_zoned(TimeZone::UTC);
    at.checked_add(span).ok().map(|z| z.timestamp().as_millisecond())
}

/// An ISO-8601 repeating interval: `R[n]/duration`, `R[n]/start/duration`,
/// `R[n]/duration/end` or `R[n]/start/end`.
fn repeat(text: &str) -> Result<Schedule, String> {
    let bad = |why: &str| format!("`{text}` is not an ISO-8601 repeating interval ({why}; such as R5/PT10S)");
    let parts: Vec<&str> = text.split('/').collect();
    let times = match parts[0].strip_prefix('R').unwrap_or_default() {
        "" => None,
        n => Some(n.parse::<u32>().map_err(|_| bad("R is followed by a count of repetitions or nothing"))?),
    };
    let instant = |t: &str| parse_instant(t).ok_or_else(|| bad(&format!("`{t}` is not a date-time")));
    let duration = |t: &str| span(t).ok_or_else(|| bad(&format!("`{t}` is not a duration")));
    let (start, every, end) = match parts[1..] {
        [every] => (None, duration(every)?, None),
        [first, second] if first.starts_with('P') => (None, duration(first)?, Some(instant(second)?)),
        [first, second] if second.starts_with('P') => (Some(instant(first)?), duration(second)?, None),
        [first, second] => {
            let (start, end) = (instant(first)?, instant(second)?);
            (Some(start), Span::new().milliseconds(end - start), None)
        }
        _ => return Err(bad("it has one or two parts after R")),
    };
    // A cycle firing every millisecond would keep the timer service busy for one instance.
    if add(0, every).is_none_or(|ms| ms < MIN_INTERVAL_MS) {
        return Err(bad(&format!("its interval must be at least {MIN_INTERVAL_MS} ms")));
    }
    Ok(Schedule::Repeat { times, start, every, end })
}

/// A cron expression as Flowable (Quartz) writes it: seconds, minutes, hours, day of month,
/// month, day of week (1 is Sunday), an optional year; `?`, `L`, `W` and `#` as Quartz reads them.
fn cron(text: &str) -> Result<Cron, String> {
    let parser =
        CronParser::builder().seconds(Seconds::Required).alternative_weekdays(true).sloppy_ranges(true).build();
    parser.parse(text).map_err(|e| {
        format!(
            "`{text}` is neither an ISO-8601 repeating interval (R5/PT10S) nor a cron expression with seconds ({e})"
        )
    })
}

/// The first instant after `after` (milliseconds) the cron expression matches, in UTC.
fn next_match(cron: &Cron, after: i64) -> Option<i64> {
    let at: Zoned = Timestamp::from_millisecond(after).ok()?.to_zoned(TimeZone::UTC);
    cron.find_next_occurrence(&at, false).ok().map(|z| z.timestamp().as_millisecond())
}

/// Milliseconds since the epoch of an ISO-8601 date-time or date; one without an offset is UTC.
pub fn parse_instant(text: &str) -> Option<i64> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts.as_millisecond());
    }
    // `+0000` (Flowable's own output) is read as `+00:00`.
    let cut = text.len().saturating_sub(5);
    if text.is_ascii()
        && let (head, tail) = text.split_at(cut)
        && (tail.starts_with('+') || tail.starts_with('-'))
        && tail.len() == 5
        && tail[1..].bytes().all(|b| b.is_ascii_digit())
        && let Ok(ts) = format!("{head}{}:{}", &tail[..3], &tail[3..]).parse::<Timestamp>()
    {
        return Some(ts.as_millisecond());
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| text.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02T10:00:00Z.
    const NOW: i64 = 1_796_205_600_000;
    const SECOND: i64 = 1000;

    fn parse(kind: TimerKind, text: &str) -> Schedule {
        Schedule::parse(kind, text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn instants_with_offsets_flowable_offsets_no_offset_and_dates_are_read() {
        let at = 1_366_193_863_902; // 2013-04-17T10:17:43.902Z
        assert_eq!(parse_instant("2013-04-17T10:17:43.902Z"), Some(at));
        assert_eq!(parse_instant("2013-04-17T10:17:43.902+0000"), Some(at));
        assert_eq!(parse_instant("2013-04-17T12:17:43.902+02:00"), Some(at));
        assert_eq!(parse_instant("2013-04-17T10:17:43.902"), Some(at));
        assert_eq!(parse_instant("2013-04-17"), Some(1_366_156_800_000));
        assert_eq!(parse_instant("soon"), None);
        assert_eq!(parse_instant("2013-04-17T10:17€"), None, "no panic on text that is not ASCII");
    }

    #[test]
    fn a_date_fires_once_at_its_instant_or_at_once_when_it_has_passed() {
        let date = parse(TimerKind::Date, "2026-12-02T10:00:05Z");
        assert_eq!(date.first(NOW), Some(NOW + 5 * SECOND));
        assert_eq!(date.first(NOW + 60 * SECOND), Some(NOW + 60 * SECOND));
        assert_eq!(date.next(NOW + 5 * SECOND, 1), None);
    }

    #[test]
    fn a_duration_counts_from_when_the_timer_is_set() {
        assert_eq!(parse(TimerKind::Duration, "PT10S").first(NOW), Some(NOW + 10 * SECOND));
        assert_eq!(parse(TimerKind::Duration, "P2D").first(NOW), Some(NOW + 2 * 86_400 * SECOND));
        assert_eq!(parse(TimerKind::Duration, "\"PT0.5S\"").first(NOW), Some(NOW + 500), "a quoted literal");
        assert_eq!(parse(TimerKind::Duration, "PT0S").first(NOW), Some(NOW), "zero: at once");
        assert_eq!(parse(TimerKind::Duration, "-PT5S").first(NOW), Some(NOW), "negative: at once");
        // A month is a calendar month: December has 31 days.
        assert_eq!(parse(TimerKind::Duration, "P1M").first(NOW), Some(NOW + 31 * 86_400 * SECOND));
    }

    #[test]
    fn a_repeating_interval_fires_its_count_from_its_start_until_its_end() {
        let five = parse(TimerKind::Cycle, "R5/PT10S");
        assert_eq!(five.first(NOW), Some(NOW + 10 * SECOND));
        assert_eq!(five.next(NOW + 10 * SECOND, 1), Some(NOW + 20 * SECOND));
        assert_eq!(five.next(NOW + 50 * SECOND, 5), None, "five firings, then done");
        let hourly = parse(TimerKind::Cycle, "R/2026-12-02T12:00:00Z/PT1H");
        assert_eq!(hourly.first(NOW), Some(NOW + 2 * 3600 * SECOND));
        assert_eq!(hourly.next(NOW, 1_000_000), Some(NOW + 3600 * SECOND), "unbounded");
        let until = parse(TimerKind::Cycle, "R/PT1H/2026-12-02T12:30:00Z");
        assert_eq!(until.next(NOW + 2 * 3600 * SECOND, 2), None, "the next one is past the end");
        let ended = parse(TimerKind::Cycle, "R3/PT1H").ending(NOW + 3600 * SECOND);
        assert_eq!((ended.first(NOW), ended.next(NOW + 3600 * SECOND, 1)), (Some(NOW + 3600 * SECOND), None));
        let between = parse(TimerKind::Cycle, "R2/2026-12-02T10:00:00Z/2026-12-02T10:15:00Z");
        assert_eq!(between.next(NOW, 1), Some(NOW + 15 * 60 * SECOND));
    }

    #[test]
    fn a_celery_crontab_reads_its_fields_in_bk_sops_order_and_needs_both_days() {
        let at = |text: &str| parse_instant(text).unwrap_or_else(|| panic!("{text}"));
        let every_15_past_3 = Schedule::crontab(["*/15", "3", "*", "*", "*"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(every_15_past_3.first(at("2026-12-02T03:07:00Z")), Some(at("2026-12-02T03:15:00Z")));
        assert_eq!(every_15_past_3.next(at("2026-12-02T03:45:00Z"), 3), Some(at("2026-12-03T03:00:00Z")));
        // Midnight of a Monday that is also the 1st to 7th: the first Monday of the month.
        let first_monday = Schedule::crontab(["0", "0", "1", "1-7", "*"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first_monday.first(at("2026-12-02T00:00:00Z")), Some(at("2026-12-07T00:00:00Z")));
        let sunday = Schedule::crontab(["30", "12", "sun", "*", "*"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sunday.first(at("2026-12-02T00:00:00Z")), Some(at("2026-12-06T12:30:00Z")));
        for bad in [
            ["61", "*", "*", "*", "*"],
            ["*", "*", "*", "*", ""],
            ["1 2", "*", "*", "*", "*"],
            ["*", "x", "*", "*", "*"],
        ] {
            assert!(Schedule::crontab(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cron_cycle_is_read_as_quartz_writes_it() {
        // Every 5 minutes at second 0.
        let every = parse(TimerKind::Cycle, "0 0/5 * * * ?");
        assert_eq!(every.first(NOW + SECOND), Some(NOW + 5 * 60 * SECOND));
        assert_eq!(every.next(NOW + 5 * 60 * SECOND, 1), Some(NOW + 10 * 60 * SECOND));
        // 10:30:15 on Mondays (2 in Quartz); 2026-12-02 is a Wednesday, so the next is the 7th.
        let monday = parse(TimerKind::Cycle, "15 30 10 ? * 2");
        assert_eq!(monday.first(NOW), Some(NOW + (5 * 86_400 + 30 * 60 + 15) * SECOND));
        assert_eq!(monday.clone().ending(NOW).first(NOW), None, "past its end date");
    }

    #[test]
    fn malformed_times_are_refused_with_what_is_wrong() {
        let refused = |kind, text: &str| Schedule::parse(kind, text).err().unwrap_or_default();
        assert!(refused(TimerKind::Date, "tomorrow").contains("ISO-8601 date-time"));
        assert!(refused(TimerKind::Duration, "10 minutes").contains("ISO-8601 duration"));
        assert!(refused(TimerKind::Cycle, "Rx/PT10S").contains("count of repetitions"));
        assert!(refused(TimerKind::Cycle, "R5/PT0S").contains("at least 100 ms"));
        assert!(refused(TimerKind::Cycle, "R/PT0.05S").contains("at least 100 ms"), "a hostile cycle is bounded");
        assert!(refused(TimerKind::Cycle, "R/-PT1H").contains("at least 100 ms"));
        assert!(refused(TimerKind::Cycle, "R5/later").contains("`later` is not"));
        assert!(refused(TimerKind::Cycle, "R5/PT1S/PT2S/PT3S").contains("one or two parts"));
        assert!(refused(TimerKind::Cycle, "every day").contains("cron"));
        assert!(refused(TimerKind::Cycle, "0 0 25 * * ?").contains("cron"), "an hour past 23");
    }
}
