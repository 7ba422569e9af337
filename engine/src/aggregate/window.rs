//! Window assignment as Kafka Streams does it for ksqlDB: the tumbling and hopping windows
//! a record time falls into, when a window closes (end + grace) and when its state may go
//! (close, or start + retention when that is later). Session windows merge in the operator.

use sluice_sql::ast::{Window, WindowKind};

/// Kafka Streams' legacy default grace when a window names none: 24 hours.
pub(crate) const DEFAULT_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// The grace period of `w` in milliseconds.
pub(crate) fn grace(w: &Window) -> i64 {
    w.grace.map_or(DEFAULT_GRACE_MS, |d| d.millis as i64)
}

/// How long a time window's state is kept: `RETENTION`, else its size and grace (Kafka
/// Streams' default for a window store).
pub(crate) fn retention(w: &Window) -> i64 {
    match (w.retention, w.kind) {
        (Some(r), _) => r.millis as i64,
        (None, WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. }) => {
            (size.millis as i64).saturating_add(grace(w))
        }
        (None, WindowKind::Session { gap }) => (gap.millis as i64).saturating_add(grace(w)),
    }
}

/// Start and end (exclusive) of each time window holding `ts`, earliest first.
pub(crate) fn time_windows(kind: &WindowKind, ts: i64, out: &mut Vec<(i64, i64)>) {
    out.clear();
    let (size, advance) = match *kind {
        WindowKind::Tumbling { size } => (size.millis as i64, size.millis as i64),
        WindowKind::Hopping { size, advance } => (size.millis as i64, advance.millis as i64),
        WindowKind::Session { .. } => return,
    };
    if size <= 0 || advance <= 0 {
        return;
    }
    // The last window starting at or before ts, then back while the window still holds ts
    // (collected latest first, then put in order: no allocation).
    let mut start = ts - ts.rem_euclid(advance);
    while start > ts.saturating_sub(size) && start >= 0 {
        out.push((start, start.saturating_add(size)));
        start -= advance;
    }
    out.reverse();
}

/// How many windows one record falls in (at most): 1 for tumbling windows and sessions,
/// size / advance (rounded up) for hopping ones, capped so a silly window cannot make a
/// caller reserve huge buffers.
pub(crate) fn windows_per_record(kind: &WindowKind) -> usize {
    match *kind {
        WindowKind::Hopping { size, advance } if advance.millis > 0 => {
            size.millis.div_ceil(advance.millis).clamp(1, 64) as usize
        }
        _ => 1,
    }
}

/// The stream time at which state of a window ending at `end` may be dropped.
pub(crate) fn expiry(w: &Window, start: i64, end: i64) -> i64 {
    let gap = match w.kind {
        WindowKind::Session { gap } => gap.millis as i64,
        _ => 0,
    };
    let closed = end.saturating_add(gap).saturating_add(grace(w));
    match w.retention {
        Some(r) => closed.max(start.saturating_add(r.millis as i64)),
        None => closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sql::ast::Duration;

    #[test]
    fn hopping_windows_hold_the_time() {
        let kind = WindowKind::Hopping {
            size: Duration { millis: 30 },
            advance: Duration { millis: 10 },
        };
        let mut out = Vec::new();
        time_windows(&kind, 25, &mut out);
        assert_eq!(out, vec![(0, 30), (10, 40), (20, 50)]);
        time_windows(&kind, 5, &mut out);
        assert_eq!(out, vec![(0, 30)]);
    }

    #[test]
    fn tumbling_window_of_a_boundary_time_starts_there() {
        let kind = WindowKind::Tumbling {
            size: Duration { millis: 30_000 },
        };
        let mut out = Vec::new();
        time_windows(&kind, 30_000, &mut out);
        assert_eq!(out, vec![(30_000, 60_000)]);
    }
}
