//! Rate limits for log lines that a client can cause once per request: a flood must not become a log flood.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Admits at most `per_second` events a second and counts the ones it turns away.
#[derive(Debug)]
pub struct LogThrottle {
    per_second: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    admitted: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle admitting `per_second` events a second.
    pub const fn new(per_second: u32) -> Self {
        LogThrottle { per_second, state: Mutex::new(Window { start: None, admitted: 0, suppressed: 0 }) }
    }

    /// Whether this event may be logged; if so, how many were turned away since the last admitted one.
    pub fn admit(&self) -> Option<u64> {
        // std Mutex: nothing awaits inside, and the critical section is a few instructions.
        let mut window = self.state.lock().ok()?;
        let now = Instant::now();
        if window.start.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1)) {
            window.start = Some(now);
            window.admitted = 0;
        }
        if window.admitted < self.per_second {
            window.admitted += 1;
            Some(std::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_rate_and_the_next_admitted_line_counts_what_was_dropped() {
        let throttle = LogThrottle::new(3);
        let admitted: Vec<Option<u64>> = (0..10).map(|_| throttle.admit()).collect();
        assert_eq!(admitted, [Some(0), Some(0), Some(0), None, None, None, None, None, None, None]);
        std::thread::sleep(Duration::from_millis(1010));
        assert_eq!(throttle.admit(), Some(7), "the first line of the next second reports the 7 dropped");
        assert_eq!(throttle.admit(), Some(0));
    }
}
