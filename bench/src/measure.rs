//! Latency histograms and the results rows they become.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A new histogram of microseconds (1 µs .. 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

/// Records one latency.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// One measured (workload, system) pair.
#[derive(Debug, Clone)]
pub struct Result {
    /// Workload name, e.g. `lookup c=16`.
    pub workload: String,
    /// System name.
    pub system: String,
    /// Operations (or events) per second.
    pub throughput: f64,
    /// What `throughput` counts.
    pub unit: &'static str,
    /// Latency percentiles in µs (p50, p99, p99.9), when latencies were recorded.
    pub latency_us: Option<(u64, u64, u64)>,
    /// Latency curve for the chart: (percentile, µs).
    pub curve: Vec<(f64, u64)>,
    /// A remark (what stands in for what).
    pub note: String,
}

impl Result {
    /// A result with latencies from `h` over `elapsed`.
    pub fn from_histogram(workload: &str, system: &str, h: &Histogram<u64>, elapsed: Duration, unit: &'static str, note: &str) -> Self {
        let curve = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0]
            .iter()
            .map(|&q| (q, h.value_at_quantile(q / 100.0)))
            .collect();
        Self {
            workload: workload.into(),
            system: system.into(),
            throughput: h.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            unit,
            latency_us: Some((h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.value_at_quantile(0.999))),
            curve,
            note: note.into(),
        }
    }

    /// A throughput-only result.
    pub fn throughput(workload: &str, system: &str, count: u64, elapsed: Duration, unit: &'static str, note: &str) -> Self {
        Self {
            workload: workload.into(),
            system: system.into(),
            throughput: count as f64 / elapsed.as_secs_f64().max(1e-9),
            unit,
            latency_us: None,
            curve: vec![],
            note: note.into(),
        }
    }
}

/// A small fast PRNG (xorshift64*), so that key choice costs nothing next to a lookup.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
