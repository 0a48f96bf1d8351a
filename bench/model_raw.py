"""The raw ONNX Runtime baseline of the model benchmark: the same model, the same rows, the
same batch size and thread count as nowdb's `SELECT sum(model(a, b, c)) FROM scoring`, run by
onnxruntime's Python API on arrays already in memory.

    python bench/model_raw.py MODEL.onnx ROWS BATCH THREADS WORKERS

nowdb scores a query's batches on as many partitions as the machine has cores, each run with
THREADS intra-op threads; here WORKERS Python threads (ONNX Runtime releases the GIL in `run`)
share one session the same way.

Prints one JSON line: rows, seconds, rows_per_s, sum (to check both computed the same).
The rows are the ones the Rust harness writes (`score_row` in bench/src/models.rs).
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort


# Timed runs; the best is reported (as nowdb's side does).
RUNS = 5


def rows(n):
    i = np.arange(n, dtype=np.int64)
    a = ((i * 37) % 1000).astype(np.float32) / np.float32(100.0)
    b = ((i * 11) % 500).astype(np.float32) / np.float32(50.0)
    c = ((i * 7) % 300).astype(np.float32) / np.float32(30.0)
    return np.stack([a, b, c], axis=1)


def main():
    model, n, batch, threads, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = rows(n)
    batches = [x[s:s + batch] for s in range(0, n, batch)]
    sess.run(None, {name: batches[0]})  # warm-up, like nowdb's session made at CREATE MODEL
    def score(xb):
        return float(sess.run(None, {name: xb})[0].sum(dtype=np.float64))

    best = None
    total = 0.0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(RUNS):
            start = time.perf_counter()
            total = sum(pool.map(score, batches))
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
    print(json.dumps({"rows": n, "seconds": best, "rows_per_s": n / best, "sum": total}))


if __name__ == "__main__":
    main()
