"""Reference for bench_fit: scikit-learn's LinearRegression on the same .npy shards.

Usage: sklearn_fit.py PAIRS_FOLDER OUT_FOLDER
Loads every r-*.npy / w-*.npy shard listed in manifest.json, times LinearRegression().fit (the
figure compared against), and writes coef_ and intercept_ as .npy for the agreement check.
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
np.save(os.path.join(out, "sklearn_coef.npy"), model.coef_.astype(np.float32))
np.save(os.path.join(out, "sklearn_intercept.npy"), model.intercept_.astype(np.float32))
print(json.dumps({"load_seconds": t1 - t0, "fit_seconds": t2 - t1, "rows": int(x.shape[0])}))
