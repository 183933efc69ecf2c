#!/usr/bin/env python3
"""Reference fits for tests/test_linking.cpp.

Usage: sklearn_reference.py DIR ALPHA

Reads DIR/X.npy [n, D] and DIR/Y.npy [n, w_dim], fits scikit-learn's LinearRegression() and
Ridge(alpha=ALPHA) (both with an intercept) in float64 and writes
  DIR/ols_coef.npy [w_dim, D], DIR/ols_intercept.npy [w_dim],
  DIR/ridge_coef.npy [w_dim, D], DIR/ridge_intercept.npy [w_dim]
as float64 arrays. Exits non-zero with a message on stderr if numpy/scikit-learn are missing.
"""
import os
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: sklearn_reference.py DIR ALPHA", file=sys.stderr)
        return 2
    folder, alpha = sys.argv[1], float(sys.argv[2])
    try:
        import numpy as np
        import sklearn
        from sklearn.linear_model import LinearRegression, Ridge
    except ImportError as error:  # the test must fail, not skip, without scikit-learn
        print(f"sklearn_reference.py: cannot import numpy/scikit-learn for {sys.executable}: {error}",
              file=sys.stderr)
        return 3

    # float64 so that scikit-learn does not fit in the float32 of the files.
    x = np.load(os.path.join(folder, "X.npy")).astype(np.float64)
    y = np.load(os.path.join(folder, "Y.npy")).astype(np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        print(f"sklearn_reference.py: bad shapes X {x.shape}, Y {y.shape}", file=sys.stderr)
        return 4

    fits = {
        "ols": LinearRegression(fit_intercept=True),
        "ridge": Ridge(alpha=alpha, fit_intercept=True),
    }
    for name, model in fits.items():
        model.fit(x, y)
        coef = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).reshape(y.shape[1], x.shape[1]))
        intercept = np.ascontiguousarray(np.asarray(model.intercept_, dtype=np.float64).reshape(y.shape[1]))
        np.save(os.path.join(folder, f"{name}_coef.npy"), coef)
        np.save(os.path.join(folder, f"{name}_intercept.npy"), intercept)
    print(f"sklearn {sklearn.__version__} numpy {np.__version__}: fitted X {x.shape}, Y {y.shape}, alpha {alpha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
