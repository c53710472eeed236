"""Scale: seconds and peak memory of every selector and propagator as n grows.

For each n in ``--sizes`` (default 50k, 200k, 1M) the data are ``n x 128`` float32 features
from a 10-component Gaussian mixture. Each operation runs in a child process of its own so
that its peak resident memory (``ru_maxrss``) is its own and a run past ``--timeout`` can be
stopped without losing the table:

* every selector: ``fit(F).select(100)``;
* every propagator: ``fit(F, y)`` with 40 labels (4 per component), ``-1`` elsewhere.

Targets on 2 CPU cores: every operation at 200k under 60 s, at 1M under 5 minutes and 8 GB.
The data are generated in the child (not counted in the seconds, counted in the memory: the
features alone are 0.5 GB at 1M).

Run::

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --sizes 50000 200000 --timeout 600
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

SELECTORS = ("MultiClusterSelector", "RandomSelector", "KMedoidsSelector", "CoresetSelector",
             "TypiClustSelector", "ProbCoverSelector")
PROPAGATORS = ("SeededKMeansPropagator", "LLGCPropagator", "CombinedPropagator")
N_FEATURES = 128
N_COMPONENTS = 10
N_SELECT = 100
N_LABELS = 40

CHILD = r"""
import json, resource, sys, time
import numpy as np
import as3l_sklearn

name, n = sys.argv[1], int(sys.argv[2])
rng = np.random.RandomState(0)
means = rng.normal(scale=1.0, size=(%(k)d, %(d)d)).astype(np.float32)
component = rng.randint(0, %(k)d, size=n)
F = means[component] + rng.normal(scale=0.8, size=(n, %(d)d)).astype(np.float32)
estimator = getattr(as3l_sklearn, name)(random_state=0) if name != "LLGCPropagator" \
    else as3l_sklearn.LLGCPropagator()
start = time.perf_counter()
if name.endswith("Selector"):
    estimator.fit(F).select(%(select)d)
else:
    y = np.full(n, -1)
    for c in range(%(k)d):
        members = np.flatnonzero(component == c)[: %(labels)d // %(k)d]
        y[members] = c
    estimator.fit(F, y)
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))
""" % {"k": N_COMPONENTS, "d": N_FEATURES, "select": N_SELECT, "labels": N_LABELS}


def run_one(name: str, n: int, timeout: float) -> dict:
    """One operation in a child process: seconds and peak memory, or how it failed."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, name, str(n)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout > {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed ({done.returncode}): {last[:120]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["status"] = "ok"
    result["wall_with_data_s"] = time.perf_counter() - start
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50000, 200000, 1000000])
    parser.add_argument("--only", nargs="*", default=None, help="estimator class names to run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per operation")
    args = parser.parse_args(argv)

    names = [n for n in SELECTORS + PROPAGATORS if not args.only or n in args.only]
    rows = []
    for n in args.sizes:
        for name in names:
            result = run_one(name, n, args.timeout)
            operation = f"select({N_SELECT})" if name.endswith("Selector") else f"fit, {N_LABELS} labels"
            row = {"estimator": name, "operation": operation, "n": n,
                   "seconds": round(result["seconds"], 2) if "seconds" in result else None,
                   "peak_MB": round(result["peak_mb"]) if "peak_mb" in result else None,
                   "status": result["status"]}
            print(row, flush=True)
            rows.append(row)
    save_results("bench_scale", rows, title="Selection and propagation as n grows (128-d features)",
                 settings={"sizes": args.sizes, "timeout_s": args.timeout, "n_features": N_FEATURES,
                           "n_select": N_SELECT, "n_labels": N_LABELS},
                 notes="Each operation in its own process; peak_MB is that process's maximum "
                       "resident memory, data included. Targets (2 cores): < 60 s at 200k; "
                       "< 300 s and < 8 GB at 1M.")


if __name__ == "__main__":
    main()
