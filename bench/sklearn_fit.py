"""Reference for bench_fit: scikit-learn's LinearRegression on the same .npy shards.

Usage: sklearn_fit.py PAIRS_FOLDER OUT_FOLDER
Loads every r-*.npy / w-*.npy shard listed in manifest.json and times LinearRegression().fit on
the data as stored (float32): the figure compared against. Then fits again in float64 and writes
both fits' coef_ and intercept_ as .npy for the agreement check. The float64 reference is fitted
on the live features only (dead ones set to 0): with dead features scikit-learn's solution is not
the minimum-norm one (their coefficients become huge and the others absorb the rounding).
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LinearRegression

pairs, out = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(pairs, "manifest.json")))
t0 = time.perf_counter()
x = np.concatenate([np.load(os.path.join(pairs, s["features"])) for s in manifest["shards"]])
y = np.concatenate([np.load(os.path.join(pairs, s["latents"])) for s in manifest["shards"]])
t1 = time.perf_counter()
model = LinearRegression().fit(x, y)
t2 = time.perf_counter()
np.save(os.path.join(out, "sklearn32_coef.npy"), model.coef_.astype(np.float32))
np.save(os.path.join(out, "sklearn32_intercept.npy"), model.intercept_.astype(np.float32))
t3 = time.perf_counter()
live = x.std(axis=0) > 0
model64 = LinearRegression().fit(x[:, live].astype(np.float64), y.astype(np.float64))
t4 = time.perf_counter()
coef = np.zeros((y.shape[1], x.shape[1]))
coef[:, live] = model64.coef_
np.save(os.path.join(out, "sklearn_coef.npy"), coef)
np.save(os.path.join(out, "sklearn_intercept.npy"), model64.intercept_)
print(json.dumps({"load_seconds": t1 - t0, "fit_seconds": t2 - t1, "fit64_seconds": t4 - t3, "dead_features": int((~live).sum()),
                  "rows": int(x.shape[0])}))
