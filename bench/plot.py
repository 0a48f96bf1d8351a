"""Draws the lookup latency distributions of a nowdb-bench run (CSV from --curves) as a PNG."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
curves = defaultdict(list)
with open(src, newline="") as f:
    for row in csv.DictReader(f):
        if row["workload"].startswith("lookup"):
            curves[(row["workload"], row["system"])].append((float(row["percentile"]), int(row["micros"])))

workloads = sorted({w for w, _ in curves})
fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4), squeeze=False)
for ax, workload in zip(axes[0], workloads):
    for (w, system), points in sorted(curves.items()):
        if w != workload:
            continue
        points = [(q, us) for q, us in points if q < 100.0]
        # x: "nines" (percentile 90 -> 1, 99 -> 2, 99.9 -> 3).
        xs = [-__import__("math").log10(1 - q / 100.0) for q, _ in points]
        ax.plot(xs, [us for _, us in points], marker="o", label=system)
    ax.set_title(workload)
    ax.set_xticks([0, 1, 2, 3, 4])
    ax.set_xticklabels(["p0", "p90", "p99", "p99.9", "p99.99"])
    ax.set_yscale("log")
    ax.set_ylabel("latency (µs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
fig.tight_layout()
fig.savefig(dst, dpi=100)
print(f"chart written to {dst}")
