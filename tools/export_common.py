"""Shared pieces of the model export tools (export_classifier.py, export_generator.py).

What it holds: the one-line error convention of linkstyle (`error: <file>: <problem>`, exit
status 2), an early check that the output folder is writable, an atomic save of a TorchScript
module (temporary name in the same folder, fsync, rename), class-name files and the maximum
absolute difference used by every equality check.
"""

import os
import sys
import tempfile
from typing import List, Optional

import torch


class ExportError(Exception):
    """A problem with an input or output file; printed as `error: <file>: <problem>`."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def run_main(main) -> None:
    """Runs main(); an ExportError becomes one line on stderr and exit status 2."""
    try:
        main()
    except ExportError as error:
        print(f"error: {error.path}: {error.problem}", file=sys.stderr)
        sys.exit(2)


def require_file(path: str) -> None:
    """requires: nothing. ensures: path names a readable regular file, else ExportError."""
    if not os.path.isfile(path):
        raise ExportError(path, "no such file")
    if not os.access(path, os.R_OK):
        raise ExportError(path, "not readable")


def check_writable_output(path: str) -> None:
    """Fails before any work is done when the output cannot be written where it is asked."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ExportError(path, "is a folder, expected a file name")
    if not os.path.isdir(folder):
        raise ExportError(path, f"folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        raise ExportError(path, f"cannot write in {folder}: {error.strerror}")


def save_atomically(module: torch.jit.ScriptModule, path: str) -> None:
    """ensures: path holds the whole archive or is untouched (temporary name, fsync, rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".pt")
    os.close(handle)
    try:
        torch.jit.save(module, temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; the output is an ordinary file
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise ExportError(path, f"cannot write: {error.strerror}")
        raise


def read_class_names(path: Optional[str], expected: Optional[int]) -> List[str]:
    """Reads one class name per line (blank lines at the end ignored); checks the count."""
    if path is None:
        return []
    require_file(path)
    try:
        with open(path, encoding="utf-8") as names_file:
            names = [line.rstrip("\r\n") for line in names_file]
    except UnicodeDecodeError:
        raise ExportError(path, "not UTF-8 text")
    while names and not names[-1].strip():
        names.pop()
    if expected is not None and len(names) != expected:
        raise ExportError(path, f"{len(names)} class names, the model has {expected} classes")
    return names


def max_abs_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference of two tensors of the same shape (inf if shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return (a.detach().double().cpu() - b.detach().double().cpu()).abs().max().item()
