//! Java `DateTimeFormatter` patterns (what ksqlDB's TIMESTAMP_FORMAT and its date/time
//! functions take, e.g. `yyyy-MM-dd''T''HH:mm:ssX`) translated to chrono's format items, and
//! parsing/formatting of epoch milliseconds, days and times of day with them.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    items: Vec<Item<'static>>,
}

impl Pattern {
    /// Compiles a Java pattern; an unknown letter is an error, as in Java.
    pub fn new(java: &str) -> Result<Pattern, String> {
        let mut items = Vec::new();
        let chars: Vec<char> = java.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // 'literal', with '' standing for one quote (inside or outside a literal).
                if chars.get(i + 1) == Some(&'\'') {
                    items.push(Item::OwnedLiteral("'".into()));
                    i += 2;
                    continue;
                }
                let mut text = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            text.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(format!(
                        "Pattern ends with an incomplete string literal: {java}"
                    ));
                }
                i += 1;
                items.push(Item::OwnedLiteral(text.into()));
                continue;
            }
            if !c.is_ascii_alphabetic() {
                items.push(Item::OwnedLiteral(c.to_string().into()));
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            i += n;
            let num = |what: Numeric, width: usize| {
                Item::Numeric(what, if n >= width { Pad::Zero } else { Pad::None })
            };
            items.push(match c {
                'y' | 'u' => match n {
                    2 => Item::Numeric(Numeric::YearMod100, Pad::Zero),
                    _ => Item::Numeric(Numeric::Year, Pad::Zero),
                },
                'M' | 'L' => match n {
                    1 | 2 => num(Numeric::Month, 2),
                    3 => Item::Fixed(Fixed::ShortMonthName),
                    _ => Item::Fixed(Fixed::LongMonthName),
                },
                'd' => num(Numeric::Day, 2),
                'D' => num(Numeric::Ordinal, 3),
                'H' => num(Numeric::Hour, 2),
                'k' => num(Numeric::Hour, 2),
                'h' | 'K' => num(Numeric::Hour12, 2),
                'm' => num(Numeric::Minute, 2),
                's' => num(Numeric::Second, 2),
                'S' => fraction(match n {
                    1..=3 => "%3f",
                    4..=6 => "%6f",
                    _ => "%9f",
                })?,
                'a' => Item::Fixed(Fixed::UpperAmPm),
                'E' => match n {
                    1..=3 => Item::Fixed(Fixed::ShortWeekdayName),
                    _ => Item::Fixed(Fixed::LongWeekdayName),
                },
                'X' => Item::Fixed(Fixed::TimezoneOffsetColonZ),
                'x' | 'Z' => Item::Fixed(match n {
                    1 | 2 => Fixed::TimezoneOffset,
                    _ => Fixed::TimezoneOffsetColon,
                }),
                'z' | 'O' | 'V' => Item::Fixed(Fixed::TimezoneName),
                other => return Err(format!("Unknown pattern letter: {other}")),
            });
        }
        Ok(Pattern { items })
    }

    fn parse(&self, text: &str) -> Result<Parsed, String> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter())
            .map_err(|e| format!("Text '{text}' could not be parsed: {e}"))?;
        Ok(parsed)
    }

    /// Epoch milliseconds of `text`; a text without an offset is read in `zone`.
    pub fn parse_millis(&self, text: &str, zone: &Zone) -> Result<i64, String> {
        let parsed = self.parse(text)?;
        let date =
            date_of(&parsed).map_err(|e| format!("Text '{text}' could not be parsed: {e}"))?;
        let time = time_of(&parsed);
        let local = NaiveDateTime::new(date, time);
        let at = match parsed.offset() {
            Some(secs) => FixedOffset::east_opt(secs)
                .and_then(|o| o.from_local_datetime(&local).single())
                .map(|d| d.timestamp_millis()),
            None => zone.local_millis(&local),
        };
        at.ok_or_else(|| format!("Text '{text}' is not a time in {}", zone.name()))
    }

    /// Days since the epoch of a date `text`.
    pub fn parse_days(&self, text: &str) -> Result<i32, String> {
        let parsed = self.parse(text)?;
        let date =
            date_of(&parsed).map_err(|e| format!("Text '{text}' could not be parsed: {e}"))?;
        Ok(days_of(date))
    }

    /// Milliseconds since midnight of a time `text`.
    pub fn parse_time_millis(&self, text: &str) -> Result<i32, String> {
        let parsed = self.parse(text)?;
        let t = time_of(&parsed);
        Ok(millis_of_day(t))
    }

    /// `millis` since the epoch as text, in `zone`.
    pub fn format_millis(&self, millis: i64, zone: &Zone) -> Result<String, String> {
        let utc = DateTime::<Utc>::from_timestamp_millis(millis)
            .ok_or_else(|| format!("timestamp out of range: {millis}"))?;
        Ok(match zone {
            Zone::Fixed(o) => utc
                .with_timezone(o)
                .format_with_items(self.items.iter())
                .to_string(),
            Zone::Named(tz) => utc
                .with_timezone(tz)
                .format_with_items(self.items.iter())
                .to_string(),
        })
    }

    /// Days since the epoch as a date text.
    pub fn format_days(&self, days: i32) -> Result<String, String> {
        let date = date_from_days(days).ok_or_else(|| format!("date out of range: {days}"))?;
        Ok(date
            .and_time(NaiveTime::MIN)
            .format_with_items(self.items.iter())
            .to_string())
    }

    /// Milliseconds since midnight as a time text.
    pub fn format_time_millis(&self, millis: i32) -> Result<String, String> {
        if millis < 0 {
            return Err(format!("time out of range: {millis}"));
        }
        let t = NaiveTime::from_num_seconds_from_midnight_opt(
            (millis / 1000) as u32,
            (millis % 1000) as u32 * 1_000_000,
        )
        .ok_or_else(|| format!("time out of range: {millis}"))?;
        Ok(NaiveDate::from_ymd_opt(1970, 1, 1)
            .unwrap_or_default()
            .and_time(t)
            .format_with_items(self.items.iter())
            .to_string())
    }
}

/// chrono's fixed-width fraction items, which it only builds from strftime text.
fn fraction(spec: &'static str) -> Result<Item<'static>, String> {
    chrono::format::StrftimeItems::new(spec)
        .next()
        .ok_or_else(|| format!("no item for {spec}"))
}

/// A time zone: an offset (`+02:00`, `UTC`) or a region (`America/Los_Angeles`).
#[derive(Debug, Clone)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    pub fn utc() -> Zone {
        Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// Parses a zone id as Java's `ZoneId.of` does for the common forms.
    pub fn parse(id: &str) -> Result<Zone, String> {
        let trimmed = id.trim();
        if let Ok(tz) = trimmed.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(tz));
        }
        let offset = trimmed
            .strip_prefix("UTC")
            .or_else(|| trimmed.strip_prefix("GMT"))
            .unwrap_or(trimmed);
        if offset.is_empty() || offset == "Z" {
            return Ok(Zone::utc());
        }
        parse_offset(offset)
            .map(Zone::Fixed)
            .ok_or_else(|| format!("Unknown time-zone ID: {id}"))
    }

    fn name(&self) -> String {
        match self {
            Zone::Fixed(o) => o.to_string(),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }

    /// Epoch millis of a local date-time here (the earlier one where clocks go back).
    pub fn local_millis(&self, local: &NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Fixed(o) => o.from_local_datetime(local).earliest(),
            Zone::Named(tz) => tz
                .from_local_datetime(local)
                .earliest()
                .map(|d| d.fixed_offset()),
        }
        .map(|d| d.timestamp_millis())
    }

    /// The local date-time of epoch millis here.
    pub fn local_of(&self, millis: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::<Utc>::from_timestamp_millis(millis)?;
        Some(match self {
            Zone::Fixed(o) => utc.with_timezone(o).naive_local(),
            Zone::Named(tz) => utc.with_timezone(tz).naive_local(),
        })
    }
}

/// `+hh`, `+hh:mm`, `+hhmm` (or `-`).
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// The date a parse found; fields it lacks default as Java's parser defaults them.
fn date_of(p: &Parsed) -> Result<NaiveDate, chrono::format::ParseError> {
    if let Ok(d) = p.to_naive_date() {
        return Ok(d);
    }
    let mut filled = p.clone();
    if p.year().is_none() && p.year_mod_100().is_none() {
        let _ = filled.set_year(1970);
    }
    if p.month().is_none() && p.ordinal().is_none() {
        let _ = filled.set_month(1);
    }
    if p.day().is_none() && p.ordinal().is_none() {
        let _ = filled.set_day(1);
    }
    filled.to_naive_date()
}

/// The time of day a parse found, midnight where it has none.
fn time_of(p: &Parsed) -> NaiveTime {
    let hour = match (p.hour_div_12(), p.hour_mod_12()) {
        (Some(d), Some(m)) => d * 12 + m,
        (None, Some(m)) => m,
        _ => 0,
    };
    NaiveTime::from_hms_nano_opt(
        hour,
        p.minute().unwrap_or(0),
        p.second().unwrap_or(0),
        p.nanosecond().unwrap_or(0),
    )
    .unwrap_or(NaiveTime::MIN)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01.
pub fn days_of(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::Duration::days(i64::from(days)))
}

pub fn millis_of_day(t: NaiveTime) -> i32 {
    use chrono::Timelike;
    (t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ksqldb_patterns() {
        let utc = Zone::utc();
        let p = Pattern::new("yyyy-MM-dd'T'HH:mm:ssX").unwrap();
        assert_eq!(
            p.parse_millis("2018-05-11T21:58:33Z", &utc),
            Ok(1526075913000)
        );
        let p = Pattern::new("yy-MM-dd HH:mm:ssX").unwrap();
        assert_eq!(
            p.parse_millis("10-04-19 12:00:17Z", &utc),
            Ok(1271678417000)
        );
        assert!(p.parse_millis("!!!!!!!!!!!!!!!!!", &utc).is_err());
        let p = Pattern::new("yyyy-MM-dd''HH").unwrap();
        assert_eq!(p.parse_millis("1970-01-01'01", &utc), Ok(3_600_000));
        let p = Pattern::new("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        assert_eq!(
            p.parse_millis("1970-01-01 00:00:01.250", &Zone::parse("+01:00").unwrap()),
            Ok(1250 - 3_600_000)
        );
        assert_eq!(
            Pattern::new("yyyy-MM-dd").unwrap().parse_days("1970-01-11"),
            Ok(10)
        );
    }

    #[test]
    fn formats_back() {
        let p = Pattern::new("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        assert_eq!(
            p.format_millis(1526075913123, &Zone::utc()).unwrap(),
            "2018-05-11 21:58:33.123"
        );
        assert_eq!(
            p.format_millis(0, &Zone::parse("America/Los_Angeles").unwrap())
                .unwrap(),
            "1969-12-31 16:00:00.000"
        );
        assert_eq!(
            Pattern::new("dd/MM/yyyy").unwrap().format_days(10).unwrap(),
            "11/01/1970"
        );
        assert!(Pattern::new("yyyy-bb").is_err());
    }
}
