//! Timestamps in the reference's ISO-8601 spellings.
//!
//! Conversation events carry naive timestamps (`2026-11-24T12:57:27.455685`);
//! bash events and conversation metadata carry UTC with a trailing `Z`. We
//! always use UTC, so both spellings name the same instant and sort the same
//! way as strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds and microseconds since the Unix epoch, now; strictly increasing
/// across calls in this process, so events created in the same microsecond
/// still sort in creation order.
fn now_parts() -> (i64, u32) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64;
    let mut prev = LAST.load(Ordering::Relaxed);
    let micros = loop {
        let next = real.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    ((micros / 1_000_000) as i64, (micros % 1_000_000) as u32)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats a Unix time as `YYYY-MM-DDTHH:MM:SS.ffffff` (UTC, no zone suffix).
pub fn format_naive(secs: i64, micros: u32) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Now as a naive ISO timestamp, the spelling of conversation events.
pub fn now_naive() -> String {
    let (s, us) = now_parts();
    format_naive(s, us)
}

/// Now as an ISO timestamp with a `Z` suffix, the spelling of bash events and
/// conversation metadata.
pub fn now_utc() -> String {
    let mut s = now_naive();
    s.push('Z');
    s
}

/// Now as the 20-digit `YYYYMMDDHHMMSSffffff` key used in bash event file names.
pub fn compact_key(iso: &str) -> String {
    iso.bytes()
        .filter(u8::is_ascii_digit)
        .map(char::from)
        .take(20)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_naive(0, 0), "1970-01-01T00:00:00.000000");
        // 2026-11-24T12:57:27.455685Z
        assert_eq!(
            format_naive(1_795_525_047, 455_685),
            "2026-11-24T12:57:27.455685"
        );
        assert_eq!(format_naive(951_782_400, 1), "2000-02-29T00:00:00.000001");
    }

    #[test]
    fn compact_key_is_sortable_digits() {
        assert_eq!(
            compact_key("2026-11-24T12:57:27.062936Z"),
            "20261124125727062936"
        );
        let a = now_utc();
        assert_eq!(compact_key(&a).len(), 20);
    }
}
