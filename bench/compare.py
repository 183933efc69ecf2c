#!/usr/bin/python3
"""compare: linkstyle's stages against the reference pipeline and the raw batched ceiling.

Contract
--------
Usage (from the repository root; bench/compare.sh runs this with /usr/bin/python3):

    bench/compare.sh <build folder> [--models shapes|realscale|both] [--threads 2] [--quick]
        [--realscale-classifier PATH] [--realscale-generator PATH] [--filter SPEC]
        [--classes 0,1] [--parts auto|segmenter|kmeans|none] [--pairs-per-class N] [--units K]
        [--steps S] [--sweep-samples-per-class M]
        [--fit-rows R | --no-bench-fit] [--memory-check-all] [--keep DIR] [--json-out FILE]

For each model set it
  1. makes a fresh study in a temporary folder (`linkstyle init`, then study.toml edited: a few
     classes, N pairs per class, shards of half the N run's rows, the sweep's steps, tuning samples, batch size and
     a small null: null_directions 8 x null_bins 2, or 5 x 1 with --quick and for realscale);
  2. runs `linkstyle pairs`, `fit`, `sweep --units 0..K-1` under `/usr/bin/time -v` with
     `--threads T --json`, and `pairs` again in a second study with 4N pairs per class (memory flat
     in the number of samples; shapes only unless --memory-check-all). `init` runs once per set
     (it loads and checks the models); the 4N study is a copy of its study.toml;
  3. runs bench/reference_pipeline.py (one image at a time, 8-bit PIL, scikit-learn) on the same
     models, classes, sizes, psi, filter and thread count;
  4. runs bench/ceiling.py at the study's pairs and sweep batch sizes;
then `<build>/bench/bench_fit --rows R` (linkstyle's fit vs scikit-learn at ResNet-50 / StyleGAN-XL
sizes: D = 2048, w_dim = 512), and prints ONE markdown table on stdout (progress goes to stderr).

Model sets
  shapes     models/shapes/{classifier,generator,segmenter}.pt (shipped), filter argmax
  realscale  (minimal sizes: its generator takes about 11 s per image on 2 CPU threads)
             --realscale-classifier / $LINKSTYLE_REALSCALE_CLASSIFIER
             (default /tmp/realscale/classifier_resnet50.pt) and --realscale-generator /
             $LINKSTYLE_REALSCALE_GENERATOR (default /tmp/realscale/generator_xl64.pt); filter
             `none` (random weights: argmax keeps almost nothing). A missing file skips the set
             with a message. If the built linkstyle's `pairs` refuses `pairs.filter`, both pipelines
             use argmax with every class mapped to the classifier's most frequent prediction
             (`pairs.classifier_classes`), found on a few batched images first; the table says so.

Counting (images per second, every image the generator synthesised)
  pairs      linkstyle: sum of `drawn` over pairs/manifest.json's classes (accepted or not; it draws
             whole batches) / the process's wall time. reference: every draw / the stage's time.
  fit        seconds (not a rate): linkstyle's process wall time (its JSON's in-process seconds in
             the notes) against LinearRegression().fit; the ratio is reference / linkstyle.
  sweep      linkstyle: sweeps/summary.json `images` (unit sweeps + null directions) + the tuning
             images (samples per class x classes) / the process's wall time. reference: tuning
             images + units x samples x steps / the stage's time. linkstyle also segments and
             measures every image and writes the database; the reference only re-encodes.
  The reference's times exclude loading the models; linkstyle's wall times include it.

Columns: linkstyle, reference, linkstyle/reference, cap = ceiling/reference (on a CPU the ceiling
caps the ratio), % of cap = (linkstyle/reference) / cap, which is the same number as linkstyle as
a % of the ceiling, then linkstyle's peak RSS ("Maximum resident set size"), minor page faults
("Minor (reclaiming a frame) page faults"), user and system seconds, from /usr/bin/time -v.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running commands


class Measured:
    """One process run under /usr/bin/time -v: its stdout, rc, and the resource figures."""

    def __init__(self, command, stdout, stderr, rc, time_report, wall):
        self.command, self.stdout, self.stderr, self.rc, self.wall = command, stdout, stderr, rc, wall
        self.peak_rss_kb = self._field(time_report, r"Maximum resident set size \(kbytes\): (\d+)")
        self.minor_faults = self._field(time_report, r"Minor \(reclaiming a frame\) page faults: (\d+)")
        self.major_faults = self._field(time_report, r"Major \(requiring I/O\) page faults: (\d+)")
        self.user = self._field(time_report, r"User time \(seconds\): ([\d.]+)", float)
        self.system = self._field(time_report, r"System time \(seconds\): ([\d.]+)", float)
        elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", time_report)
        self.elapsed = wall
        if elapsed:
            seconds = 0.0
            for part in elapsed.group(1).split(":"):
                seconds = seconds * 60 + float(part)
            self.elapsed = seconds

    @staticmethod
    def _field(report, pattern, kind=int):
        match = re.search(pattern, report)
        return kind(match.group(1)) if match else None

    def json(self):
        return json.loads(self.stdout)


def run_measured(command, what, environment=None, check=True):
    """Runs command under /usr/bin/time -v; stops the whole comparison if it fails and check."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        process = subprocess.run([TIME, "-v", "-o", report.name] + command, capture_output=True, text=True,
                                 env=environment)
        wall = time.perf_counter() - started
        measured = Measured(command, process.stdout, process.stderr, process.returncode, report.read(), wall)
    log(f"  {what}: {measured.elapsed:.1f} s (rc {measured.rc})")
    if check and measured.rc != 0:
        raise RuntimeError(f"{what} failed (rc {measured.rc}): {' '.join(command)}\n{process.stderr.strip()}")
    return measured


def linkstyle(build, threads, *arguments):
    return [os.path.join(build, "linkstyle"), "--threads", str(threads), "--json"] + list(arguments)


# ---------------------------------------------------------------------------------------------
# study.toml edits (the file init writes: `key = value   # comment` lines under [table] headers)


def set_toml(path, table, key, value):
    """Sets table.key = value (a TOML literal) in place, adding the key if the table lacks it."""
    lines = open(path).read().split("\n")
    current, insert_at = None, None
    for i, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            if current == table and insert_at is None:
                insert_at = i
            current = header.group(1).strip()
            continue
        if current == table and re.match(rf"\s*{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            break
    else:
        if insert_at is None:
            insert_at = len(lines)
        lines.insert(insert_at, f"{key} = {value}")
    open(path, "w").write("\n".join(lines))


def toml_list(values):
    return "[" + ", ".join(str(v) for v in values) + "]"


# ---------------------------------------------------------------------------------------------
# One model set


def model_sets(arguments):
    shapes = os.path.join(REPOSITORY, "models", "shapes")
    quick = arguments.quick
    sets = {
        "shapes": {
            "classifier": os.path.join(shapes, "classifier.pt"),
            "generator": os.path.join(shapes, "generator.pt"),
            "segmenter": os.path.join(shapes, "segmenter.pt"),
            "classes": [0, 1] if quick else [0, 1, 2],
            "pairs_per_class": 40 if quick else 500,
            "pairs_batch": 32,
            "units": 2 if quick else 16,
            "steps": 3 if quick else 5,
            "sweep_samples_per_class": 2 if quick else 4,
            "sweep_batch": 128,
            "filter": "argmax",
            "memory_check": True,
        },
        "realscale": {
            "classifier": arguments.realscale_classifier,
            "generator": arguments.realscale_generator,
            "segmenter": None,
            # The StyleGAN-XL-architecture generator synthesises one 64 px image in about 11 s on 2
            # CPU threads, so everything is minimal: this set's runs synthesise about 34 images
            # (pairs 2 + 4N 8, sweep 3 unit steps + 10 null + 1 tuning, reference 6, ceiling 4).
            "classes": [0],
            "pairs_per_class": 2,
            "pairs_batch": 2,
            "units": 1,
            "steps": 3,
            "sweep_samples_per_class": 1,
            "sweep_batch": 2,
            "filter": "none",
            "memory_check": arguments.memory_check_all,  # 2 against 8 rows would show nothing
            "null_directions": 5,  # the least study.toml allows
            "null_bins": 1,
            "ceiling_min_seconds": 0,
            "ceiling_min_batches": 1,
        },
    }
    for name, settings in sets.items():
        if arguments.classes:
            settings["classes"] = [int(v) for v in arguments.classes.split(",") if v.strip()]
        for name_of_setting in ["parts", "pairs_per_class", "units", "steps",
                                "sweep_samples_per_class", "filter"]:
            if getattr(arguments, name_of_setting):
                settings[name_of_setting] = getattr(arguments, name_of_setting)
        if "null_directions" not in settings:
            settings["null_directions"], settings["null_bins"] = (5, 1) if quick else (8, 2)
    return sets


def shard_size(settings):
    """Rows per shard: half the N run's rows, so both memory runs (N and 4N) span several shards."""
    return max(1, settings["pairs_per_class"] * len(settings["classes"]) // 2)


def filter_in_toml(spec):
    """The reference's filter spec as the study.toml value: 'top-k:5' -> "top-k 5"."""
    return '"' + spec.replace(":", " ") + '"'


def make_study(build, threads, folder, settings, pairs_per_class):
    command = [os.path.join(build, "linkstyle"), "init", folder, "--classifier", settings["classifier"],
               "--generator", settings["generator"], "--classes"] + [str(c) for c in settings["classes"]] + [
                  "--samples-per-class", str(pairs_per_class), "--batch-size", str(settings["pairs_batch"]),
                  "--shard-size", str(shard_size(settings)), "--sweep-samples-per-class",
                  str(settings["sweep_samples_per_class"])]
    if settings["segmenter"]:
        command += ["--segmenter", settings["segmenter"]]
    subprocess.run(command, check=True, capture_output=True, text=True)
    toml = os.path.join(folder, "study.toml")
    set_toml(toml, "sweep", "steps", settings["steps"])
    set_toml(toml, "sweep", "batch_size", settings["sweep_batch"])
    set_toml(toml, "sweep", "null_directions", settings["null_directions"])
    set_toml(toml, "sweep", "null_bins", settings["null_bins"])
    set_toml(toml, "sweep", "strip_units", 2)
    if settings.get("parts"):
        set_toml(toml, "sweep", "parts", f'"{settings["parts"]}"')
    if settings.get("toml_filter"):
        set_toml(toml, "pairs", "filter", settings["toml_filter"])
    return toml


def modal_prediction(settings, threads):
    """The classifier's most frequent argmax on a batch of each class's generated images."""
    code = (
        "import sys, torch; torch.set_num_threads(int(sys.argv[3]))\n"
        "c = torch.jit.load(sys.argv[1]).eval(); g = torch.jit.load(sys.argv[2]).eval()\n"
        "classes = [int(v) for v in sys.argv[4].split(',')]; rng = torch.Generator().manual_seed(1)\n"
        "with torch.no_grad():\n"
        "  top = []\n"
        "  for k in classes:\n"
        "    z = torch.randn(2, int(g.z_dim), generator=rng)\n"
        "    x = g.synthesis(g.mapping(z, torch.full([2], k, dtype=torch.int64), 0.7))\n"
        "    top += c.head(c.features(((x + 1) / 2).clamp(0, 1))).argmax(1).tolist()\n"
        "print(max(set(top), key=top.count), top.count(max(set(top), key=top.count)) / len(top))\n")
    output = subprocess.run([PYTHON, "-c", code, settings["classifier"], settings["generator"], str(threads),
                             ",".join(str(c) for c in settings["classes"])], check=True, capture_output=True,
                            text=True).stdout.split()
    return int(output[0]), float(output[1])


def clone_study(source, destination, pairs_per_class):
    """A second study with the same study.toml but another pairs.samples_per_class (init loads and
    checks the models, which costs minutes with a slow generator; the model paths are absolute)."""
    os.makedirs(destination)
    toml = os.path.join(destination, "study.toml")
    shutil.copyfile(os.path.join(source, "study.toml"), toml)
    set_toml(toml, "pairs", "samples_per_class", pairs_per_class)


def fall_back_to_modal_class(study, settings, threads, refusal):
    """This linkstyle refused pairs.filter: both pipelines use argmax with every class mapped to the
    classifier's most frequent prediction. Edits the study; returns (note, classifier_classes)."""
    log(f"  this linkstyle refuses pairs.filter ({refusal}); falling back to argmax on the modal class")
    toml = os.path.join(study, "study.toml")
    lines = [line for line in open(toml).read().split("\n") if not re.match(r"\s*filter\s*=", line)]
    open(toml, "w").write("\n".join(lines))
    mode, share = modal_prediction(settings, threads)
    classifier_classes = [mode] * len(settings["classes"])
    set_toml(toml, "pairs", "classifier_classes", toml_list(classifier_classes))
    settings["filter"], settings["toml_filter"] = "argmax", None
    note = (f"this linkstyle has no `pairs.filter` ({refusal}); both pipelines use argmax with every class "
            f"mapped to the classifier's most frequent prediction, class {mode} ({share:.0%} of a batched "
            f"probe), via pairs.classifier_classes")
    return note, classifier_classes


def run_set(name, settings, arguments, work):
    build, threads = arguments.build, arguments.threads
    log(f"{name}: classes {settings['classes']}, {settings['pairs_per_class']} pairs per class, "
        f"{settings['units']} units x {settings['sweep_samples_per_class']} tuning samples per class x "
        f"{settings['steps']} steps")
    notes, classifier_classes = [], None
    units = list(range(settings["units"]))
    classes = settings["classes"]

    # linkstyle, N pairs per class: pairs, fit, sweep
    study = os.path.join(work, f"{name}-N")
    if settings["filter"] != "argmax":
        settings["toml_filter"] = filter_in_toml(settings["filter"])
    started = time.perf_counter()
    make_study(build, threads, study, settings, settings["pairs_per_class"])
    init_seconds = time.perf_counter() - started
    log(f"  linkstyle init: {init_seconds:.1f} s")
    pairs = run_measured(linkstyle(build, threads, "pairs", "--study", study), "linkstyle pairs", check=False)
    if pairs.rc != 0 and "pairs.filter" in pairs.stderr:
        note, classifier_classes = fall_back_to_modal_class(study, settings, threads, pairs.stderr.strip())
        notes.append(note)
        pairs = run_measured(linkstyle(build, threads, "pairs", "--study", study), "linkstyle pairs", check=False)
    if pairs.rc != 0:
        raise RuntimeError(f"linkstyle pairs failed (rc {pairs.rc}): {pairs.stderr.strip()}")
    if settings.get("toml_filter"):
        notes.append(f"filter `{settings['filter']}` in both pipelines (study.toml pairs.filter = "
                     f"{settings['toml_filter']})")
    result = {"name": name, "settings": dict(settings), "notes": notes}
    manifest = json.load(open(os.path.join(study, "pairs", "manifest.json")))
    pairs_images = sum(c["drawn"] for c in manifest["classes"])
    pairs_kept = sum(c["accepted"] for c in manifest["classes"])
    fit = run_measured(linkstyle(build, threads, "fit", "--study", study), "linkstyle fit")
    fit_report = fit.json()
    fit_inside = sum(fit_report.get("seconds", {}).values())
    sweep = run_measured(linkstyle(build, threads, "sweep", "--study", study, "--units", *[str(u) for u in units]),
                         "linkstyle sweep")
    summary = json.load(open(os.path.join(study, "sweeps", "summary.json")))
    tuning_images = settings["sweep_samples_per_class"] * len(classes)
    unit_images = len(units) * tuning_images * settings["steps"]
    sweep_images = summary["images"] + tuning_images
    result["linkstyle"] = {
        "pairs": {"images": pairs_images, "kept": pairs_kept, "seconds": pairs.elapsed,
                  "rate": pairs_images / pairs.elapsed, "inside_seconds": pairs.json().get("seconds")},
        "fit": {"seconds": fit.elapsed, "inside_seconds": fit_inside, "statistics_reused":
                fit_report.get("statistics_reused")},
        "sweep": {"images": sweep_images, "unit_images": unit_images, "tuning_images": tuning_images,
                  "null_images": summary["images"] - unit_images, "seconds": sweep.elapsed,
                  "rate": sweep_images / sweep.elapsed, "inside_seconds": summary.get("seconds"),
                  "inside_rate": summary.get("images_per_second"), "part_source": summary.get("part_source")},
    }
    result["resources"] = {stage: vars_of(m) for stage, m in (("pairs", pairs), ("fit", fit), ("sweep", sweep))}

    # memory flat in the number of samples: pairs with 4N per class
    result["memory"] = {"N": {"pairs_per_class": settings["pairs_per_class"], "rows": manifest["total_rows"],
                              "shards": len(manifest["shards"]), "peak_rss_kb": pairs.peak_rss_kb}}
    pairs_4n = None
    if settings["memory_check"]:
        study_4n = os.path.join(work, f"{name}-4N")
        clone_study(study, study_4n, 4 * settings["pairs_per_class"])
        pairs_4n = run_measured(linkstyle(build, threads, "pairs", "--study", study_4n), "linkstyle pairs (4N)")
        manifest_4n = json.load(open(os.path.join(study_4n, "pairs", "manifest.json")))
        result["memory"]["4N"] = {
            "pairs_per_class": 4 * settings["pairs_per_class"], "rows": manifest_4n["total_rows"],
            "shards": len(manifest_4n["shards"]), "peak_rss_kb": pairs_4n.peak_rss_kb, "seconds": pairs_4n.elapsed,
            "rate": sum(c["drawn"] for c in manifest_4n["classes"]) / pairs_4n.elapsed}
        if not arguments.keep:
            shutil.rmtree(study_4n, ignore_errors=True)

    # the reference, same models and sizes
    reference_command = [PYTHON, os.path.join(REPOSITORY, "bench", "reference_pipeline.py"),
                         "--classifier", settings["classifier"], "--generator", settings["generator"],
                         "--classes", ",".join(str(c) for c in classes),
                         "--samples-per-class", str(settings["pairs_per_class"]), "--filter", settings["filter"],
                         "--units", ",".join(str(u) for u in units), "--steps", str(settings["steps"]),
                         "--sweep-samples-per-class", str(settings["sweep_samples_per_class"]),
                         "--threads", str(threads)]
    if classifier_classes:
        reference_command += ["--classifier-classes", ",".join(str(c) for c in classifier_classes)]
    reference = run_measured(reference_command, "reference pipeline")
    result["reference"] = reference.json()
    result["reference_resources"] = vars_of(reference)

    # the ceiling at the study's batch sizes
    ceiling = run_measured([PYTHON, os.path.join(REPOSITORY, "bench", "ceiling.py"), "--classifier",
                            settings["classifier"], "--generator", settings["generator"], "--classes",
                            ",".join(str(c) for c in classes), "--batch-sizes",
                            f"{settings['pairs_batch']},{settings['sweep_batch']}", "--threads", str(threads),
                            "--min-seconds", str(settings.get("ceiling_min_seconds", 1 if arguments.quick else 3)),
                            "--min-batches", str(settings.get("ceiling_min_batches", 2))], "ceiling")
    result["ceiling"] = {c["batch_size"]: c["images_per_second"] for c in ceiling.json()["ceilings"]}
    result["wall_seconds"] = {"linkstyle init": init_seconds, "linkstyle pairs": pairs.elapsed,
                              "linkstyle fit": fit.elapsed, "linkstyle sweep": sweep.elapsed}
    if pairs_4n:
        result["wall_seconds"]["linkstyle pairs 4N"] = pairs_4n.elapsed
    result["wall_seconds"].update({"reference (all stages)": reference.elapsed, "ceiling": ceiling.elapsed})
    return result


def vars_of(measured):
    return {"elapsed": measured.elapsed, "peak_rss_kb": measured.peak_rss_kb, "minor_faults": measured.minor_faults,
            "major_faults": measured.major_faults, "user": measured.user, "system": measured.system}


def run_bench_fit(arguments, work):
    binary = os.path.join(arguments.build, "bench", "bench_fit")
    if not os.path.exists(binary):
        return {"error": f"{binary} not found"}
    measured = run_measured([binary, "--rows", str(arguments.fit_rows), "--threads", str(arguments.threads),
                             "--python", PYTHON, "--folder", os.path.join(work, "bench-fit")], "bench_fit",
                            check=False)
    text = measured.stdout
    if measured.rc != 0:
        return {"error": f"bench_fit failed (rc {measured.rc}): {measured.stderr.strip()[-300:]}"}

    def number(pattern):
        match = re.search(pattern, text)
        return float(match.group(1)) if match else None

    command = f"{binary} --rows {arguments.fit_rows} --threads {arguments.threads}"
    return {"rows": arguments.fit_rows, "command": command, "output": text.strip(),
            "ours_from_shards": number(r"ours, from the shards, all rows \(as scikit-learn\): ([\d.]+) s"),
            "ours_reused": number(r"ours, statistics accumulated during pairs: ([\d.]+) s"),
            "sklearn": number(r"scikit-learn LinearRegression\(\)\.fit: ([\d.]+) s"),
            "speedup_from_shards": number(r"end to end from the shards: ([\d.]+)x"),
            "speedup_reused": number(r"with statistics from pairs: ([\d.]+)x"),
            "elapsed": measured.elapsed}


# ---------------------------------------------------------------------------------------------
# The table


def rate(value):
    if value is None:
        return "n/a"
    return f"{value:,.1f}/s" if value >= 10 else f"{value:.3g}/s"


def factor(value):
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def percent(value):
    return "n/a" if value is None else f"{100 * value:.0f}%"


def megabytes(kb):
    return "n/a" if kb is None else f"{kb / 1024:,.0f} MB"


def table(results, bench_fit, threads):
    lines = [f"Threads: {threads} (linkstyle `--threads`, the reference's and the ceiling's "
             f"`torch.set_num_threads` and BLAS). Rates are images synthesised per second.", "",
             "| models | stage | linkstyle | reference | linkstyle/reference | cap (ceiling/reference) | "
             "% of cap (= linkstyle % of ceiling) | ceiling | peak RSS | minor faults | user s | sys s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for result in results:
        name = result["name"]
        if "skipped" in result:
            lines.append(f"| {name} | all | skipped: {result['skipped']} | | | | | | | | | |")
            continue
        settings, ours, reference, ceiling = result["settings"], result["linkstyle"], result["reference"], \
            result["ceiling"]
        resources = result["resources"]
        for stage, batch in (("pairs", settings["pairs_batch"]), ("sweep", settings["sweep_batch"])):
            ours_rate, reference_rate = ours[stage]["rate"], reference[stage]["images_per_second"]
            top = ceiling[batch]
            ratio, cap = ours_rate / reference_rate, top / reference_rate
            used = resources[stage]
            lines.append(f"| {name} | {stage} | {rate(ours_rate)} | {rate(reference_rate)} | {factor(ratio)} | "
                         f"{factor(cap)} | {percent(ratio / cap)} | {rate(top)} (batch {batch}) | "
                         f"{megabytes(used['peak_rss_kb'])} | {used['minor_faults']:,} | {used['user']:.1f} | "
                         f"{used['system']:.1f} |")
            if stage == "pairs":
                fit_ours, fit_reference = ours["fit"]["seconds"], reference["fit"]["seconds"]
                used = resources["fit"]
                lines.append(f"| {name} | fit (seconds; ratio = reference / linkstyle) | {fit_ours:.2f} s | {fit_reference:.2f} s | "
                             f"{factor(fit_reference / fit_ours)} | n/a | n/a | n/a | "
                             f"{megabytes(used['peak_rss_kb'])} | {used['minor_faults']:,} | {used['user']:.1f} | "
                             f"{used['system']:.1f} |")
        lines.append(f"| {name} | counterfactuals | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
        p, s, f = ours["pairs"], ours["sweep"], ours["fit"]
        rp, rs, rf = reference["pairs"], reference["sweep"], reference["fit"]
        memory = result["memory"]
        rr = result["reference_resources"]
        notes.append(
            f"- {name}: classes {settings['classes']}, {settings['pairs_per_class']} pairs per class, filter "
            f"`{settings['filter']}`, psi 0.7. pairs: linkstyle synthesised {p['images']} images for {p['kept']} "
            f"pairs in {p['seconds']:.1f} s ({p['inside_seconds']:.1f} s inside the command: "
            f"{rate(p['images'] / p['inside_seconds'] if p['inside_seconds'] else None)}); the reference "
            f"{rp['images']} for {rp['kept']} in {rp['seconds']:.1f} s. fit: {rf['rows']} x {rf['features']} -> "
            f"{rf['latent_dim']}; linkstyle {f['seconds']:.2f} s wall, {f['inside_seconds']:.3f} s inside "
            f"(statistics from pairs: {f['statistics_reused']}); LinearRegression().fit {rf['seconds']:.3f} s. "
            f"sweep: {settings['units']} units x {s['tuning_images']} tuning samples x {settings['steps']} steps; "
            f"linkstyle {s['images']} images ({s['unit_images']} unit, {s['null_images']} null-direction, "
            f"{s['tuning_images']} tuning; parts: {s['part_source']}) in {s['seconds']:.1f} s "
            f"({s['inside_rate']:.1f}/s by its summary.json); the reference {rs['images']} images "
            f"({rs['sweep_images']} sweep, {rs['tuning_images']} tuning) in {rs['seconds']:.1f} s.")
        if "4N" in memory:
            notes.append(
                f"- {name}: memory flat in the number of samples (linkstyle pairs, shard size "
                f"{shard_size(settings)}): {memory['N']['pairs_per_class']} per class ({memory['N']['rows']} rows, "
                f"{memory['N']['shards']} shard(s)) peak RSS {megabytes(memory['N']['peak_rss_kb'])}; "
                f"{memory['4N']['pairs_per_class']} per class ({memory['4N']['rows']} rows, {memory['4N']['shards']} "
                f"shard(s)) peak RSS {megabytes(memory['4N']['peak_rss_kb'])} "
                f"({memory['4N']['peak_rss_kb'] / memory['N']['peak_rss_kb']:.2f}x; {rate(memory['4N']['rate'])}).")
        else:
            notes.append(f"- {name}: memory check (pairs at 4N) not run for this set (--memory-check-all runs it).")
        notes.append(
            f"- {name}: reference process (all stages, models loaded once): peak RSS "
            f"{megabytes(rr['peak_rss_kb'])}, {rr['minor_faults']:,} minor faults, {rr['user']:.1f} s user, "
            f"{rr['system']:.1f} s sys, {rr['elapsed']:.1f} s wall.")
        notes.append(f"- {name}: wall time of each process: " + ", ".join(
            f"{what} {seconds:.1f} s" for what, seconds in result["wall_seconds"].items()) + ".")
        for note in result["notes"]:
            notes.append(f"- {name}: {note}")
    if bench_fit is not None:
        if "error" in bench_fit:
            notes.append(f"- fit at ResNet-50 / StyleGAN-XL sizes: {bench_fit['error']}")
        else:
            goal = "meets" if (bench_fit["speedup_reused"] or 0) >= 5 else "misses"
            notes.append(
                f"- fit at ResNet-50 / StyleGAN-XL sizes (bench_fit, N = {bench_fit['rows']}, D = 2048, "
                f"w_dim = 512): scikit-learn {bench_fit['sklearn']:.2f} s; linkstyle from the shards "
                f"{bench_fit['ours_from_shards']:.2f} s ({bench_fit['speedup_from_shards']:.1f}x), with the "
                f"statistics from pairs {bench_fit['ours_reused']:.2f} s ({bench_fit['speedup_reused']:.1f}x; "
                f"{goal} the 5x goal). Command: `{bench_fit['command']}` ({bench_fit['elapsed']:.0f} s).")
    return "\n".join(lines + [""] + notes)


def main():
    parser = argparse.ArgumentParser(description="linkstyle vs the reference pipeline vs the ceiling")
    parser.add_argument("build", help="build folder holding linkstyle and bench/bench_fit")
    parser.add_argument("--models", choices=["shapes", "realscale", "both"], default="both")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the command works, measures nothing")
    parser.add_argument("--realscale-classifier", default=os.environ.get(
        "LINKSTYLE_REALSCALE_CLASSIFIER", "/tmp/realscale/classifier_resnet50.pt"))
    parser.add_argument("--realscale-generator", default=os.environ.get(
        "LINKSTYLE_REALSCALE_GENERATOR", "/tmp/realscale/generator_xl64.pt"))
    parser.add_argument("--filter", default=None, help="override both sets' filter: argmax, none, top-k:K, "
                                                       "min-probability:P")
    parser.add_argument("--classes", default=None, help="override both sets' generator classes, e.g. 0,1")
    parser.add_argument("--parts", default=None, help="sweep.parts for both sets: auto, segmenter, kmeans, none")
    parser.add_argument("--pairs-per-class", type=int, default=0)
    parser.add_argument("--units", type=int, default=0, help="sweep units 0..K-1")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--sweep-samples-per-class", type=int, default=0)
    parser.add_argument("--fit-rows", type=int, default=0, help="bench_fit rows (default 30000, 4000 with --quick)")
    parser.add_argument("--no-bench-fit", action="store_true")
    parser.add_argument("--memory-check-all", action="store_true",
                        help="also run the realscale set's pairs at 4N (off: about 8 more images, some 2 minutes)")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it")
    parser.add_argument("--json-out", default=None, help="also write every measurement as JSON here")
    arguments = parser.parse_args()
    arguments.build = os.path.abspath(arguments.build)
    arguments.realscale_classifier = os.path.abspath(arguments.realscale_classifier)
    arguments.realscale_generator = os.path.abspath(arguments.realscale_generator)
    if not arguments.fit_rows:
        arguments.fit_rows = 4000 if arguments.quick else 30000
    if not os.access(os.path.join(arguments.build, "linkstyle"), os.X_OK):
        sys.exit(f"error: {arguments.build}/linkstyle: not found (build first)")

    work = os.path.abspath(arguments.keep) if arguments.keep else tempfile.mkdtemp(prefix="linkstyle-compare-")
    os.makedirs(work, exist_ok=True)
    started = time.perf_counter()
    results = []
    try:
        sets = model_sets(arguments)
        names = ["shapes", "realscale"] if arguments.models == "both" else [arguments.models]
        for name in names:
            settings = sets[name]
            missing = [settings[k] for k in ("classifier", "generator") if not os.path.exists(settings[k])]
            if missing:
                log(f"{name}: skipped, missing {', '.join(missing)}")
                results.append({"name": name, "skipped": f"missing {', '.join(missing)}"})
                continue
            try:
                results.append(run_set(name, settings, arguments, work))
            except (RuntimeError, subprocess.CalledProcessError, KeyError, ValueError) as error:
                log(f"{name}: failed: {error}")
                results.append({"name": name, "skipped": f"failed: {str(error).splitlines()[0]}"})
        bench_fit = None if arguments.no_bench_fit else run_bench_fit(arguments, work)
    finally:
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)
    log(f"total {time.perf_counter() - started:.0f} s")
    if arguments.json_out:
        json.dump({"results": results, "bench_fit": bench_fit, "threads": arguments.threads}, open(
            arguments.json_out, "w"), indent=2, default=str)
    print(table(results, bench_fit, arguments.threads))


if __name__ == "__main__":
    main()
