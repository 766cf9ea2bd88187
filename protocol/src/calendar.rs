//! Working days and deadlines.
//!
//! Deadlines in the domain are counted in working days (DOMAIN.md): weekends and public holidays
//! are excluded, and some weekend days are worked instead (调休上班). This module turns an
//! instant into a date in China, and counts working days with a [`Calendar`] of those
//! exceptions. Invariants:
//!
//! - Pure: no clock (the current time is always a parameter), no I/O (the official calendar is
//!   compiled in from `data/prc-calendar.txt`), so node, witness and auditor agree on every
//!   deadline, on replay too.
//! - Dates in China are UTC+8 all year round (China has no daylight saving time).
//! - Inside the years a calendar covers, a day is a working day iff it is listed as a workday,
//!   or it is Monday to Friday and not listed as a holiday. Outside them the calendar does not
//!   know, and says so: every question about a day of a year it does not cover answers
//!   [`CalendarGap`] (`calendar_year_missing`) naming that year, never a Monday–Friday guess.
//! - Covered years need not be contiguous: the built-in years, plus each year published later by
//!   a configuration update, added by [`Calendar::merge`], which refuses a year already covered
//!   (a published year is never edited: deadlines judged before would change on replay).
//! - "Within n working days of receiving" ends at the end (China time) of the n-th working day
//!   strictly after the day of receipt; see [`Calendar::deadline_checked`].
//!
//! # The days a computation needs
//!
//! A computation needs exactly the dates it must classify as working or not, and fails with the
//! earliest year among them that the calendar does not cover:
//!
//! - [`Calendar::add_working_days`]`(d, n)` and so [`Calendar::deadline_checked`]: every date
//!   strictly after `d` (the day of receipt never counts) up to and including the result. With
//!   `n = 0` none. When it fails, the walk reached the missing year without finding the n-th
//!   working day, so the deadline, once that year is published, falls in that year or later.
//! - [`Calendar::working_days_between`]`(a, b)`: every date in (min(a, b), max(a, b)].
//! - [`Calendar::overdue_checked`]: the deadline's dates first (its gap, if any, is the one
//!   reported), then every date in (min(today, deadline), max(today, deadline)], today being the
//!   China date of "now". Whether the day after today is a working day is never needed.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::CALENDAR_YEARS_MAX;

/// Milliseconds in a day.
const DAY_MS: i128 = 86_400_000;

/// China Standard Time is UTC+8, all year.
const CHINA_OFFSET_MS: i128 = 8 * 3_600_000;

/// The official calendar's source, compiled in: the built-in calendar of epoch 0.
pub const PRC_CALENDAR_TEXT: &str = include_str!("../data/prc-calendar.txt");

/// SHA-256 of [`PRC_CALENDAR_TEXT`] (lowercase hex), as `docs/FORMAT.md` publishes it. A test
/// pins it, so the built-in calendar cannot change without this line and the document changing.
pub const PRC_CALENDAR_SHA256: &str =
    "1f312e48c16088a376dacda40fae93d6037331a971fbac972ab35d490d95aea3";

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// Why a text or a triple is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is not of the form `YYYY-MM-DD`.
    #[error("date {text:?} is not of the form YYYY-MM-DD")]
    BadFormat {
        /// The text given.
        text: String,
    },
    /// The month or day does not exist.
    #[error("date {year:04}-{month:02}-{day:02} does not exist")]
    DoesNotExist {
        /// The year given.
        year: i32,
        /// The month given.
        month: u8,
        /// The day given.
        day: u8,
    },
}

impl DateError {
    /// A stable snake_case name for the fault. Never renamed or reused.
    pub fn name(&self) -> &'static str {
        match self {
            DateError::BadFormat { .. } => "date_bad_format",
            DateError::DoesNotExist { .. } => "date_does_not_exist",
        }
    }
}

/// A date in the proleptic Gregorian calendar, with no time zone.
///
/// Always exists (no 30 February). Ordered chronologically. Written `YYYY-MM-DD` (years outside
/// 0..=9999 take more digits or a leading `-`), in `Display`, `FromStr` and serde alike.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order matters: the derived `Ord` compares year, then month, then day.
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// The date `year-month-day`, if it exists.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, DateError> {
        if month == 0 || month > 12 || day == 0 || day > days_in_month(year, month) {
            return Err(DateError::DoesNotExist { year, month, day });
        }
        Ok(Date { year, month, day })
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before it), by Howard Hinnant's `days_from_civil`.
    pub fn to_days(self) -> i64 {
        // Years start in March here, so the leap day is the last day of the year.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400; // 0..=399
        let month_from_march = (i64::from(self.month) + 9) % 12; // March is 0
        let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(self.day) - 1; // 0..=365
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` days after 1970-01-01 (before it if negative): the inverse of
    /// [`Date::to_days`], by Howard Hinnant's `civil_from_days`.
    ///
    /// # Panics
    ///
    /// If the year does not fit an `i32` (|days| beyond about 7.8 × 10^11). Every instant in
    /// `u64` milliseconds, plus `u32::MAX` working days, is far inside that.
    pub fn from_days(days: i64) -> Date {
        let shifted = days + 719_468; // days since 0000-03-01
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097; // 0..=146_096
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // 1..=31
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let year = i32::try_from(year).expect("date within the i32 year range");
        // month is 1..=12 and day 1..=31, so the casts cannot truncate.
        let date = Date {
            year,
            month: month as u8,
            day: day as u8,
        };
        assert_eq!(date.to_days(), days);
        date
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday, so day -3 was a Monday.
        match (self.to_days() + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    /// The next day.
    pub fn next(self) -> Date {
        Date::from_days(self.to_days() + 1)
    }
}

/// Gregorian leap year: divisible by 4, except centuries not divisible by 400.
fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Requires a month in 1..=12.
fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.year < 0 {
            f.write_str("-")?;
        }
        let year = self.year.unsigned_abs();
        write!(f, "{year:04}-{:02}-{:02}", self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = DateError;

    /// Parses `YYYY-MM-DD`: at least four year digits (optionally after a `-`), then exactly
    /// two month and two day digits. No surrounding whitespace.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad_format = || DateError::BadFormat {
            text: text.to_string(),
        };
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut parts = rest.split('-');
        let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_format());
        };
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if year.len() < 4 || month.len() != 2 || day.len() != 2 {
            return Err(bad_format());
        }
        if !all_digits(year) || !all_digits(month) || !all_digits(day) {
            return Err(bad_format());
        }
        let year: i32 = year.parse().map_err(|_| bad_format())?;
        let year = if negative { -year } else { year };
        // Two ASCII digits always fit a u8.
        let month: u8 = month.parse().map_err(|_| bad_format())?;
        let day: u8 = day.parse().map_err(|_| bad_format())?;
        Date::new(year, month, day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The date in China (UTC+8) at `time_ms` milliseconds after the Unix epoch.
pub fn china_date(time_ms: u64) -> Date {
    let days = (i128::from(time_ms) + CHINA_OFFSET_MS).div_euclid(DAY_MS);
    // At most u64::MAX / DAY_MS + 1, about 2.1 × 10^11: fits an i64.
    Date::from_days(days as i64)
}

/// The last millisecond of `date` in China (23:59:59.999 UTC+8), in milliseconds after the Unix
/// epoch. Saturates: 0 for dates that end before the epoch, `u64::MAX` for dates that end after
/// the last representable instant.
pub fn china_day_end_ms(date: Date) -> u64 {
    let end_ms = (i128::from(date.to_days()) + 1) * DAY_MS - CHINA_OFFSET_MS - 1;
    u64::try_from(end_ms.max(0)).unwrap_or(u64::MAX)
}

/// What a calendar says about a listed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// A public holiday: a day off, whatever weekday it is.
    Holiday,
    /// A swapped working day (调休上班): a weekend day that is worked.
    Workday,
}

impl DayKind {
    /// The word used in the calendar file.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
}

/// Why a calendar text does not parse. Lines are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A `years` line that is not `years FIRST LAST` with FIRST <= LAST.
    #[error("line {line}: {text:?} is not `years FIRST LAST` with FIRST <= LAST")]
    BadYears {
        /// The line number.
        line: usize,
        /// The line, without its comment.
        text: String,
    },
    /// A second `years` line.
    #[error("line {line}: years already declared on line {first_line}")]
    YearsRepeated {
        /// The line number.
        line: usize,
        /// The line that declared them first.
        first_line: usize,
    },
    /// A date line before the `years` line.
    #[error("line {line}: date listed before the `years FIRST LAST` line")]
    DateBeforeYears {
        /// The line number.
        line: usize,
    },
    /// No `years` line at all.
    #[error("calendar has no `years FIRST LAST` line")]
    MissingYears,
    /// The first word is neither `years` nor a valid date.
    #[error("line {line}: {source}")]
    BadDate {
        /// The line number.
        line: usize,
        /// What is wrong with the date.
        source: DateError,
    },
    /// The second word is neither `holiday` nor `workday`.
    #[error("line {line}: unknown kind {kind:?}, expected `holiday` or `workday`")]
    UnknownKind {
        /// The line number.
        line: usize,
        /// The word found (empty if missing).
        kind: String,
    },
    /// A date outside the declared years.
    #[error("line {line}: {date} is outside the declared years {first_year} to {last_year}")]
    OutsideYears {
        /// The line number.
        line: usize,
        /// The date.
        date: Date,
        /// The first year declared.
        first_year: i32,
        /// The last year declared.
        last_year: i32,
    },
    /// A date listed as a holiday on one line and as a workday on another.
    #[error("line {line}: {date} is listed both as a holiday and as a workday (line {first_line})")]
    HolidayAlsoWorkday {
        /// The line number of the second listing.
        line: usize,
        /// The date.
        date: Date,
        /// The line of the first listing.
        first_line: usize,
    },
    /// A date listed twice with the same kind.
    #[error("line {line}: {date} is already listed on line {first_line}")]
    DuplicateDate {
        /// The line number of the second listing.
        line: usize,
        /// The date.
        date: Date,
        /// The line of the first listing.
        first_line: usize,
    },
    /// A `years` line declaring more than [`CALENDAR_YEARS_MAX`] years.
    #[error("line {line}: years {first_year} to {last_year} are more than {max} years")]
    TooManyYears {
        /// The line number.
        line: usize,
        /// The first year declared.
        first_year: i32,
        /// The last year declared.
        last_year: i32,
        /// [`CALENDAR_YEARS_MAX`].
        max: usize,
    },
    /// [`Calendar::merge`] of a calendar covering a year already covered: a published year is
    /// never edited or published again.
    #[error("the working-day calendar of {year} is already published and cannot be replaced")]
    YearAlreadyCovered {
        /// The earliest year covered by both calendars.
        year: i32,
    },
}

impl CalendarError {
    /// A stable snake_case name for the fault. Never renamed or reused.
    pub fn name(&self) -> &'static str {
        match self {
            CalendarError::BadYears { .. } => "calendar_bad_years",
            CalendarError::YearsRepeated { .. } => "calendar_years_repeated",
            CalendarError::DateBeforeYears { .. } => "calendar_date_before_years",
            CalendarError::MissingYears => "calendar_missing_years",
            CalendarError::BadDate { .. } => "calendar_bad_date",
            CalendarError::UnknownKind { .. } => "calendar_unknown_kind",
            CalendarError::OutsideYears { .. } => "calendar_outside_years",
            CalendarError::HolidayAlsoWorkday { .. } => "calendar_holiday_also_workday",
            CalendarError::DuplicateDate { .. } => "calendar_duplicate_date",
            CalendarError::TooManyYears { .. } => "calendar_too_many_years",
            CalendarError::YearAlreadyCovered { .. } => "calendar_year_already_covered",
        }
    }
}

/// A computation needed a date of a year the calendar does not cover. Nothing is guessed: the
/// caller reports that the year's calendar is missing (`calendar_year_missing`). Which dates a
/// computation needs is written at the top of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the working-day calendar of {year} is not published")]
pub struct CalendarGap {
    /// The earliest uncovered year the computation needed.
    pub year: i32,
}

impl CalendarGap {
    /// A stable snake_case name. Never renamed or reused.
    pub fn name(&self) -> &'static str {
        "calendar_year_missing"
    }
}

/// A listed date: its kind, name and source line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecialDay {
    kind: DayKind,
    /// Free text from the file, such as `春节调休`; may be empty.
    name: String,
    /// Where it was listed, to name both lines when it is listed again.
    line: usize,
}

/// Public holidays and swapped working days over a set of years.
///
/// Every listed date lies within the covered years. Inside them the rule is exact; a day of
/// any other year is unknown ([`CalendarGap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// The years covered; not empty, and not necessarily contiguous after [`Calendar::merge`].
    years: BTreeSet<i32>,
    /// Holidays and workdays, each date at most once.
    special_days: BTreeMap<Date, SpecialDay>,
}

impl Calendar {
    /// Parses the line format documented at the top of `data/prc-calendar.txt`:
    /// `#` comments and blank lines are ignored; `years FIRST LAST` comes once, before any date;
    /// then `YYYY-MM-DD holiday [NAME]` or `YYYY-MM-DD workday [NAME]`, each date once and
    /// within the years. The first fault, in line order, is returned. A year published on its
    /// own is the text `years Y Y` and its dates.
    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        let mut years: Option<(RangeInclusive<i32>, usize)> = None;
        let mut special_days = BTreeMap::new();

        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw_line.split('#').next().unwrap_or("").trim();
            let Some((first_word, rest)) = split_word(content) else {
                continue;
            };

            if first_word == "years" {
                if let Some((_, first_line)) = years {
                    return Err(CalendarError::YearsRepeated { line, first_line });
                }
                let declared = parse_years(rest).ok_or_else(bad_years(line, content))?;
                // At most CALENDAR_YEARS_MAX, so the set of years stays small.
                let count = i64::from(*declared.end()) - i64::from(*declared.start()) + 1;
                if count > CALENDAR_YEARS_MAX as i64 {
                    return Err(CalendarError::TooManyYears {
                        line,
                        first_year: *declared.start(),
                        last_year: *declared.end(),
                        max: CALENDAR_YEARS_MAX,
                    });
                }
                years = Some((declared, line));
                continue;
            }

            let date: Date = first_word
                .parse()
                .map_err(|source| CalendarError::BadDate { line, source })?;
            let (kind_word, name) = split_word(rest).unwrap_or(("", ""));
            let kind = match kind_word {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                _ => {
                    return Err(CalendarError::UnknownKind {
                        line,
                        kind: kind_word.to_string(),
                    });
                }
            };
            let Some((covered, _)) = &years else {
                return Err(CalendarError::DateBeforeYears { line });
            };
            if !covered.contains(&date.year()) {
                return Err(CalendarError::OutsideYears {
                    line,
                    date,
                    first_year: *covered.start(),
                    last_year: *covered.end(),
                });
            }
            match special_days.entry(date) {
                Entry::Occupied(listed) => {
                    let listed: &SpecialDay = listed.get();
                    let first_line = listed.line;
                    return Err(if listed.kind == kind {
                        CalendarError::DuplicateDate {
                            line,
                            date,
                            first_line,
                        }
                    } else {
                        CalendarError::HolidayAlsoWorkday {
                            line,
                            date,
                            first_line,
                        }
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(SpecialDay {
                        kind,
                        name: name.to_string(),
                        line,
                    });
                }
            }
        }

        let (years, _) = years.ok_or(CalendarError::MissingYears)?;
        Ok(Calendar {
            years: years.collect(),
            special_days,
        })
    }

    /// This calendar with the years of `other` added: how a year published later (a
    /// configuration update carries its text, parsed by [`Calendar::parse`]) joins the built-in
    /// ones. Refuses, whole, a calendar covering any year this one covers
    /// ([`CalendarError::YearAlreadyCovered`], naming the earliest): a published year is never
    /// edited, since deadlines judged with it would be judged differently on replay. Merging is
    /// commutative and associative over calendars with disjoint years.
    pub fn merge(&self, other: &Calendar) -> Result<Calendar, CalendarError> {
        if let Some(&year) = self.years.intersection(&other.years).next() {
            return Err(CalendarError::YearAlreadyCovered { year });
        }
        let mut merged = self.clone();
        merged.years.extend(other.years.iter().copied());
        // Disjoint years, and every listed date lies in its calendar's years: no date collides.
        for (date, special) in &other.special_days {
            let previous = merged.special_days.insert(*date, special.clone());
            assert!(previous.is_none(), "{date} listed by two calendars");
        }
        Ok(merged)
    }

    /// The official PRC calendar (State Council notices), compiled in from
    /// `data/prc-calendar.txt` ([`PRC_CALENDAR_TEXT`]); currently 2025 and 2026: the built-in
    /// calendar of epoch 0, to which published years are merged. Parsed once, on first use.
    pub fn prc() -> &'static Calendar {
        static PRC: OnceLock<Calendar> = OnceLock::new();
        PRC.get_or_init(|| {
            Calendar::parse(PRC_CALENDAR_TEXT).expect("data/prc-calendar.txt parses")
        })
    }

    /// Whether the calendar lists the holidays of `year`. Any question about a day of another
    /// year answers [`CalendarGap`].
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The years covered, in increasing order (not necessarily contiguous).
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// The kind and name of `date` if the calendar lists it.
    pub fn special_day(&self, date: Date) -> Option<(DayKind, &str)> {
        self.special_days
            .get(&date)
            .map(|special| (special.kind, special.name.as_str()))
    }

    /// Whether `date` is a working day: listed as a workday, or Monday to Friday and not listed
    /// as a holiday. Needs `date` itself.
    pub fn is_working_day(&self, date: Date) -> Result<bool, CalendarGap> {
        if !self.covers(date.year()) {
            return Err(CalendarGap { year: date.year() });
        }
        Ok(self.is_working_day_by_rule(date))
    }

    /// The `n`-th working day strictly after `date`; `date` itself when `n` is 0. Needs every
    /// date after `date` up to and including the result; on a gap, the result (once the year is
    /// published) lies in the gap's year or later.
    pub fn add_working_days(&self, date: Date, n: u32) -> Result<Date, CalendarGap> {
        if n == 0 {
            return Ok(date);
        }
        let first_needed = date.next();
        if let Some(year) = self.first_uncovered_year_from(first_needed.year()) {
            // Every date before `gap_day` is covered: the walk finishes before it, or needs it.
            let gap_day = first_needed.max(Date {
                year,
                month: 1,
                day: 1,
            });
            let before_gap = Date::from_days(gap_day.to_days() - 1);
            if self.working_days_between_by_rule(date, before_gap) < i64::from(n) {
                return Err(CalendarGap { year });
            }
            let result = self.add_working_days_by_rule(date, n);
            assert!(result < gap_day, "{date} + {n} ran into {year}");
            return Ok(result);
        }
        Ok(self.add_working_days_by_rule(date, n))
    }

    /// The number of working days in (`from`, `to`]; minus the number in (`to`, `from`] if
    /// `to` is before `from`. So `working_days_between(d, add_working_days(d, n)?) == Ok(n)`.
    /// Needs every date in (min, max].
    pub fn working_days_between(&self, from: Date, to: Date) -> Result<i64, CalendarGap> {
        self.check_covered(from.min(to), from.max(to))?;
        Ok(self.working_days_between_by_rule(from, to))
    }

    /// The deadline for acting "within `working_days` working days of receiving" something at
    /// `received_ms`: the last millisecond (China time) of the `working_days`-th working day
    /// strictly after the China date of `received_ms`. Receipt on a holiday or after hours
    /// changes nothing: the day of receipt never counts. With 0 working days, the end of the
    /// day of receipt. Needs the dates [`Calendar::add_working_days`] needs; on a gap the
    /// deadline falls in the gap's year or later, so it is certainly not past before that year.
    ///
    /// Example: received Wednesday 2025-12-31 with 1 working day, the deadline is the end of
    /// Sunday 2026-01-04 (1–3 January are 元旦 holidays and the 4th is a swapped working day).
    pub fn deadline_checked(
        &self,
        received_ms: u64,
        working_days: u32,
    ) -> Result<u64, CalendarGap> {
        Ok(china_day_end_ms(
            self.deadline_date(received_ms, working_days)?,
        ))
    }

    /// By how many working days an act due [`Calendar::deadline_checked`]`(received_ms,
    /// working_days)` is late at `now_ms`. Positive iff `now_ms` is past the deadline: the
    /// number of working days after the deadline's day up to and including the first working day
    /// on or after today (China dates), so the act, done at the earliest working moment, would be
    /// that many working days late (on the Saturday after a Friday deadline: 1). Zero or
    /// negative while not overdue: minus the working days left after today (0 on the last day).
    ///
    /// Needs the deadline's dates, then every date between today and the deadline (module doc).
    /// A deadline already past whose lateness needs a missing year is certainly overdue: compare
    /// `now_ms` with [`Calendar::deadline_checked`] to say so.
    pub fn overdue_checked(
        &self,
        received_ms: u64,
        working_days: u32,
        now_ms: u64,
    ) -> Result<i64, CalendarGap> {
        let due = self.deadline_date(received_ms, working_days)?;
        let today = china_date(now_ms);
        self.check_covered(today.min(due), today.max(due))?;
        let late = self.working_days_between_by_rule(due, today);
        if today <= due || self.is_working_day_by_rule(today) {
            Ok(late)
        } else {
            Ok(late + 1)
        }
    }

    fn deadline_date(&self, received_ms: u64, working_days: u32) -> Result<Date, CalendarGap> {
        self.add_working_days(china_date(received_ms), working_days)
    }

    /// The earliest year at or after `year` that the calendar does not cover; `None` only if it
    /// covers every year up to `i32::MAX`.
    fn first_uncovered_year_from(&self, year: i32) -> Option<i32> {
        (year..=i32::MAX).find(|year| !self.covers(*year))
    }

    /// `Ok` iff every date in (`from`, `to`] lies in a covered year; else the earliest gap.
    fn check_covered(&self, from: Date, to: Date) -> Result<(), CalendarGap> {
        if to <= from {
            return Ok(());
        }
        match self.first_uncovered_year_from(from.next().year()) {
            Some(year) if year <= to.year() => Err(CalendarGap { year }),
            _ => Ok(()),
        }
    }

    /// The rule, applied to any date: exact inside the covered years, Monday to Friday outside
    /// them (nothing is listed there). Callers check coverage first.
    fn is_working_day_by_rule(&self, date: Date) -> bool {
        match self.special_days.get(&date) {
            Some(special) => special.kind == DayKind::Workday,
            None => !date.weekday().is_weekend(),
        }
    }

    /// [`Calendar::add_working_days`] by the rule alone; callers check coverage.
    fn add_working_days_by_rule(&self, date: Date, n: u32) -> Date {
        let mut day = date.to_days();
        let mut remaining = i64::from(n);
        while remaining > 0 {
            // Any 7 days without a listed date hold exactly 5 working days: jump over whole
            // weeks of them, keeping at least one working day to find by stepping.
            let next_special = self
                .special_days
                .range((Excluded(Date::from_days(day)), Unbounded))
                .next()
                .map(|(special, _)| special.to_days());
            let free_weeks = next_special.map_or(i64::MAX, |special| (special - day - 1) / 7);
            let weeks = ((remaining - 1) / 5).min(free_weeks);
            day += weeks * 7;
            remaining -= weeks * 5;

            day += 1;
            if self.is_working_day_by_rule(Date::from_days(day)) {
                remaining -= 1;
            }
        }
        let result = Date::from_days(day);
        assert!(n == 0 || self.is_working_day_by_rule(result));
        result
    }

    /// [`Calendar::working_days_between`] by the rule alone; callers check coverage.
    fn working_days_between_by_rule(&self, from: Date, to: Date) -> i64 {
        if to < from {
            return -self.working_days_between_by_rule(to, from);
        }
        let weekdays = weekdays_through(to.to_days()) - weekdays_through(from.to_days());
        let adjustment: i64 = self
            .special_days
            .range((Excluded(from), Included(to)))
            .map(
                |(date, special)| match (special.kind, date.weekday().is_weekend()) {
                    (DayKind::Holiday, false) => -1,
                    (DayKind::Workday, true) => 1,
                    // A holiday on a weekend or a workday on a weekday changes nothing.
                    _ => 0,
                },
            )
            .sum();
        weekdays + adjustment
    }
}

/// The number of Monday-to-Friday days from Monday 1969-12-29 through `days` (a day number as
/// in [`Date::to_days`]), counted negatively before it; only differences are meaningful.
fn weekdays_through(days: i64) -> i64 {
    let since_monday = days + 3;
    since_monday.div_euclid(7) * 5 + (since_monday.rem_euclid(7) + 1).min(5)
}

/// Splits off the first whitespace-separated word; `None` on blank text.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], text[end..].trim()))
}

/// `FIRST LAST` with FIRST <= LAST.
fn parse_years(text: &str) -> Option<RangeInclusive<i32>> {
    let mut words = text.split_whitespace();
    let first: i32 = words.next()?.parse().ok()?;
    let last: i32 = words.next()?.parse().ok()?;
    (words.next().is_none() && first <= last).then_some(first..=last)
}

fn bad_years(line: usize, content: &str) -> impl FnOnce() -> CalendarError + '_ {
    move || CalendarError::BadYears {
        line,
        text: content.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> Date {
        text.parse()
            .unwrap_or_else(|err| panic!("{text} should parse: {err}"))
    }

    /// Milliseconds at `text` 00:00 China time, plus `hour` hours.
    fn china_ms(text: &str, hour: u64) -> u64 {
        china_day_end_ms(date(text)) + 1 - DAY_MS as u64 + hour * 3_600_000
    }

    #[test]
    fn days_from_civil_known_values() {
        assert_eq!(date("1970-01-01").to_days(), 0);
        assert_eq!(date("1969-12-31").to_days(), -1);
        assert_eq!(date("2000-03-01").to_days(), 11_017);
        assert_eq!(date("2026-01-04").to_days(), 20_457);
        assert_eq!(date("0000-03-01").to_days(), -719_468);
        assert_eq!(Date::from_days(20_457), date("2026-01-04"));
        assert_eq!(Date::from_days(-719_469), date("0000-02-29"));
    }

    #[test]
    fn weekdays() {
        assert_eq!(date("1970-01-01").weekday(), Weekday::Thursday);
        assert_eq!(date("2025-12-31").weekday(), Weekday::Wednesday);
        assert_eq!(date("2026-01-04").weekday(), Weekday::Sunday);
        assert_eq!(date("2026-02-14").weekday(), Weekday::Saturday);
        assert_eq!(date("2026-02-24").weekday(), Weekday::Tuesday);
        assert_eq!(date("1969-12-29").weekday(), Weekday::Monday);
    }

    #[test]
    fn date_text_round_trips_and_errors() {
        assert_eq!(date("2024-02-29").to_string(), "2024-02-29");
        assert_eq!(Date::new(-1, 1, 2).unwrap().to_string(), "-0001-01-02");
        assert_eq!(date("-0001-01-02"), Date::new(-1, 1, 2).unwrap());
        assert_eq!(Date::new(12_345, 6, 7).unwrap().to_string(), "12345-06-07");
        assert_eq!(
            "2026-02-30".parse::<Date>(),
            Err(DateError::DoesNotExist {
                year: 2026,
                month: 2,
                day: 30
            })
        );
        assert_eq!(
            "2026-02-30".parse::<Date>().unwrap_err().to_string(),
            "date 2026-02-30 does not exist"
        );
        assert_eq!(
            "1900-02-29".parse::<Date>().unwrap_err().name(),
            "date_does_not_exist"
        );
        for text in [
            "",
            "2026-1-04",
            "26-01-04",
            "2026/01/04",
            "2026-01-04 ",
            "2026-01-0a",
            "2026-01",
            "2026-01-04-",
            "+2026-01-04",
            "2026-００-01",
            "99999999999-01-01",
        ] {
            assert_eq!(
                text.parse::<Date>(),
                Err(DateError::BadFormat {
                    text: text.to_string()
                }),
                "{text:?}"
            );
        }
        let json = serde_json::to_string(&date("2026-01-04")).unwrap();
        assert_eq!(json, "\"2026-01-04\"");
        assert_eq!(
            serde_json::from_str::<Date>(&json).unwrap(),
            date("2026-01-04")
        );
        assert!(serde_json::from_str::<Date>("\"2026-13-01\"").is_err());
    }

    #[test]
    fn china_dates() {
        // 2025-12-31 10:00 in China.
        assert_eq!(china_date(1_767_146_400_000), date("2025-12-31"));
        // 2025-12-31 16:00 UTC is midnight in China.
        assert_eq!(china_date(1_767_196_800_000 - 1), date("2025-12-31"));
        assert_eq!(china_date(1_767_196_800_000), date("2026-01-01"));
        assert_eq!(china_date(0), date("1970-01-01"));
        assert_eq!(china_day_end_ms(date("2026-01-04")), 1_767_542_399_999);
        assert_eq!(china_day_end_ms(date("1970-01-01")), 57_599_999);
        assert_eq!(china_day_end_ms(date("1969-12-31")), 0);
        assert_eq!(china_day_end_ms(date("1900-01-01")), 0);
        let last = china_date(u64::MAX);
        assert_eq!(china_day_end_ms(last), u64::MAX);
        assert!(last.year() > 500_000_000);
    }

    #[test]
    fn prc_calendar_covers_2025_and_2026() {
        let prc = Calendar::prc();
        assert_eq!(prc.years(), vec![2025, 2026]);
        assert!(prc.covers(2025) && prc.covers(2026));
        assert!(!prc.covers(2024) && !prc.covers(2027));
        let holidays = prc
            .special_days
            .values()
            .filter(|special| special.kind == DayKind::Holiday)
            .count();
        assert_eq!(holidays, 28 + 33);
        assert_eq!(prc.special_days.len() - holidays, 5 + 6);
        assert_eq!(
            prc.special_day(date("2026-01-04")),
            Some((DayKind::Workday, "元旦调休"))
        );
        assert_eq!(prc.special_day(date("2026-01-05")), None);
    }

    #[test]
    fn prc_workdays_are_all_weekend_days() {
        for (day, special) in &Calendar::prc().special_days {
            if special.kind == DayKind::Workday {
                assert!(day.weekday().is_weekend(), "{day} is listed as a workday");
            }
        }
        // Holidays on weekends are listed too (2026-01-03 is a Saturday): harmless.
        assert!(date("2026-01-03").weekday().is_weekend());
        assert_eq!(
            Calendar::prc().special_day(date("2026-01-03")),
            Some((DayKind::Holiday, "元旦"))
        );
    }

    #[test]
    fn working_days_in_the_prc_calendar() {
        let prc = Calendar::prc();
        let working = |text| prc.is_working_day(date(text));
        assert_eq!(working("2025-12-31"), Ok(true));
        assert_eq!(working("2026-01-01"), Ok(false));
        assert_eq!(working("2026-01-02"), Ok(false));
        assert_eq!(working("2026-01-04"), Ok(true)); // Sunday, swapped
        assert_eq!(working("2026-02-14"), Ok(true)); // Saturday, swapped
        assert_eq!(working("2026-02-23"), Ok(false)); // Monday, 春节
        assert_eq!(working("2026-02-21"), Ok(false)); // Saturday anyway
        // Outside the covered years: unknown, said, not guessed (2027-01-01 is a Friday).
        assert_eq!(working("2027-01-01"), Err(CalendarGap { year: 2027 }));
        assert_eq!(working("2027-01-02"), Err(CalendarGap { year: 2027 }));
        assert_eq!(working("2024-10-01"), Err(CalendarGap { year: 2024 }));
        assert_eq!(CalendarGap { year: 2027 }.name(), "calendar_year_missing");
        assert_eq!(
            CalendarGap { year: 2027 }.to_string(),
            "the working-day calendar of 2027 is not published"
        );
    }

    #[test]
    fn adding_working_days_in_the_prc_calendar() {
        let prc = Calendar::prc();
        let cases = [
            // Received in the 元旦 holiday: the next working day is the swapped Sunday.
            ("2026-01-02", 1, "2026-01-04"),
            ("2025-12-31", 1, "2026-01-04"),
            ("2025-12-31", 2, "2026-01-05"),
            // Friday before 春节: the swapped Saturday.
            ("2026-02-13", 1, "2026-02-14"),
            // The swapped Saturday: then nine days off.
            ("2026-02-14", 1, "2026-02-24"),
            ("2026-02-13", 2, "2026-02-24"),
            ("2026-02-27", 1, "2026-02-28"),
            ("2026-05-08", 1, "2026-05-09"),
            // The last working day covered, from the day before it.
            ("2026-12-30", 1, "2026-12-31"),
            ("2024-12-31", 1, "2025-01-02"),
            ("2026-01-04", 0, "2026-01-04"),
            ("2026-01-03", 0, "2026-01-03"),
        ];
        for (from, n, expected) in cases {
            assert_eq!(
                prc.add_working_days(date(from), n),
                Ok(date(expected)),
                "{from} + {n}"
            );
            assert_eq!(
                prc.working_days_between(date(from), date(expected)),
                Ok(i64::from(n))
            );
        }
        // Across the end of coverage, or entirely outside it: the year that is missing.
        fn gap<T>(year: i32) -> Result<T, CalendarGap> {
            Err(CalendarGap { year })
        }
        assert_eq!(prc.add_working_days(date("2026-12-31"), 1), gap(2027));
        assert_eq!(prc.add_working_days(date("2026-12-30"), 2), gap(2027));
        assert_eq!(prc.add_working_days(date("2027-01-01"), 1), gap(2027));
        assert_eq!(prc.add_working_days(date("2024-12-30"), 1), gap(2024));
        // Nothing needed: the day itself, whatever its year.
        assert_eq!(
            prc.add_working_days(date("2027-01-01"), 0),
            Ok(date("2027-01-01"))
        );
        assert_eq!(
            prc.add_working_days(date("2024-06-01"), 0),
            Ok(date("2024-06-01"))
        );
        assert_eq!(
            prc.working_days_between(date("2026-12-31"), date("2027-01-01")),
            gap(2027)
        );
        assert_eq!(
            prc.working_days_between(date("2025-06-01"), date("2024-06-01")),
            gap(2024)
        );
        // (from, to] excludes `from`: 2024-12-31 is not needed.
        assert_eq!(
            prc.working_days_between(date("2024-12-31"), date("2025-01-02")),
            Ok(1)
        );
        // Whole years, counted independently (python3 over the data file): 248 each.
        assert_eq!(
            prc.working_days_between(date("2024-12-31"), date("2025-12-31")),
            Ok(248)
        );
        assert_eq!(
            prc.working_days_between(date("2025-12-31"), date("2026-12-31")),
            Ok(248)
        );
        assert_eq!(
            prc.working_days_between(date("2026-01-05"), date("2025-12-31")),
            Ok(-2)
        );
    }

    #[test]
    fn deadlines_are_end_of_day_in_china() {
        let prc = Calendar::prc();
        // Received Wednesday 2025-12-31 at 10:00 China time, 1 working day: end of Sunday
        // 2026-01-04, China time. (The same values as before the calendar could have gaps.)
        let received_ms = china_ms("2025-12-31", 10);
        assert_eq!(received_ms, 1_767_146_400_000);
        assert_eq!(prc.deadline_checked(received_ms, 1), Ok(1_767_542_399_999));
        // Received at 23:59 on the Tuesday: the same day in China, though 15:59 UTC.
        assert_eq!(
            prc.deadline_checked(china_ms("2025-12-30", 23), 1),
            Ok(china_day_end_ms(date("2025-12-31")))
        );
        assert_eq!(
            prc.deadline_checked(china_ms("2026-02-13", 9), 1),
            Ok(china_day_end_ms(date("2026-02-14")))
        );
        assert_eq!(
            prc.deadline_checked(china_ms("2026-02-14", 9), 1),
            Ok(china_day_end_ms(date("2026-02-24")))
        );
        assert_eq!(
            prc.deadline_checked(china_ms("2026-02-14", 9), 0),
            Ok(china_day_end_ms(date("2026-02-14")))
        );
    }

    #[test]
    fn a_deadline_crossing_into_an_unpublished_year_is_a_gap() {
        let prc = Calendar::prc();
        // Thursday 2026-12-31 is the last day covered: one working day later is in 2027.
        let received_ms = china_ms("2026-12-31", 10);
        assert_eq!(
            prc.deadline_checked(received_ms, 1),
            Err(CalendarGap { year: 2027 })
        );
        assert_eq!(
            prc.overdue_checked(received_ms, 1, china_ms("2027-01-05", 9)),
            Err(CalendarGap { year: 2027 })
        );
        // Received the day before: due the 31st, inside 2026.
        let before_ms = china_ms("2026-12-30", 10);
        assert_eq!(
            prc.deadline_checked(before_ms, 1),
            Ok(china_day_end_ms(date("2026-12-31")))
        );
        assert_eq!(prc.overdue_checked(before_ms, 1, before_ms), Ok(-1));
        assert_eq!(
            prc.overdue_checked(before_ms, 1, china_ms("2026-12-31", 18)),
            Ok(0)
        );
        // Past it, in 2027: certainly overdue, by a count that needs 2027.
        assert_eq!(
            prc.overdue_checked(before_ms, 1, china_ms("2027-01-04", 9)),
            Err(CalendarGap { year: 2027 })
        );
        // Received where nothing is covered: the first day needed names the year.
        assert_eq!(
            prc.deadline_checked(china_ms("2024-06-03", 9), 1),
            Err(CalendarGap { year: 2024 })
        );
        // A deadline inside 2025 judged at a "now" before receipt, in 2024: the days left count
        // (now, deadline], so the last day of 2024 is needed only from the day before it.
        let early_ms = china_ms("2025-03-03", 9);
        assert_eq!(
            prc.overdue_checked(early_ms, 1, china_ms("2024-12-31", 9)),
            Ok(-40)
        );
        assert_eq!(
            prc.overdue_checked(early_ms, 1, china_ms("2024-12-30", 9)),
            Err(CalendarGap { year: 2024 })
        );
    }

    /// A made-up 2027, for tests only: 元旦 on Friday and Monday 4 January, the Sunday between
    /// worked, and nothing else.
    const MADE_UP_2027: &str = "years 2027 2027\n2027-01-01 holiday 元旦\n2027-01-03 workday 调休\n2027-01-04 holiday 元旦\n";

    #[test]
    fn a_published_year_makes_the_deadline_definite_and_respects_its_holidays() {
        let year_2027 = Calendar::parse(MADE_UP_2027).unwrap();
        assert_eq!(year_2027.years(), vec![2027]);
        let calendar = Calendar::prc().merge(&year_2027).unwrap();
        assert_eq!(calendar.years(), vec![2025, 2026, 2027]);
        assert!(calendar.covers(2027) && !calendar.covers(2028));
        let received_ms = china_ms("2026-12-31", 10);
        // Friday the 1st is a holiday, Saturday is not worked, Sunday the 3rd is: the deadline.
        assert_eq!(
            calendar.deadline_checked(received_ms, 1),
            Ok(china_day_end_ms(date("2027-01-03")))
        );
        // Then the holiday Monday: the second working day is Tuesday the 5th.
        assert_eq!(
            calendar.deadline_checked(received_ms, 2),
            Ok(china_day_end_ms(date("2027-01-05")))
        );
        assert_eq!(
            calendar.overdue_checked(received_ms, 1, china_ms("2027-01-05", 9)),
            Ok(1)
        );
        assert_eq!(
            calendar.overdue_checked(received_ms, 1, china_ms("2027-01-06", 9)),
            Ok(2)
        );
        // Inside the built-in years nothing changed.
        let before_ms = china_ms("2025-12-31", 10);
        assert_eq!(
            calendar.deadline_checked(before_ms, 1),
            Calendar::prc().deadline_checked(before_ms, 1)
        );
        // The end of 2027 still runs into 2028.
        assert_eq!(
            calendar.deadline_checked(china_ms("2027-12-31", 10), 1),
            Err(CalendarGap { year: 2028 })
        );
        // Merging in either order gives the same calendar.
        assert_eq!(year_2027.merge(Calendar::prc()), Ok(calendar));
    }

    #[test]
    fn merge_refuses_a_year_already_covered() {
        let prc = Calendar::prc();
        let again = Calendar::parse("years 2026 2026\n2026-01-01 holiday 元旦\n").unwrap();
        let err = prc.merge(&again).unwrap_err();
        assert_eq!(err, CalendarError::YearAlreadyCovered { year: 2026 });
        assert_eq!(err.name(), "calendar_year_already_covered");
        assert_eq!(
            err.to_string(),
            "the working-day calendar of 2026 is already published and cannot be replaced"
        );
        // Overlapping in part is refused whole, naming the earliest shared year.
        let overlapping = Calendar::parse("years 2026 2027").unwrap();
        assert_eq!(
            prc.merge(&overlapping),
            Err(CalendarError::YearAlreadyCovered { year: 2026 })
        );
        // A year published once cannot be published again, even identically.
        let with_2027 = prc.merge(&Calendar::parse(MADE_UP_2027).unwrap()).unwrap();
        assert_eq!(
            with_2027.merge(&Calendar::parse(MADE_UP_2027).unwrap()),
            Err(CalendarError::YearAlreadyCovered { year: 2027 })
        );
    }

    #[test]
    fn coverage_may_have_holes_and_a_hole_is_a_gap() {
        let with_2028 = Calendar::prc()
            .merge(&Calendar::parse("years 2028 2028\n2028-01-03 holiday\n").unwrap())
            .unwrap();
        assert_eq!(with_2028.years(), vec![2025, 2026, 2028]);
        assert!(!with_2028.covers(2027));
        assert_eq!(
            with_2028.deadline_checked(china_ms("2026-12-31", 10), 1),
            Err(CalendarGap { year: 2027 })
        );
        assert_eq!(
            with_2028.working_days_between(date("2026-06-01"), date("2028-06-01")),
            Err(CalendarGap { year: 2027 })
        );
        // 2028-01-03, a Monday, is its holiday: due Tuesday.
        assert_eq!(
            with_2028.deadline_checked(china_ms("2027-12-31", 10), 1),
            Ok(china_day_end_ms(date("2028-01-04")))
        );
    }

    #[test]
    fn overdue_working_days_counts_from_the_deadline() {
        let prc = Calendar::prc();
        // Received Friday 2026-02-13, 1 working day: due by the end of Saturday 2026-02-14.
        let received_ms = china_ms("2026-02-13", 9);
        let deadline_ms = prc.deadline_checked(received_ms, 1).unwrap();
        let overdue = |now_ms| prc.overdue_checked(received_ms, 1, now_ms);
        assert_eq!(overdue(received_ms), Ok(-1));
        assert_eq!(overdue(deadline_ms), Ok(0));
        // Past the deadline, during 春节: done on the first working day, one day late.
        assert_eq!(overdue(deadline_ms + 1), Ok(1));
        assert_eq!(overdue(china_ms("2026-02-23", 12)), Ok(1));
        assert_eq!(overdue(china_ms("2026-02-24", 12)), Ok(1));
        assert_eq!(overdue(china_ms("2026-02-25", 12)), Ok(2));
        assert_eq!(overdue(china_ms("2026-02-28", 12)), Ok(5)); // swapped Saturday
        assert_eq!(overdue(china_ms("2026-03-01", 12)), Ok(6)); // Sunday: Monday would be the 6th
        // Well before: working days left are negative.
        let early_ms = china_ms("2026-02-10", 9);
        assert_eq!(prc.overdue_checked(early_ms, 14, early_ms), Ok(-14));
    }

    #[test]
    fn the_built_in_calendar_is_pinned_by_its_hash() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            hex::encode(Sha256::digest(PRC_CALENDAR_TEXT.as_bytes())),
            PRC_CALENDAR_SHA256
        );
        // docs/FORMAT.md publishes the same hash.
        let format = include_str!("../../docs/FORMAT.md");
        assert!(
            format.contains(PRC_CALENDAR_SHA256),
            "docs/FORMAT.md lacks the hash"
        );
    }

    #[test]
    fn parse_errors_name_the_line_and_fault() {
        let cases = [
            (
                "years 2026\n",
                CalendarError::BadYears {
                    line: 1,
                    text: "years 2026".to_string(),
                },
            ),
            (
                "years 2027 2026",
                CalendarError::BadYears {
                    line: 1,
                    text: "years 2027 2026".to_string(),
                },
            ),
            (
                "years 2026 2026\n# again\nyears 2026 2026",
                CalendarError::YearsRepeated {
                    line: 3,
                    first_line: 1,
                },
            ),
            (
                "\n2026-01-01 holiday 元旦\nyears 2026 2026",
                CalendarError::DateBeforeYears { line: 2 },
            ),
            ("# nothing\n\n", CalendarError::MissingYears),
            (
                "years 2026 2026\n2026-02-30 holiday",
                CalendarError::BadDate {
                    line: 2,
                    source: DateError::DoesNotExist {
                        year: 2026,
                        month: 2,
                        day: 30,
                    },
                },
            ),
            (
                "years 2026 2026\nholiday 2026-01-01",
                CalendarError::BadDate {
                    line: 2,
                    source: DateError::BadFormat {
                        text: "holiday".to_string(),
                    },
                },
            ),
            (
                "years 2026 2026\n\n2026-01-01 vacation 元旦",
                CalendarError::UnknownKind {
                    line: 3,
                    kind: "vacation".to_string(),
                },
            ),
            (
                "years 2026 2026\n2026-01-01 # no kind",
                CalendarError::UnknownKind {
                    line: 2,
                    kind: String::new(),
                },
            ),
            (
                "years 2026 2026\n2025-12-31 holiday",
                CalendarError::OutsideYears {
                    line: 2,
                    date: date("2025-12-31"),
                    first_year: 2026,
                    last_year: 2026,
                },
            ),
            (
                "years 2026 2026\n2026-01-04 workday\n2026-01-04 holiday",
                CalendarError::HolidayAlsoWorkday {
                    line: 3,
                    date: date("2026-01-04"),
                    first_line: 2,
                },
            ),
            (
                "years 2026 2026\n2026-01-01 holiday 元旦\n2026-01-01 holiday",
                CalendarError::DuplicateDate {
                    line: 3,
                    date: date("2026-01-01"),
                    first_line: 2,
                },
            ),
            (
                "# a century and one\nyears 2000 2100",
                CalendarError::TooManyYears {
                    line: 2,
                    first_year: 2000,
                    last_year: 2100,
                    max: CALENDAR_YEARS_MAX,
                },
            ),
            (
                "years -2147483648 2147483647",
                CalendarError::TooManyYears {
                    line: 1,
                    first_year: i32::MIN,
                    last_year: i32::MAX,
                    max: CALENDAR_YEARS_MAX,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Calendar::parse(text), Err(expected), "{text:?}");
        }
        let err =
            Calendar::parse("years 2026 2026\n2026-01-04 workday\n2026-01-04 holiday").unwrap_err();
        assert_eq!(err.name(), "calendar_holiday_also_workday");
        assert_eq!(
            err.to_string(),
            "line 3: 2026-01-04 is listed both as a holiday and as a workday (line 2)"
        );
        assert_eq!(
            Calendar::parse("years 2026 2026\n2026-02-30 holiday")
                .unwrap_err()
                .to_string(),
            "line 2: date 2026-02-30 does not exist"
        );
        // A year's text with a date of another year: refused, naming the date and the years.
        let err = Calendar::parse("years 2027 2027\n2026-12-31 holiday").unwrap_err();
        assert_eq!(err.name(), "calendar_outside_years");
        assert_eq!(
            err.to_string(),
            "line 2: 2026-12-31 is outside the declared years 2027 to 2027"
        );
        assert_eq!(
            Calendar::parse("years 2000 2100").unwrap_err().name(),
            "calendar_too_many_years"
        );
        assert_eq!(
            Calendar::parse("years 2000 2099").unwrap().years().len(),
            100
        );
    }

    #[test]
    fn parse_accepts_comments_names_and_spacing() {
        let calendar = Calendar::parse(
            "  # header\n\nyears   2026 2026  # inline comment\n\t2026-01-01  holiday  New Year's Day\n2026-01-04 workday\n",
        )
        .unwrap();
        assert_eq!(
            calendar.special_day(date("2026-01-01")),
            Some((DayKind::Holiday, "New Year's Day"))
        );
        assert_eq!(
            calendar.special_day(date("2026-01-04")),
            Some((DayKind::Workday, ""))
        );
    }

    /// Counts working days in (from, to] one day at a time: the obvious way, to check the fast one.
    fn naive_between(calendar: &Calendar, from: Date, to: Date) -> i64 {
        let (low, high, sign) = if from <= to {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut count = 0;
        let mut day = low;
        while day < high {
            day = day.next();
            count += i64::from(calendar.is_working_day_by_rule(day));
        }
        sign * count
    }

    /// Dates from 2023 to 2028, around and across the covered years.
    fn any_nearby_date() -> impl Strategy<Value = Date> {
        (date("2023-06-01").to_days()..date("2028-06-01").to_days()).prop_map(Date::from_days)
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -1_000_000_000i64..1_000_000_000) {
            let day = Date::from_days(days);
            prop_assert_eq!(day.to_days(), days);
            prop_assert_eq!(Date::new(day.year(), day.month(), day.day()), Ok(day));
            prop_assert_eq!(day.to_string().parse::<Date>(), Ok(day));
            prop_assert!(Date::from_days(days + 1) > day);
        }

        #[test]
        fn adding_then_counting_gives_back_n(from in any_nearby_date(), n in 0u32..800) {
            let calendar = Calendar::prc();
            let to = calendar.add_working_days_by_rule(from, n);
            prop_assert_eq!(calendar.working_days_between_by_rule(from, to), i64::from(n));
            prop_assert_eq!(calendar.working_days_between_by_rule(to, from), -i64::from(n));
            if n > 0 {
                prop_assert!(calendar.is_working_day_by_rule(to));
                // And it is the first such day: the day before has one fewer.
                let before = Date::from_days(to.to_days() - 1);
                prop_assert_eq!(
                    calendar.working_days_between_by_rule(from, before),
                    i64::from(n) - 1
                );
            }
        }

        #[test]
        fn counting_matches_the_naive_count(from in any_nearby_date(), to in any_nearby_date()) {
            let calendar = Calendar::prc();
            prop_assert_eq!(
                calendar.working_days_between_by_rule(from, to),
                naive_between(calendar, from, to)
            );
        }

        /// The checked walk against the obvious one: step day by day, and stop at the first
        /// day of a year the calendar does not cover (with holes: 2025, 2026 and 2028 covered).
        #[test]
        fn checked_adding_matches_the_naive_walk(from in any_nearby_date(), n in 0u32..400) {
            let calendar = Calendar::prc()
                .merge(&Calendar::parse("years 2028 2028\n2028-01-03 holiday\n").unwrap())
                .unwrap();
            let mut day = from;
            let mut remaining = n;
            let expected = loop {
                if remaining == 0 {
                    break Ok(day);
                }
                day = day.next();
                match calendar.is_working_day(day) {
                    Err(gap) => break Err(gap),
                    Ok(working) => remaining -= u32::from(working),
                }
            };
            prop_assert_eq!(calendar.add_working_days(from, n), expected);
            if let Ok(to) = expected {
                prop_assert_eq!(calendar.working_days_between(from, to), Ok(i64::from(n)));
            }
        }

        #[test]
        fn china_date_contains_its_instant(time_ms in any::<u64>()) {
            let day = china_date(time_ms);
            prop_assert!(time_ms <= china_day_end_ms(day));
            let previous = Date::from_days(day.to_days() - 1);
            prop_assert!(time_ms > china_day_end_ms(previous) || china_day_end_ms(previous) == 0);
        }

        #[test]
        fn calendar_parse_never_panics(text in "(years|20[0-9][0-9]-[0-9]{2}-[0-9]{2}|holiday|workday| |#|\n|[0-9]{1,5}|x){0,40}") {
            let _ = Calendar::parse(&text);
        }

        #[test]
        fn date_parse_never_panics(text in any::<String>()) {
            let _ = text.parse::<Date>();
        }
    }

    #[test]
    fn huge_working_day_counts_stay_fast_and_consistent() {
        let calendar = Calendar::prc();
        let from = date("2025-01-01");
        let to = calendar.add_working_days_by_rule(from, u32::MAX);
        assert_eq!(
            calendar.working_days_between_by_rule(from, to),
            i64::from(u32::MAX)
        );
        assert!(calendar.is_working_day_by_rule(to));
        // Checked, the same count stops at the first year not covered, at once.
        assert_eq!(
            calendar.add_working_days(from, u32::MAX),
            Err(CalendarGap { year: 2027 })
        );
    }
}
