#!/usr/bin/python3
"""Fits and checks the label confidence (include/linkstyle/label_confidence.hpp) on ground truth.

Usage: tools/calibrate_confidence.py OUT.png STUDY [STUDY ...]

Each STUDY is a shapes-world study after `linkstyle sweep` and `linkstyle probe`. Every labelled
unit with a known answer is one case:
  - a planted unit whose factor some concept measures: does its label name the factor?
  - any other labelled expressible unit: does its label agree with the probe's label?
The evidence is the sweep's own (units table): log |z|, the share of tuning samples that agree
with the label's sign, the margin to the second concept, and the cycle correlation.

Prints the logistic coefficients (fitted on all cases), then the calibration of held-out
predictions (each study's cases predicted by a fit on the other studies; with one study, 5-fold
cross-validation): a table of 5 bins, the expected calibration error (ECE, the case-weighted mean
|observed - predicted| over the bins), the same for the confidence the library computes now,
and writes the reliability diagram of the held-out predictions to OUT.png.
"""
import json
import sqlite3
import sys

import numpy as np
from PIL import Image, ImageDraw
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

BINS = 5
# Inverse L2 strength: weak, as the evidence has only four coefficients (C = 1 shrank them so far
# that labels of confidence 0.24 agreed 60% of the time in-sample).
REGULARISATION_C = 100.0


def cases(study):
    db = sqlite3.connect(f"{study}/sweeps/results.sqlite")
    rows = db.execute(
        "SELECT unit, label_z, label_sample_agreement, label_margin, coalesce(correlation, 0), expressible, "
        "label_confidence FROM units WHERE label_part IS NOT NULL").fetchall()
    truth = json.load(open(f"{study}/sweeps/ground_truth.json"))
    answer = {}
    for u in truth["per_unit"]:
        answer[u["unit"]] = bool(u["agree"])
    planted = set()
    for u in truth.get("planted", {}).get("units", []):
        planted.add(u["unit"])
        if u["measurable"] and u["label"]:
            answer[u["unit"]] = bool(u["label_agrees"])
    x, y, current, kinds = [], [], [], []
    for unit, z, agreement, margin, cycle, expressible, confidence in rows:
        if unit not in answer or agreement is None or margin is None:
            continue
        x.append([np.log(abs(z)), agreement, margin, cycle])
        y.append(answer[unit])
        current.append(confidence)
        kinds.append("planted" if unit in planted else "probe")
    return np.array(x, float), np.array(y, bool), np.array(current, float), kinds


def calibration(p, y):
    edges = np.linspace(0, 1, BINS + 1)
    table, error = [], 0.0
    for k in range(BINS):
        inside = (p >= edges[k]) & ((p < edges[k + 1]) | (k == BINS - 1))
        if inside.any():
            table.append((edges[k], edges[k + 1], int(inside.sum()), float(p[inside].mean()), float(y[inside].mean())))
            error += inside.sum() / len(p) * abs(p[inside].mean() - y[inside].mean())
    return table, error


def diagram(table, path, title):
    size, margin = 420, 50
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    span = size - 2 * margin

    def at(px, py):
        return margin + px * span, size - margin - py * span

    draw.rectangle([at(0, 1), at(1, 0)], outline="black")
    draw.line([at(0, 0), at(1, 1)], fill=(150, 150, 150), width=1)
    for low, high, count, predicted, observed in table:
        draw.rectangle([at(low + 0.01, observed), at(high - 0.01, 0)], fill=(90, 130, 200))
        draw.ellipse([at(predicted, observed)[0] - 3, at(predicted, observed)[1] - 3,
                      at(predicted, observed)[0] + 3, at(predicted, observed)[1] + 3], fill="black")
        draw.text((at(low + 0.02, observed)[0], at(low, observed)[1] - 14), f"n={count}", fill="black")
    for tick in (0, 0.5, 1):
        draw.text((at(tick, 0)[0] - 8, size - margin + 6), f"{tick:g}", fill="black")
        draw.text((margin - 28, at(0, tick)[1] - 6), f"{tick:g}", fill="black")
    draw.text((margin, size - margin + 22), "confidence (held-out prediction)", fill="black")
    draw.text((margin, 12), title, fill="black")
    draw.text((margin, 28), "bars: share of labels that agree with the ground truth", fill="black")
    image.save(path)


def main():
    out, studies = sys.argv[1], sys.argv[2:]
    data = [cases(s) for s in studies]
    x = np.concatenate([d[0] for d in data])
    y = np.concatenate([d[1] for d in data])
    current = np.concatenate([d[2] for d in data])
    group = np.concatenate([[i] * len(d[1]) for i, d in enumerate(data)])
    kinds = sum((d[3] for d in data), [])
    model = LogisticRegression(C=REGULARISATION_C).fit(x, y)
    names = ["log |z|", "sample agreement", "margin", "cycle correlation"]
    print(f"cases: {len(y)} ({kinds.count('planted')} planted, {kinds.count('probe')} probe), "
          f"{y.mean():.1%} of labels agree")
    print(f"intercept {model.intercept_[0]:+.4f}; " +
          "; ".join(f"{n} {c:+.4f}" for n, c in zip(names, model.coef_[0])))
    held_out = np.zeros(len(y))
    if len(studies) > 1:
        for g in range(len(studies)):
            train = group != g
            held_out[~train] = LogisticRegression(C=REGULARISATION_C).fit(x[train], y[train]).predict_proba(x[~train])[:, 1]
        how = "each study predicted by a fit on the others"
    else:
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        for train, test in folds.split(x, y):
            held_out[test] = LogisticRegression(C=REGULARISATION_C).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        how = "5-fold cross-validation"
    table, error = calibration(held_out, y)
    print(f"held-out ({how}): ECE {error:.3f}")
    print("bin | cases | mean confidence | share agreeing")
    for low, high, count, predicted, observed in table:
        print(f"[{low:.1f}, {high:.1f}) | {count} | {predicted:.2f} | {observed:.2f}")
    reliable = held_out >= 0.5
    if reliable.any():
        print(f"labels at confidence >= 0.5: {reliable.sum()} of {len(y)}, {y[reliable].mean():.1%} agree; "
              f"below: {(~reliable).sum()}, {y[~reliable].mean() if (~reliable).any() else float('nan'):.1%} agree")
    finite = np.isfinite(current)
    if finite.any():
        print(f"the library's confidence now: ECE {calibration(current[finite], y[finite])[1]:.3f} "
              f"over {finite.sum()} cases")
    diagram(table, out, f"label confidence: held-out ECE {error:.3f} ({len(y)} labels)")


if __name__ == "__main__":
    main()
