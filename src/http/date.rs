//! HTTP dates (RFC 9110 §5.6.7): `Date` and `Last-Modified` written, and
//! `If-Modified-Since` read.
//!
//! A server writes one form, the IMF-fixdate:
//!
//! ```text
//! Sun, 06 Nov 1994 08:49:37 GMT      IMF-fixdate (the only one we write)
//! Sunday, 06-Nov-94 08:49:37 GMT     obsolete RFC 850 form
//! Sun Nov  6 08:49:37 1994           obsolete asctime() form
//! ```
//!
//! and "a recipient that parses a timestamp value in an HTTP field MUST
//! accept all three". Times are whole seconds since the Unix epoch, in
//! UTC: the calendar arithmetic is Howard Hinnant's `days_from_civil`,
//! exact for every date after 1970, with no time zone table needed (HTTP
//! dates are always GMT).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `time` as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. A time
/// before 1970 (a file from a badly set clock) is written as the epoch.
pub fn format(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        // 1970-01-01 was a Thursday.
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Reads any of the three forms; `None` for anything else, which RFC 9110
/// §13.1.3 says to ignore ("if the field value is not a valid HTTP-date
/// ... the recipient MUST ignore the If-Modified-Since header field").
pub fn parse(text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let (day, month, year, clock) = match words.as_slice() {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        [weekday, day, month, year, clock, "GMT"] if weekday.ends_with(',') && day.len() == 2 => {
            (*day, *month, year.parse::<u64>().ok()?, *clock)
        }
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`. RFC 9110 §5.6.7: a
        // two-digit year more than 50 years in the future is in the past
        // century; for file times, 70..99 is 19xx and the rest 20xx.
        [weekday, date, clock, "GMT"] if weekday.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || year.len() != 2 {
                return None;
            }
            let yy = year.parse::<u64>().ok()?;
            (day, month, if yy >= 70 { 1900 + yy } else { 2000 + yy }, *clock)
        }
        // asctime: `Sun Nov  6 08:49:37 1994`
        [_weekday, month, day, clock, year] => (*day, *month, year.parse::<u64>().ok()?, *clock),
        _ => return None,
    };
    let day: u64 = digits(day, 1, 2)?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut hms = clock.split(':');
    let (h, m, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let (h, m, s): (u64, u64, u64) = (digits(h, 2, 2)?, digits(m, 2, 2)?, digits(s, 2, 2)?);
    // 60 is a leap second, which the grammar allows.
    if !(1970..=9999).contains(&year) || day == 0 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// A number of `min..=max` ASCII digits.
fn digits(text: &str, min: usize, max: usize) -> Option<u64> {
    if text.len() < min || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar
/// (years from 1970). The year is counted from March, so the leap day is
/// the last day of its year and needs no special case.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse: the date `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110 §5.6.7's own example, in each of its three forms.
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn the_rfc_example_is_written_as_an_imf_fixdate() {
        let time = UNIX_EPOCH + Duration::from_secs(EXAMPLE);
        assert_eq!(format(time), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        // A leap day, and the day after.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            format(leap + Duration::from_secs(86_400)),
            "Wed, 01 Mar 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn all_three_forms_are_read() {
        let want = Some(UNIX_EPOCH + Duration::from_secs(EXAMPLE));
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), want);
    }

    #[test]
    fn what_is_not_a_date_is_ignored() {
        for text in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn every_day_round_trips() {
        for days in (0..80_000u64).step_by(7) {
            let time = UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3_723);
            assert_eq!(parse(format(time).as_bytes()), Some(time), "{}", format(time));
        }
    }
}
