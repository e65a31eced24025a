//! Sliding-window log of the attempts of one throttle key, for the in-memory store: the
//! time of every attempt still inside the window, oldest first.

use std::collections::VecDeque;

use super::AttemptId;

/// Attempts of one key with their times in milliseconds on the store's clock.
#[derive(Debug, Default)]
pub struct AttemptLog {
    attempts: VecDeque<(u64, AttemptId)>,
}

impl AttemptLog {
    /// Drops the attempts made `window` or longer before `now`.
    pub fn drop_older(&mut self, now: u64, window: u64) {
        while let Some(&(at, _)) = self.attempts.front() {
            if now.saturating_sub(at) < window {
                break;
            }
            self.attempts.pop_front();
        }
    }

    /// Records an attempt at `now` unless `limit` attempts are already inside the window
    /// ending at `now`. Returns whether it was recorded.
    pub fn try_record(&mut self, now: u64, window: u64, limit: u64, id: AttemptId) -> bool {
        self.drop_older(now, window);
        if self.count() >= limit {
            return false;
        }
        self.attempts.push_back((now, id));
        true
    }

    /// Removes the attempt `id` when it is still in the log.
    pub fn remove(&mut self, id: AttemptId) {
        self.attempts.retain(|&(_, recorded)| recorded != id);
    }

    pub fn count(&self) -> u64 {
        self.attempts.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 1000;

    #[test]
    fn limit_holds_across_any_boundary() {
        let mut log = AttemptLog::default();
        assert!(log.try_record(0, WINDOW, 3, AttemptId(1)));
        assert!(log.try_record(990, WINDOW, 3, AttemptId(2)));
        assert!(log.try_record(995, WINDOW, 3, AttemptId(3)));

        assert!(!log.try_record(999, WINDOW, 3, AttemptId(4)));
        assert!(
            log.try_record(1000, WINDOW, 3, AttemptId(5)),
            "first attempt left"
        );
        assert!(!log.try_record(1010, WINDOW, 3, AttemptId(6)));
        assert!(log.try_record(1990, WINDOW, 3, AttemptId(7)));
    }

    #[test]
    fn removed_attempt_frees_its_place() {
        let mut log = AttemptLog::default();
        assert!(log.try_record(0, WINDOW, 1, AttemptId(1)));

        log.remove(AttemptId(1));

        assert_eq!(log.count(), 0);
        assert!(log.try_record(1, WINDOW, 1, AttemptId(2)));
    }
}
