"""SciPy references for tests/metrics_rank_correlation_test.ts (Debian's python3-scipy, 1.10).

Reads a JSON list of jobs on stdin and prints a JSON list of results:
  {"op": "spearman", "x": [...], "y": [...]}  -> {"rho": float or null}
  {"op": "rankdata", "x": [...]}              -> {"ranks": [...]}
  {"op": "bootstrap", "x": [...], "y": [...], "resamples": B, "level": L, "seed": s}
      -> {"lo": float, "hi": float}  (scipy.stats.bootstrap, paired, method="percentile")
"""
import json
import sys
import warnings

import numpy as np
from scipy import stats


def spearman_rho(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns nan
        r = stats.spearmanr(x, y).correlation
    return None if np.isnan(r) else float(r)


def run(job):
    op = job["op"]
    if op == "spearman":
        return {"rho": spearman_rho(job["x"], job["y"])}
    if op == "rankdata":
        return {"ranks": stats.rankdata(job["x"], method="average").tolist()}
    if op == "bootstrap":
        x = np.asarray(job["x"], dtype=np.float64)
        y = np.asarray(job["y"], dtype=np.float64)
        res = stats.bootstrap(
            (x, y),
            lambda a, b: stats.spearmanr(a, b).correlation,
            paired=True,
            vectorized=False,
            n_resamples=job["resamples"],
            confidence_level=job["level"],
            method="percentile",
            random_state=np.random.default_rng(job["seed"]),
        )
        ci = res.confidence_interval
        return {"lo": float(ci.low), "hi": float(ci.high)}
    raise ValueError(f"unknown op {op}")


print(json.dumps([run(j) for j in json.load(sys.stdin)]))
