#!/usr/bin/env python3
"""The counterfactual figures of docs/validation.md, from the results databases of two studies.

Usage: counterfactual_table.py <shapes study> <fashion study> <out folder>

Shapes world (every ordered pair of classes, method paper), measured with the shapes segmenter on
the original and the counterfactual image (table counterfactual_parts):
  - B share: the share of the object's pixels that belong to B's parts, before -> after (A share
    likewise);
  - what should stay: background luminance, object centre and object area, |original -
    counterfactual| divided by the same change between two random generated samples of B (the
    originals of the runs from B); under 1: more minimal than swapping in another B image;
  - relevant units (each sample's top units by |s|, counted per sample): the share whose probe
    label (the factor or class with the largest |correlation| in the probe table) is class A or
    class B membership, against that share among all units.
Writes table-<configuration>.md (the per-pair table and a summary, per method and start), methods.md (success and steps per method and
world) and counterfactuals.png (originals, counterfactuals and paths of a few pairs).
"""
import itertools
import os
import sqlite3
import sys

import numpy as np
from PIL import Image, ImageDraw

PARTS = ["background", "cap", "stem", "car body", "wheel", "window", "bird body", "head", "beak", "wing", "tail",
         "wall", "roof", "door", "trunk", "crown", "petal", "centre"]
CLASS_PARTS = {"mushroom": ["cap", "stem"], "car": ["car body", "window", "wheel"],
               "bird": ["bird body", "head", "beak", "wing", "tail"], "house": ["wall", "roof", "door", "window"],
               "tree": ["trunk", "crown"], "flower": ["petal", "centre", "stem"]}
CLASSES = ["mushroom", "car", "bird", "house", "tree", "flower"]


def connect(study):
    return sqlite3.connect(os.path.join(study, "sweeps", "results.sqlite"))


def object_measures(db, run):
    """Per sample and image: object area, centre, background luminance, area per part name."""
    out = {}
    for sample, image, part, area, lum, cx, cy in db.execute(
            "SELECT sample, image, part, area, luminance, centre_x, centre_y FROM counterfactual_parts WHERE run = ?",
            (run,)):
        m = out.setdefault((sample, image), {"parts": {}, "background": np.nan, "area": 0.0, "cx": 0.0, "cy": 0.0})
        if part == 0:
            m["background"] = lum
            continue
        m["parts"][PARTS[part]] = m["parts"].get(PARTS[part], 0.0) + area
        m["area"] += area
        m["cx"] += area * cx
        m["cy"] += area * cy
    for m in out.values():
        if m["area"] > 0:
            m["cx"] /= m["area"]
            m["cy"] /= m["area"]
    return out


def share(m, name):
    return sum(m["parts"].get(p, 0.0) for p in CLASS_PARTS[name]) / m["area"] if m["area"] > 0 else np.nan


def stays(a, b):
    return np.array([abs(a["background"] - b["background"]), np.hypot(a["cx"] - b["cx"], a["cy"] - b["cy"]),
                     abs(a["area"] - b["area"])])


def probe_labels(db):
    best = {}
    for unit, factor, corr in db.execute("SELECT unit, factor, correlation FROM probe WHERE correlation IS NOT NULL"):
        if unit not in best or abs(corr) > best[unit][1]:
            best[unit] = (factor, abs(corr))
    return {u: f for u, (f, _) in best.items()}


# (name, run-name suffix): the methods, and the paper's method started at s = 0.
CONFIGURATIONS = [("paper", "-paper"), ("adam", "-adam"), ("sparse", "-sparse"),
                  ("paper, zero start", "-paper-zero-start"), ("realistic", "-realistic")]


def runs(db, suffix):
    return {(s, t): r for r, s, t in db.execute(
        "SELECT run, source_name, target_name FROM counterfactual_runs WHERE origin = 'generated'")
        if r.endswith(suffix)}


def shapes_table(study, out, name, suffix):
    db = connect(study)
    labels = probe_labels(db)
    base = {c: np.mean([labels[u] in ("class:" + c,) for u in labels]) for c in CLASSES}
    paper = runs(db, suffix)
    if not paper:
        return
    originals = {}  # class -> list of original measures (the generated samples of that class)
    measures = {}
    for (a, b), run in paper.items():
        m = object_measures(db, run)
        measures[(a, b)] = m
        originals.setdefault(a, {}).update({s: v for (s, image), v in m.items() if image == "original"})
    random_change = {}
    for c, samples in originals.items():
        values = list(samples.values())
        random_change[c] = np.mean([stays(x, y) for x, y in itertools.combinations(values, 2)], axis=0)
    rows = []
    for a, b in itertools.permutations(CLASSES, 2):
        if (a, b) not in paper:
            continue
        run = paper[(a, b)]
        m = measures[(a, b)]
        outcome = {s: (ok, t) for s, ok, t in db.execute(
            "SELECT sample, success, steps FROM counterfactuals WHERE run = ?", (run,))}
        success = [ok for ok, _ in outcome.values()]
        ok_steps = [t for ok, t in outcome.values() if ok]
        # The measures describe the counterfactuals that exist: the successful samples.
        pairs = [(m[(s, "original")], m[(s, "counterfactual")]) for s, (ok, _) in sorted(outcome.items())
                 if ok and (s, "original") in m and (s, "counterfactual") in m]
        if not pairs:
            rows.append(dict(a=a, b=b, success=0.0, steps=np.nan, n=0))
            continue
        b_before = np.nanmean([share(o, b) for o, _ in pairs])
        b_after = np.nanmean([share(c, b) for _, c in pairs])
        a_before = np.nanmean([share(o, a) for o, _ in pairs])
        a_after = np.nanmean([share(c, a) for _, c in pairs])
        ratio = np.mean([stays(o, c) for o, c in pairs], axis=0) / random_change.get(b, np.full(3, np.nan))
        units = list(db.execute("SELECT u.unit FROM counterfactual_units u JOIN counterfactuals c ON c.run = u.run "
                                "AND c.sample = u.sample WHERE u.run = ? AND c.success = 1", (run,)))
        relevant = np.mean([labels.get(u) in ("class:" + a, "class:" + b) for (u,) in units])
        rows.append(dict(a=a, b=b, success=np.mean(success), n=len(pairs), steps=np.median(ok_steps) if ok_steps else np.nan,
                         b_before=b_before, b_after=b_after, a_before=a_before, a_after=a_after, ratio=ratio,
                         relevant=relevant, baseline=base[a] + base[b],
                         units90=db.execute("SELECT avg(units_90) FROM counterfactuals WHERE run = ?",
                                            (run,)).fetchone()[0]))
    measured = [r for r in rows if r["n"] > 0]
    lines = ["| A -> B | success | median steps | B share before -> after | A share before -> after | "
             "background / centre / area vs two B samples | relevant units labelled A or B (all units) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["n"] == 0:
            lines.append(f"| {r['a']} -> {r['b']} | 0% | - | - | - | - | - |")
            continue
        lines.append(f"| {r['a']} -> {r['b']} | {r['success']:.0%} | {r['steps']:.0f} | {r['b_before']:.2f} -> "
                     f"{r['b_after']:.2f} | {r['a_before']:.2f} -> {r['a_after']:.2f} | {r['ratio'][0]:.2f} / "
                     f"{r['ratio'][1]:.2f} / {r['ratio'][2]:.2f} | {r['relevant']:.0%} ({r['baseline']:.0%}) |")
    all_rows, rows = rows, measured
    gain = [r for r in rows if r["b_after"] > r["b_before"]]
    loss = [r for r in rows if r["a_after"] < r["a_before"]]
    ratios = np.array([r["ratio"] for r in rows])
    enriched = [r for r in rows if r["relevant"] > r["baseline"]]
    worst = sorted(all_rows, key=lambda r: r["success"])[:3]
    summary = [
        f"pairs: {len(all_rows)}; success rate {np.mean([r['success'] for r in all_rows]):.1%} (worst: "
        + ", ".join(f"{r['a']} -> {r['b']} {r['success']:.0%}" for r in worst)
        + f"); {sum(r['success'] == 1 for r in all_rows)} pairs at 100%; median steps of the successes (median over "
        f"pairs) {np.nanmedian([r['steps'] for r in rows]):.0f}; measures below over the {sum(r['n'] for r in rows)} "
        f"successful counterfactuals of {len(rows)} pairs",
        f"B share rises in {len(gain)}/{len(rows)} pairs (mean {np.mean([r['b_before'] for r in rows]):.2f} -> "
        f"{np.mean([r['b_after'] for r in rows]):.2f}); A share falls in {len(loss)}/{len(rows)} "
        f"(mean {np.mean([r['a_before'] for r in rows]):.2f} -> {np.mean([r['a_after'] for r in rows]):.2f})",
        f"what should stay, change / change between two B samples (median over pairs): background "
        f"{np.nanmedian(ratios[:, 0]):.2f}, centre {np.nanmedian(ratios[:, 1]):.2f}, area {np.nanmedian(ratios[:, 2]):.2f}; "
        f"pairs under 1: {int((ratios[:, 0] < 1).sum())}, {int((ratios[:, 1] < 1).sum())}, "
        f"{int((ratios[:, 2] < 1).sum())} of {len(rows)}",
        f"relevant units with probe label class A or B: mean {np.mean([r['relevant'] for r in rows]):.1%} against "
        f"{np.mean([r['baseline'] for r in rows]):.1%} of all units; above in {len(enriched)}/{len(rows)} pairs",
        f"units carrying 90% of |s|_1 (mean over pairs): {np.mean([r['units90'] for r in rows]):.0f}",
    ]
    with open(os.path.join(out, "table-" + suffix.strip("-") + ".md"), "w") as f:
        f.write(f"shapes world, {name}\n\n" + "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n")
    print(f"shapes world, {name}:\n  " + "\n  ".join(summary))


def methods_table(studies, out):
    lines = ["| world | method | runs | samples | success | median steps | p90 steps | units for 90% of abs(s) | "
             "pixel distance | relative feature distance |", "|---|---|---|---|---|---|---|---|---|---|"]
    for world, study in studies:
        db = connect(study)
        for name, suffix in CONFIGURATIONS:
            names = list(runs(db, suffix).values())
            if not names:
                continue
            marks = ",".join("?" * len(names))
            rows = list(db.execute(
                "SELECT success, steps, units_90, pixel_distance, relative_feature_distance FROM counterfactuals "
                f"WHERE run IN ({marks})", names))
            a = np.array(rows, dtype=float)
            ok = a[a[:, 0] == 1, 1]
            lines.append(f"| {world} | {name} | {len(names)} | {len(a)} | {a[:, 0].mean():.1%} | "
                         f"{np.median(ok) if len(ok) else float('nan'):.0f} | "
                         f"{np.percentile(ok, 90) if len(ok) else float('nan'):.0f} | {np.mean(a[:, 2]):.0f} | "
                         f"{np.mean(a[:, 3]):.3f} | {np.nanmean(a[:, 4]):.3f} |")
    with open(os.path.join(out, "methods.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def figure(items, out, rows_per_run=1):
    """items: (study, run, title). Per run: a caption and its first successful samples, each row
    original | counterfactual | path."""
    blocks = []
    for study, run, title in items:
        db = connect(study)
        total, succeeded = db.execute("SELECT count(*), sum(success) FROM counterfactuals WHERE run = ?",
                                      (run,)).fetchone()
        chosen = [s for (s,) in db.execute("SELECT sample FROM counterfactuals WHERE run = ? AND success = 1 "
                                           "ORDER BY sample LIMIT ?", (run, rows_per_run))]
        if not chosen:
            continue
        caption = Image.new("RGB", (1, 16), "white")
        for s in chosen:
            stem = os.path.join(study, "counterfactuals", run, f"sample-{s:05d}")
            pair, path = Image.open(stem + ".png").convert("RGB"), Image.open(stem + "-path.png").convert("RGB")
            row = Image.new("RGB", (pair.width + 8 + path.width, pair.height), "white")
            row.paste(pair, (0, 0))
            row.paste(path, (pair.width + 8, 0))
            if s == chosen[0]:
                caption = Image.new("RGB", (row.width, 16), "white")
                ImageDraw.Draw(caption).text((2, 2), f"{title} ({succeeded}/{total} succeed; sample {s})", fill="black")
                blocks.append(caption)
            blocks.append(row)
        blocks.append(Image.new("RGB", (caption.width, 6), "white"))
    width = max(b.width for b in blocks)
    grid = Image.new("RGB", (width, sum(b.height for b in blocks)), "white")
    y = 0
    for b in blocks:
        grid.paste(b, (0, y))
        y += b.height
    grid.save(os.path.join(out, "counterfactuals.png"))


def main():
    shapes, fashion, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    for name, suffix in CONFIGURATIONS:
        shapes_table(shapes, out, name, suffix)
    methods_table([("shapes", shapes), ("fashion", fashion)], out)
    # original | counterfactual, then the path G(L(relu(r - alpha s))) for alpha = 0 ... 1.5
    items = []
    pairs = [(shapes, "shapes", a, b, f"{a} -> {b}") for a, b in (("mushroom", "tree"), ("car", "house"))]
    pairs += [(fashion, "fashion", a, b, n) for a, b, n in (("shirt", "t-shirt-top", "Shirt -> T-shirt/top"),
                                                           ("sneaker", "ankle-boot", "Sneaker -> Ankle boot"))]
    for study, world, a, b, name in pairs:
        for suffix, method in (("-paper", "paper"), ("-realistic", "realistic")):
            panels = " | exact" if world == "shapes" else ""
            items.append((study, f"{a}-to-{b}{suffix}", f"{world} {name}, {method}: original | counterfactual{panels}"))
    figure(items, out)


if __name__ == "__main__":
    main()
