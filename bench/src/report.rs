//! The Markdown report appended to docs/BENCHMARKS.md, and the latency CSV the chart is drawn
//! from.

use std::fmt::Write as _;
use std::path::Path;

use crate::measure::Result;

/// Facts about the run printed above the table.
pub struct RunInfo {
    /// `small` or `full`.
    pub scale: String,
    /// Build profile of the nowdb binary.
    pub nowdb_build: String,
    /// Versions of the peers.
    pub versions: Vec<String>,
    /// Notes on loading times etc.
    pub notes: Vec<String>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores, {mem_gib:.0} GiB, {cpu}")
}

/// Renders the results as Markdown, with each system's ratio to nowdb on the same workload.
pub fn markdown(results: &[Result], info: &RunInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## Run of {} (scale `{}`)\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"), info.scale);
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(out, "- nowdb {} ({} build); {}", env!("CARGO_PKG_VERSION"), info.nowdb_build, info.versions.join("; "));
    for n in &info.notes {
        let _ = writeln!(out, "- {n}");
    }
    let _ = writeln!(out, "\n| workload | system | throughput | p50 µs | p99 µs | p99.9 µs | throughput vs nowdb | p99 vs nowdb | note |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let base = results.iter().find(|b| b.workload == r.workload && b.system == "nowdb");
        let (tput_ratio, p99_ratio) = match base {
            Some(b) => (
                format!("{:.2}x", r.throughput / b.throughput.max(1e-9)),
                match (r.latency_us, b.latency_us) {
                    (Some(l), Some(bl)) => format!("{:.2}x", l.1 as f64 / bl.1.max(1) as f64),
                    _ => "-".into(),
                },
            ),
            None => ("-".into(), "-".into()),
        };
        let (p50, p99, p999) = match r.latency_us {
            Some((a, b, c)) => (a.to_string(), b.to_string(), c.to_string()),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} {} | {p50} | {p99} | {p999} | {tput_ratio} | {p99_ratio} | {} |",
            r.workload, r.system, r.throughput, r.unit, r.note
        );
    }
    out
}

/// Writes `system,workload,percentile,micros` rows for the chart.
pub fn write_curves(results: &[Result], path: &Path) -> std::io::Result<()> {
    let mut csv = String::from("system,workload,percentile,micros\n");
    for r in results {
        for (q, us) in &r.curve {
            let _ = writeln!(csv, "{},{},{},{}", r.system, r.workload, q, us);
        }
    }
    std::fs::write(path, csv)
}
