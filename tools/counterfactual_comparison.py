#!/usr/bin/env python3
"""Counterfactual methods side by side (docs/validation.md), judged apart from the classifier.

Usage: counterfactual_comparison.py <world> <study> <real images folder> <judge.pt|-> <out folder>

<real images folder>: `linkstyle render --world <world> --resolution 32 -o <folder>` (PNGs and
images.json with their labels): the real images of each class. <judge.pt>: the study's judge (the
runs must have been made with it: their batch files hold judge_features); "-" measures realism in
the classifier's own features instead, and says so.

Per configuration (paper, paper from a zero start, realistic) over every generated run of the study,
and the baselines (the exact counterfactual where the runs hold one; the head-weight ranking of
units):
  - success: the method's own verdict (the explained classifier) and the judge's (the method
    succeeded and the judge calls the image B);
  - realism: the judge-feature kNN ratio of the successful counterfactuals to class-B pairs
    (median), and the Frechet distance of their judge features to real B images, over the same
    figure for generated B samples (the originals of the runs from B) at the same sample size;
  - B-part share after and its gain, A-part share lost (the shapes segmenter);
  - minimality against the round trip G(L(r)): background luminance, object centre and area,
    |round trip - counterfactual| / mean |B_i - B_j| (two generated samples of B);
  - factors changed beyond the class: of background luminance, centre x, centre y, object area
    and object luminance, those where the counterfactual and the exact counterfactual differ by
    more than half the measure's spread among the exact counterfactuals of B;
  - units carrying 90% of |s|_1; the share of each successful sample's top units whose probe label
    is class A or B; cos(s, s*) with the exact shift;
  - paired tests (Wilcoxon signed rank over the same samples, Holm over all tests): realistic
    against paper and against the zero start.
Writes comparison-<world>.md and comparison-<world>.json into <out folder>.
"""
import itertools
import json
import os
import sqlite3
import struct
import sys

import numpy as np
from PIL import Image
from scipy import linalg, stats

from counterfactual_table import object_measures, probe_labels, share, stays

CONFIGURATIONS = [("paper", "-paper"), ("paper, zero start", "-paper-zero-start"), ("realistic", "-realistic")]
MEASURES = ["background", "cx", "cy", "area", "luminance"]


def read_safetensors(path):
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BOOL": np.bool_, "I32": np.int32, "U8": np.uint8}
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        out[name] = np.frombuffer(data[8 + size + begin:8 + size + end], dtype=kinds[entry["dtype"]]).reshape(
            entry["shape"])
    return out


def frechet(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.real(np.trace(root)))


def holm(p_values):
    order = np.argsort(p_values)
    adjusted, running = np.empty(len(p_values)), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def object_luminance(db, run):
    """Per (sample, image): the area-weighted luminance of the object's parts."""
    out = {}
    for sample, image, area, lum in db.execute(
            "SELECT sample, image, area, luminance FROM counterfactual_parts WHERE run = ? AND part != 0", (run,)):
        total = out.setdefault((sample, image), [0.0, 0.0])
        total[0] += area
        total[1] += area * lum
    return {k: v[1] / v[0] if v[0] > 0 else np.nan for k, v in out.items()}


def measure_vector(m, lum):
    return np.array([m["background"], m["cx"], m["cy"], m["area"], lum])


def real_judge_features(folder, judge_file):
    import torch
    judge = torch.jit.load(judge_file)
    entries = json.load(open(os.path.join(folder, "images.json")))
    entries = entries["images"] if isinstance(entries, dict) else entries
    by_class = {}
    for entry in entries:
        image = np.asarray(Image.open(os.path.join(folder, entry["file"])).convert("RGB"), dtype=np.float32) / 255.0
        by_class.setdefault(entry["class"], []).append(image.transpose(2, 0, 1))
    out = {}
    with torch.no_grad():
        for name, images in by_class.items():
            x = torch.from_numpy(np.stack(images))
            out[name] = np.concatenate(
                [judge.features(x[i:i + 256]).numpy() for i in range(0, len(x), 256)])
    return out


class Run:
    def __init__(self, db, study, run, source, target, source_class, target_class):
        self.name, self.source, self.target = run, source, target
        self.source_class, self.target_class = source_class, target_class
        rows = db.execute("SELECT sample, success, steps, units_90, judge_class, judge_realism, realism, "
                          "exact_shift_cosine FROM counterfactuals WHERE run = ? ORDER BY sample", (run,)).fetchall()
        self.samples = [r[0] for r in rows]
        self.success = np.array([r[1] for r in rows], dtype=bool)
        self.steps = np.array([r[2] for r in rows], dtype=float)
        self.units90 = np.array([r[3] for r in rows], dtype=float)
        self.judge_success = np.array([r[1] == 1 and r[4] == target_class for r in rows], dtype=bool)
        self.judged = all(r[4] is not None for r in rows)
        self.judge_realism = np.array([np.nan if r[5] is None else r[5] for r in rows])
        self.realism = np.array([np.nan if r[6] is None else r[6] for r in rows])
        self.exact_cosine = np.array([np.nan if r[7] is None else r[7] for r in rows])
        self.measures = object_measures(db, run)
        self.luminance = object_luminance(db, run)
        self.units = {}
        for sample, unit in db.execute("SELECT sample, unit FROM counterfactual_units WHERE run = ?", (run,)):
            self.units.setdefault(sample, []).append(unit)
        self.tensors = {}
        folder = os.path.join(study, "counterfactuals", run)
        for name in sorted(os.listdir(folder)):
            if name.startswith("batch-") and name.endswith(".safetensors"):
                for key, value in read_safetensors(os.path.join(folder, name)).items():
                    self.tensors.setdefault(key, []).append(value)
        self.tensors = {k: np.concatenate(v) for k, v in self.tensors.items()}

    def parts(self, sample, image):
        return self.measures.get((sample, image))

    def vector(self, sample, image):
        m = self.parts(sample, image)
        return None if m is None else measure_vector(m, self.luminance.get((sample, image), np.nan))


def configuration_runs(db, study, suffix):
    runs = []
    for run, source, target, sc, tc in db.execute(
            "SELECT run, source_name, target_name, source_class, target_class FROM counterfactual_runs "
            "WHERE origin = 'generated' ORDER BY run"):
        if run.endswith(suffix) and not (suffix == "-paper" and run.endswith("-zero-start")):
            runs.append(Run(db, study, run, source, target, sc, tc))
    return runs


def head_weight_units(classifier_file, source_class, target_class, count, source_weight=0.6):
    import torch
    head = torch.jit.load(classifier_file).head_w.detach().numpy()
    score = np.abs(head[target_class] - source_weight * head[source_class])
    return list(np.argsort(-score)[:count])


def compare(world, study, real_folder, judge_file, out):
    db = sqlite3.connect(os.path.join(study, "sweeps", "results.sqlite"))
    labels = probe_labels(db) if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'probe'").fetchone()[0] \
        else {}
    judged = judge_file != "-"
    real = real_judge_features(real_folder, judge_file) if judged else {}
    import tomllib
    config = tomllib.load(open(os.path.join(study, "study.toml"), "rb"))
    classifier = config["models"]["classifier"]
    if not os.path.isabs(classifier):
        classifier = os.path.join(study, classifier)

    table = {}
    configurations = {name: configuration_runs(db, study, suffix) for name, suffix in CONFIGURATIONS}
    # Two generated samples of B: the originals of the runs from B (the paper's runs hold them all).
    originals = {}
    for run in configurations["paper"]:
        originals.setdefault(run.source, {}).update(
            {s: run.parts(s, "original") for s in run.samples if run.parts(s, "original")})
    random_change = {c: np.mean([stays(x, y) for x, y in itertools.combinations(v.values(), 2)], axis=0)
                     for c, v in originals.items() if len(v) >= 2}
    # The spread of each measure among the exact counterfactuals of B (their own factors vary).
    exact_spread = {}
    for run in configurations["realistic"]:
        for s in run.samples:
            v = run.vector(s, "exact")
            if v is not None:
                exact_spread.setdefault(run.target, []).append(v)
    exact_spread = {c: np.nanstd(np.array(v), axis=0) for c, v in exact_spread.items()}
    # Judge features of the originals per class (generated samples of B).
    original_features = {}
    for run in configurations["paper"]:
        if "original_judge_features" in run.tensors:
            original_features.setdefault(run.source, []).append(run.tensors["original_judge_features"])
    original_features = {c: np.concatenate(v) for c, v in original_features.items()}

    per_sample = {}
    for name, runs in configurations.items():
        if not runs:
            continue
        rows = dict(runs=len(runs), samples=0)
        success, judge_success, steps, units90, knn, cosines = [], [], [], [], [], []
        b_after, b_gain, a_lost, minimal, changed, relevant, relevant_head, relevant_exact = [], [], [], [], [], [], [], []
        round_trip_changed = []
        fd_ratio = []
        cf_features = {}
        for run in runs:
            rows["samples"] += len(run.samples)
            success += list(run.success)
            judge_success += list(run.judge_success)
            steps += list(run.steps[run.success])
            units90 += list(run.units90)
            knn += list(run.judge_realism[run.success] if judged else run.realism[run.success])
            cosines += list(run.exact_cosine[run.success])
            key = "judge_features" if judged else "counterfactual_features"
            if key in run.tensors:
                cf_features.setdefault(run.target, []).append(run.tensors[key][run.tensors["success"].astype(bool)])
            head_units = head_weight_units(classifier, run.source_class, run.target_class, 10)
            for i, s in enumerate(run.samples):
                record = per_sample.setdefault((run.source, run.target, s), {})
                o, c, t = run.parts(s, "original"), run.parts(s, "counterfactual"), run.parts(s, "round_trip")
                record[name] = dict(judge_success=float(run.judge_success[i]) if run.judged else np.nan,
                                    b_after=share(c, run.target) if c else np.nan,
                                    area=(abs(c["area"] - t["area"]) / random_change[run.target][2]
                                          if c and t and run.target in random_change else np.nan))
                if not run.success[i] or not (o and c):
                    continue
                b_after.append(share(c, run.target))
                b_gain.append(share(c, run.target) - share(o, run.target))
                a_lost.append(share(o, run.source) - share(c, run.source))
                if t and run.target in random_change:
                    minimal.append(stays(t, c) / random_change[run.target])
                exact = run.vector(s, "exact")
                if exact is not None and run.target in exact_spread:
                    changed.append(int(np.nansum(np.abs(run.vector(s, "counterfactual") - exact)
                                                 > 0.5 * exact_spread[run.target])))
                    trip = run.vector(s, "round_trip")
                    if trip is not None:
                        round_trip_changed.append(int(np.nansum(np.abs(trip - run.vector(s, "original"))
                                                                > 0.5 * exact_spread[run.target])))
                if labels:
                    wanted = ("class:" + run.source, "class:" + run.target)
                    relevant += [labels.get(u) in wanted for u in run.units.get(s, [])]
                    relevant_head += [labels.get(int(u)) in wanted for u in head_units]
                    if "exact_features" in run.tensors:
                        j = list(run.tensors["sample"]).index(s)
                        exact_shift = run.tensors["features"][j] - run.tensors["exact_features"][j]
                        relevant_exact += [labels.get(int(u)) in wanted for u in np.argsort(-np.abs(exact_shift))[:10]]
        for target, parts in cf_features.items():
            cf = np.concatenate(parts)
            own = original_features.get(target)
            if not judged or own is None or target not in real or len(cf) < 4:
                continue
            n = min(len(cf), len(own))
            fd_ratio.append(frechet(cf[:n], real[target]) / frechet(own[:n], real[target]))
        rows.update(
            success=float(np.mean(success)),
            judge_success=float(np.mean(judge_success)) if all(run.judged for run in runs) else None,
            median_steps=float(np.median(steps)) if steps else None,
            p90_steps=float(np.percentile(steps, 90)) if steps else None,
            knn_ratio=float(np.nanmedian(knn)) if knn else None,
            frechet_ratio=float(np.median(fd_ratio)) if fd_ratio else None,
            b_after=float(np.nanmean(b_after)) if b_after else None,
            b_gain=float(np.nanmean(b_gain)) if b_gain else None,
            a_lost=float(np.nanmean(a_lost)) if a_lost else None,
            minimal=[float(x) for x in np.nanmedian(np.array(minimal), axis=0)] if minimal else None,
            factors_changed=float(np.mean(changed)) if changed else None,
            round_trip_factors_changed=float(np.mean(round_trip_changed)) if round_trip_changed else None,
            units90=float(np.mean(units90)), relevant=float(np.mean(relevant)) if relevant else None,
            relevant_head_weight=float(np.mean(relevant_head)) if relevant_head else None,
            relevant_exact=float(np.mean(relevant_exact)) if relevant_exact else None,
            exact_cosine=float(np.nanmean(cosines)) if np.isfinite(cosines).any() else None)
        table[name] = rows

    # The exact counterfactual as a row of its own (the realistic runs hold it).
    exact_rows = dict(b_after=[], judge=[], fd=[])
    for run in configurations["realistic"]:
        for s in run.samples:
            e = run.parts(s, "exact")
            if e:
                exact_rows["b_after"].append(share(e, run.target))
        if "exact_judge_features" in run.tensors:
            exact_rows["judge"].append(run.tensors["exact_judge_features"])
    if exact_rows["b_after"]:
        table["exact"] = dict(b_after=float(np.nanmean(exact_rows["b_after"])), factors_changed=0.0)

    tests = []
    for other in ("paper", "paper, zero start"):
        for metric in ("judge_success", "b_after", "area"):
            pairs = [(v["realistic"][metric], v[other][metric]) for v in per_sample.values()
                     if "realistic" in v and other in v and np.isfinite(v["realistic"][metric])
                     and np.isfinite(v[other][metric])]
            if len(pairs) < 5:
                continue
            x = np.array(pairs)
            d = x[:, 0] - x[:, 1]
            p = stats.wilcoxon(d).pvalue if np.any(d != 0) else 1.0
            tests.append(dict(against=other, metric=metric, samples=len(pairs), mean_realistic=float(x[:, 0].mean()),
                              mean_other=float(x[:, 1].mean()), p=float(p)))
    if tests:
        for test, adjusted in zip(tests, holm(np.array([t["p"] for t in tests]))):
            test["p_holm"] = float(adjusted)
    result = dict(world=world, space="judge" if judged else "classifier", configurations=table, tests=tests)
    with open(os.path.join(out, f"comparison-{world}.json"), "w") as f:
        json.dump(result, f, indent=1)
    fmt = lambda v, spec=".2f": "-" if v is None else format(v, spec)
    lines = [f"{world} world (realism in the {result['space']}'s features)", "",
             "| configuration | runs | samples | success (classifier) | success (judge) | median / p90 steps | "
             "kNN ratio | Frechet / B samples' | B share after (gain) | A share lost | background / centre / area "
             "vs round trip | factors changed beyond the class | units for 90% | relevant units A or B | cos(s, s*) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        if name == "exact":
            lines.append(f"| exact counterfactual | - | - | - | - | - | - | - | {fmt(r['b_after'])} | - | - | 0 | - | "
                         f"{fmt(table.get('realistic', {}).get('relevant_exact'), '.0%')} | 1 |")
            continue
        minimal = "-" if r["minimal"] is None else " / ".join(f"{x:.2f}" for x in r["minimal"])
        lines.append(
            f"| {name} | {r['runs']} | {r['samples']} | {fmt(r['success'], '.1%')} | {fmt(r['judge_success'], '.1%')} | "
            f"{fmt(r['median_steps'], '.0f')} / {fmt(r['p90_steps'], '.0f')} | {fmt(r['knn_ratio'])} | "
            f"{fmt(r['frechet_ratio'])} | {fmt(r['b_after'])} ({fmt(r['b_gain'], '+.2f')}) | {fmt(r['a_lost'])} | "
            f"{minimal} | {fmt(r['factors_changed'])} | {fmt(r['units90'], '.0f')} | {fmt(r['relevant'], '.0%')} | "
            f"{fmt(r['exact_cosine'])} |")
    if "realistic" in table and table["realistic"].get("relevant_head_weight") is not None:
        lines.append(f"| head-weight ranking, abs(W_B - 0.6 W_A) top 10 | - | - | - | - | - | - | - | - | - | - | - | - | "
                     f"{fmt(table['realistic']['relevant_head_weight'], '.0%')} | - |")
    if "realistic" in table and table["realistic"].get("round_trip_factors_changed") is not None:
        lines.append(f"\nThe round trip G(L(r)) itself changes {table['realistic']['round_trip_factors_changed']:.2f} "
                     "of the 5 measures against the original (the same threshold).")
    if tests:
        lines += ["", "| realistic against | measure | samples | realistic | other | p (Wilcoxon) | p (Holm) |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {t['against']} | {t['metric']} | {t['samples']} | {t['mean_realistic']:.3f} | "
                  f"{t['mean_other']:.3f} | {t['p']:.2g} | {t['p_holm']:.2g} |" for t in tests]
    with open(os.path.join(out, f"comparison-{world}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    os.makedirs(sys.argv[5], exist_ok=True)
    compare(*sys.argv[1:6])
