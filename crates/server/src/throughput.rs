//! How many stone actions ended per minute on this server, per stone, over the last hour: what
//! the console's stones page draws. Counters at `/metrics` hold the totals for a monitoring
//! system to rate; this keeps the recent past for the console, which has none.

use std::collections::HashMap;
use std::sync::Mutex;

/// The minutes kept.
pub(crate) const MINUTES: usize = 60;
/// The stones kept apart; actions of any further stone count under [`OTHER`], since stone
/// names come from models and callers.
const STONES: usize = 100;
/// Where the stones past [`STONES`] count.
pub(crate) const OTHER: &str = "other";

/// One stone's counts per minute, the minute `latest` last.
#[derive(Clone, Copy)]
struct Ring {
    latest: i64,
    counts: [u32; MINUTES],
}

impl Ring {
    /// Moves the ring on to `minute`, forgetting the minutes that fell out of the hour.
    fn advance(&mut self, minute: i64) {
        let gone = minute.saturating_sub(self.latest);
        if gone <= 0 {
            return;
        }
        let gone = usize::try_from(gone).unwrap_or(MINUTES).min(MINUTES);
        self.counts.rotate_left(gone);
        self.counts[MINUTES - gone..].fill(0);
        self.latest = minute;
    }
}

/// Stone actions ended per minute, per stone.
#[derive(Default)]
pub(crate) struct Throughput {
    rings: Mutex<HashMap<String, Ring>>,
}

impl Throughput {
    /// An action of `stone` ended in `minute` (minutes since the epoch).
    pub(crate) fn ended(&self, stone: &str, minute: i64) {
        let mut rings = self.rings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = if rings.contains_key(stone) || rings.len() < STONES { stone } else { OTHER };
        let ring = rings.entry(key.to_owned()).or_insert(Ring { latest: minute, counts: [0; MINUTES] });
        ring.advance(minute);
        if let Some(last) = ring.counts.last_mut() {
            *last = last.saturating_add(1);
        }
    }

    /// Each stone's counts for the hour up to `minute`, oldest minute first; stones by name.
    pub(crate) fn hour(&self, minute: i64) -> Vec<(String, [u32; MINUTES])> {
        let rings = self.rings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, [u32; MINUTES])> = rings
            .iter()
            .map(|(stone, ring)| {
                let mut ring = *ring;
                ring.advance(minute);
                (stone.clone(), ring.counts)
            })
            .filter(|(_, counts)| counts.iter().any(|c| *c > 0))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_count_in_their_minute_and_leave_the_hour_after_sixty() {
        let t = Throughput::default();
        for _ in 0..3 {
            t.ended("billing", 1000);
        }
        t.ended("billing", 1002);
        t.ended("master", 1001);
        let hour = t.hour(1002);
        let billing = &hour[0].1;
        assert_eq!(
            (hour[0].0.as_str(), billing[MINUTES - 3], billing[MINUTES - 2], billing[MINUTES - 1]),
            ("billing", 3, 0, 1)
        );
        assert_eq!((hour[1].0.as_str(), hour[1].1[MINUTES - 2]), ("master", 1));
        let later = t.hour(1000 + MINUTES as i64);
        assert_eq!(later[0].1.iter().sum::<u32>(), 1, "the minute 1000 left the hour");
        assert!(t.hour(2000).is_empty(), "an hour without actions shows no stone");
        t.ended("billing", 1001);
        assert_eq!(t.hour(1002)[0].1[MINUTES - 1], 2, "a late count lands in the latest minute");
    }

    #[test]
    fn stones_past_the_hundredth_count_together() {
        let t = Throughput::default();
        for n in 0..STONES + 5 {
            t.ended(&format!("stone-{n:03}"), 7);
        }
        let hour = t.hour(7);
        assert_eq!(hour.len(), STONES + 1);
        let other = hour.iter().find(|(s, _)| s == OTHER).map(|(_, c)| c[MINUTES - 1]);
        assert_eq!(other, Some(5));
    }
}
