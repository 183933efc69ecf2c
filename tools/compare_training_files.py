#!/usr/bin/env python3
"""Compares the files that two training runs wrote, allowing only time to differ.

  compare_training_files.py OLD_FOLDER NEW_FOLDER   every file of two folders, path by path
  compare_training_files.py --pair MODEL_A MODEL_B  one run's files against another's (the model,
                                                    its log, checkpoint and card)

Models and images must be equal byte for byte. CSV logs must be equal without their last column
(seconds). Checkpoints cannot be compared as bytes even between two runs of one binary: besides
"seconds", libtorch keys Adam's per-parameter state by the parameter's address in memory, and
orders it by hash. They must hold the same entries with the same values and tensor bytes, in the
same order, once the addresses are replaced by the parameters' positions, "seconds" aside. Model
cards must be equal byte for byte without their training_seconds and git_revision lines (and,
with --pair, command_line). Prints each difference; exits 1 on any.
"""
import io
import os
import pickle
import re
import sys
import zipfile


def log_without_seconds(path):
    with open(path, "rb") as f:
        return [re.sub(rb",[^,]*$", b"", line) for line in f.read().split(b"\n")]


class _Object:
    """A TorchScript object of the checkpoint's pickle (a module of the archive): its attributes."""

    state = None

    def __setstate__(self, state):
        self.state = state


class _CheckpointUnpickler(pickle.Unpickler):
    """Reads a checkpoint's data.pkl without torch: objects keep their attributes, tensors become
    (dtype, shape, stride, offset, storage bytes)."""

    def __init__(self, archive, prefix):
        super().__init__(io.BytesIO(archive.read(prefix + "data.pkl")))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *rest: ("tensor", storage[0], tuple(size), tuple(stride),
                                                                 offset, storage[1])
        if module == "torch" and name.endswith("Storage"):
            return name
        return type(name, (_Object,), {})

    def persistent_load(self, pid):
        _, dtype, key, _, _ = pid
        return dtype, self.archive.read(self.prefix + "data/" + key)


def _parameter_names(optimizer_state):
    """Adam's state is keyed by the parameters' addresses in memory, which change from run to run:
    the address -> "parameter i" (i in the order of the parameter groups)."""
    names = {}
    groups = optimizer_state["param_groups"].state
    for group_key in sorted((k for k in groups if k != "param_groups/size"), key=lambda k: int(k.split("/")[1])):
        group = groups[group_key].state
        for key in sorted((k for k in group if re.fullmatch(r"params/\d+", k)), key=lambda k: int(k.split("/")[1])):
            names.setdefault(group[key], f"parameter {len(names)}")
    return names


def _canonical(value, names=None):
    if isinstance(value, _Object):
        state = value.state if isinstance(value.state, dict) else {"": value.state}
        if "param_groups" in state and "state" in state:
            names = _parameter_names(state)
        items = [(names.get(k, k) if names else k, _canonical(v, names)) for k, v in state.items()]
        if names and all(k in names.values() for k, _ in items):
            items.sort()  # the optimiser's per-parameter states, written in hash-map order
        return items
    if isinstance(value, str) and names:
        return names.get(value, value)
    return value


def checkpoint_values(path):
    """A checkpoint's content, comparable across runs: every entry and tensor in order, Adam's
    per-parameter states named by parameter, and the "seconds" entry left out."""
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0] + "/"
        root = _CheckpointUnpickler(archive, prefix).load()
    return [(k, v) for k, v in _canonical(root) if k != "seconds"]


def card_without_time(path, more_keys):
    keys = ["training_seconds", "git_revision"] + more_keys
    pattern = re.compile(rb'^\s*"(' + "|".join(keys).encode() + rb')":')
    with open(path, "rb") as f:
        return [line for line in f.read().split(b"\n") if not pattern.match(line)]


def same_file(a, b, more_card_keys=()):
    """Whether two files are equal under the rules above; prints what differs."""
    name = os.path.basename(a)
    if name.endswith(".log.csv"):
        same = log_without_seconds(a) == log_without_seconds(b)
        raw_same = open(a, "rb").read() == open(b, "rb").read()
        note = " (seconds column aside)" if same and not raw_same else ""
    elif name == "checkpoint.pt":
        values_a, values_b = checkpoint_values(a), checkpoint_values(b)
        same = values_a == values_b
        if not same:
            differing = [k for (k, v), (_, w) in zip(values_a, values_b) if v != w]
            print(f"    entries that differ: {', '.join(differing) or 'their lists'}")
        note = " (seconds entry aside, Adam's states matched by parameter)"
    elif name.endswith(".json"):
        same = card_without_time(a, list(more_card_keys)) == card_without_time(b, list(more_card_keys))
        note = " (" + ", ".join(["training_seconds", "git_revision"] + list(more_card_keys)) + " aside)"
    else:
        same = open(a, "rb").read() == open(b, "rb").read()
        note = ""
    print(f"  {'same' if same else 'DIFFERENT'}{note if same else ''}: {a} {b}")
    return same


def files_under(folder):
    found = set()
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                found.add(os.path.relpath(path, folder))
    return found


def compare_folders(old, new):
    old_files, new_files = files_under(old), files_under(new)
    ok = old_files == new_files
    for missing in sorted(old_files ^ new_files):
        print(f"  DIFFERENT: only one side wrote {missing}")
    for relative in sorted(old_files & new_files):
        ok = same_file(os.path.join(old, relative), os.path.join(new, relative)) and ok
    return ok


def compare_pair(model_a, model_b):
    ok = True
    for suffix in ["", ".log.csv", ".checkpoint/checkpoint.pt", ".json"]:
        ok = same_file(model_a + suffix, model_b + suffix, ["command_line"]) and ok
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--pair":
        sys.exit(0 if compare_pair(sys.argv[2], sys.argv[3]) else 1)
    if len(sys.argv) == 3:
        sys.exit(0 if compare_folders(sys.argv[1], sys.argv[2]) else 1)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
