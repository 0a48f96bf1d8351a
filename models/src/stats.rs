//! [`ModelStats`]: calls, rows scored and batch latency of one model version, in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// What a model version has done since it was loaded.
#[derive(Debug)]
pub struct ModelStats {
    calls: AtomicU64,
    rows: AtomicU64,
    /// Sum of batch latencies, microseconds.
    micros: AtomicU64,
    /// Batch latencies in microseconds.
    latency: Mutex<Option<Histogram<u64>>>,
}

impl Default for ModelStats {
    fn default() -> Self {
        // Three significant digits, auto-resizing: a few KiB per model. (`new` only fails
        // for more than five significant digits; `None` would just leave latency unreported.)
        let latency = Histogram::new(3).ok().map(|mut h| {
            h.auto(true);
            h
        });
        Self { calls: AtomicU64::new(0), rows: AtomicU64::new(0), micros: AtomicU64::new(0), latency: Mutex::new(latency) }
    }
}

/// A snapshot of [`ModelStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Batches run.
    pub calls: u64,
    /// Rows scored.
    pub rows: u64,
    /// Mean batch latency, microseconds.
    pub mean_us: Option<f64>,
    /// 99th percentile batch latency, microseconds.
    pub p99_us: Option<u64>,
}

impl ModelStats {
    /// Records one batch of `rows` rows that took `elapsed`.
    pub fn record(&self, rows: usize, elapsed: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Ok(mut guard) = self.latency.lock() {
            if let Some(h) = guard.as_mut() {
                let _ = h.record((elapsed.as_micros() as u64).max(1));
            }
        }
    }

    /// How long a run of `rows` rows is expected to take (microseconds), from the mean per
    /// row so far; `None` before the first run.
    pub fn expected_micros(&self, rows: usize) -> Option<f64> {
        let scored = self.rows.load(Ordering::Relaxed);
        (scored > 0).then(|| self.micros.load(Ordering::Relaxed) as f64 / scored as f64 * rows as f64)
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (mean_us, p99_us) = match self.latency.lock() {
            Ok(guard) => match guard.as_ref() {
                Some(h) if !h.is_empty() => (Some(h.mean()), Some(h.value_at_quantile(0.99))),
                _ => (None, None),
            },
            Err(_) => (None, None),
        };
        StatsSnapshot { calls: self.calls.load(Ordering::Relaxed), rows: self.rows.load(Ordering::Relaxed), mean_us, p99_us }
    }
}
