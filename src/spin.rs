//! When to keep the event loop awake for the peer's answer.
//!
//! A round trip between two processes that sleep in `epoll_wait` pays two wake-ups, and on this kind of
//! machine (a 2-vCPU VM) waking an idle vCPU costs 30–55 µs, far more than the work of a small message. So
//! after this side wrote something and the kernel took all of it, the channel keeps the loop polling, without
//! sleeping, for a short window (50 µs by default): an answer that comes within it is read at once. The loop
//! keeps turning (timers, immediates and other I/O run as usual); it only does not sleep.
//!
//! The window is spent only where it pays. A window that passes without an answer is a miss; after two
//! misses in a row the channel lets 1, then 2, 4, … up to 1024 chances to wait go by before it waits again,
//! and an answer within a window starts over. A peer that answers slowly, or a side that only sends, costs
//! a few windows and then almost nothing. On a single CPU waiting awake would only take time from the peer,
//! so it is off there.

use std::time::{Duration, Instant};

/// The longest window one may ask for, in microseconds.
pub const MAX_WINDOW_US: u32 = 1000;
/// Misses in a row after which chances to wait are let go by.
const MISSES_BEFORE_BACKOFF: u32 = 2;
/// The most chances let go by after a run of misses (2^10).
const MAX_BACKOFF_SHIFT: u32 = 10;

/// Counters for tests and diagnostics: windows opened, answered, passed, and chances let go by. They wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpinStats {
  pub armed: u32,
  pub hits: u32,
  pub misses: u32,
  pub skipped: u32,
}

#[derive(Debug)]
pub struct Spin {
  window: Duration,
  /// What counts the CPUs this process may run on, called once, at the first write (see `wrote`).
  cpus: Option<fn() -> usize>,
  until: Option<Instant>,
  misses_in_row: u32,
  skip: u32,
  stats: SpinStats,
}

impl Spin {
  /// A policy with a window of `window_us` microseconds; 0 turns it off, and so does a machine with one CPU, which
  /// `cpus` counts at the first write rather than here: counting them takes Rust's standard library ~60-75 µs
  /// (it reads the cgroup's CPU quota from files), which a child then spends after its first message is in the
  /// kernel instead of before.
  pub fn new(window_us: u32, cpus: fn() -> usize) -> Spin {
    Spin {
      window: Duration::from_micros(window_us.min(MAX_WINDOW_US) as u64),
      cpus: Some(cpus),
      until: None,
      misses_in_row: 0,
      skip: 0,
      stats: SpinStats::default(),
    }
  }

  pub fn enabled(&self) -> bool {
    !self.window.is_zero()
  }

  pub fn waiting(&self) -> bool {
    self.until.is_some()
  }

  /// This side's bytes all reached the kernel: returns whether to wait awake until `now + window`. A window
  /// already open is not extended: a side that keeps writing without answers (a stream) sees its windows pass
  /// and backs off, rather than never letting its loop sleep.
  pub fn wrote(&mut self, now: Instant) -> bool {
    if let Some(cpus) = self.cpus.take() {
      if cpus() < 2 {
        self.window = Duration::ZERO;
      }
    }
    if !self.enabled() {
      return false;
    }
    if self.until.is_some() {
      return true;
    }
    if self.skip > 0 {
      self.skip -= 1;
      self.stats.skipped = self.stats.skipped.wrapping_add(1);
      return false;
    }
    self.stats.armed = self.stats.armed.wrapping_add(1);
    self.until = Some(now + self.window);
    true
  }

  /// Bytes arrived: a window open now was answered.
  pub fn answered(&mut self) {
    if self.until.take().is_some() {
      self.misses_in_row = 0;
      self.stats.hits = self.stats.hits.wrapping_add(1);
    }
  }

  /// The loop turned while waiting: returns whether to go on waiting. A window that passed is a miss.
  pub fn tick(&mut self, now: Instant) -> bool {
    match self.until {
      Some(until) if now < until => true,
      Some(_) => {
        self.until = None;
        self.stats.misses = self.stats.misses.wrapping_add(1);
        self.misses_in_row = self.misses_in_row.saturating_add(1);
        if self.misses_in_row >= MISSES_BEFORE_BACKOFF {
          let shift = (self.misses_in_row - MISSES_BEFORE_BACKOFF).min(MAX_BACKOFF_SHIFT);
          self.skip = 1 << shift;
        }
        false
      }
      None => false,
    }
  }

  /// Stops waiting without counting a miss (the channel is closing).
  pub fn cancel(&mut self) {
    self.until = None;
  }

  pub fn stats(&self) -> SpinStats {
    self.stats
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn later(t: Instant, us: u64) -> Instant {
    t + Duration::from_micros(us)
  }

  #[test]
  fn off_with_a_zero_window_or_one_cpu() {
    let now = Instant::now();
    assert!(!Spin::new(0, || 8).wrote(now));
    assert!(!Spin::new(50, || 1).wrote(now));
    assert!(Spin::new(50, || 2).wrote(now));
  }

  #[test]
  fn the_cpus_are_counted_once_at_the_first_write() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTED: AtomicUsize = AtomicUsize::new(0);
    fn one_cpu() -> usize {
      COUNTED.fetch_add(1, Ordering::Relaxed);
      1
    }
    let now = Instant::now();
    let mut spin = Spin::new(50, one_cpu);
    assert!(spin.enabled());
    assert_eq!(COUNTED.load(Ordering::Relaxed), 0);
    assert!(!spin.wrote(now));
    assert!(!spin.enabled());
    assert!(!spin.wrote(now));
    assert_eq!(COUNTED.load(Ordering::Relaxed), 1);
  }

  #[test]
  fn the_window_is_capped() {
    let now = Instant::now();
    let mut spin = Spin::new(u32::MAX, || 2);
    assert!(spin.wrote(now));
    assert!(spin.tick(later(now, MAX_WINDOW_US as u64 - 1)));
    assert!(!spin.tick(later(now, MAX_WINDOW_US as u64)));
  }

  #[test]
  fn an_answer_within_the_window_is_a_hit() {
    let now = Instant::now();
    let mut spin = Spin::new(50, || 2);
    assert!(spin.wrote(now));
    assert!(spin.tick(later(now, 40)));
    spin.answered();
    assert!(!spin.waiting());
    assert_eq!(
      spin.stats(),
      SpinStats {
        armed: 1,
        hits: 1,
        misses: 0,
        skipped: 0
      }
    );
  }

  #[test]
  fn writes_while_waiting_do_not_extend_the_window() {
    let now = Instant::now();
    let mut spin = Spin::new(50, || 2);
    assert!(spin.wrote(now));
    assert!(spin.wrote(later(now, 40)));
    assert!(!spin.tick(later(now, 50)));
    assert_eq!(spin.stats().armed, 1);
    assert_eq!(spin.stats().misses, 1);
  }

  #[test]
  fn misses_in_a_row_let_ever_more_chances_go_by_and_a_hit_starts_over() {
    let mut now = Instant::now();
    let mut spin = Spin::new(50, || 2);
    let miss = |spin: &mut Spin, now: &mut Instant| {
      assert!(spin.wrote(*now));
      *now = later(*now, 60);
      assert!(!spin.tick(*now));
    };
    miss(&mut spin, &mut now);
    miss(&mut spin, &mut now);
    // 2 misses: 1 chance goes by, then 2, then 4.
    for skipped in [1, 2, 4] {
      for _ in 0..skipped {
        assert!(!spin.wrote(now));
      }
      miss(&mut spin, &mut now);
    }
    assert_eq!(
      spin.stats(),
      SpinStats {
        armed: 5,
        hits: 0,
        misses: 5,
        skipped: 7
      }
    );
    for _ in 0..8 {
      assert!(!spin.wrote(now));
    }
    assert!(spin.wrote(now));
    spin.answered();
    // After a hit, the next window opens at once, and one miss does not back off.
    miss(&mut spin, &mut now);
    assert!(spin.wrote(now));
  }

  #[test]
  fn backoff_stops_growing() {
    let mut now = Instant::now();
    let mut spin = Spin::new(50, || 2);
    for _ in 0..40 {
      while !spin.wrote(now) {}
      now = later(now, 60);
      spin.tick(now);
    }
    let before = spin.stats().skipped;
    while !spin.wrote(now) {}
    assert_eq!(spin.stats().skipped - before, 1 << MAX_BACKOFF_SHIFT);
  }

  #[test]
  fn cancel_is_not_a_miss() {
    let now = Instant::now();
    let mut spin = Spin::new(50, || 2);
    spin.wrote(now);
    spin.cancel();
    assert!(!spin.tick(later(now, 100)));
    assert_eq!(spin.stats().misses, 0);
  }
}
