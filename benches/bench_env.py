"""Shared by the comparison scripts: the repository root, a virtual environment
(target/bench-venv) with the Python packages a script needs, and the machine's description."""

import importlib
import os
import platform
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VENV = os.path.join(ROOT, "target", "bench-venv")
# What the benchmarks measure: the release build. The dev profile, which the tests use,
# optimises lightly to keep the build short.
TABSSL = os.path.join(ROOT, "target", "release", "tabssl")
BUILD_TABSSL = "cargo build --release --bin tabssl"


def require(path, build=BUILD_TABSSL):
    """`path`, or an exit naming the command that builds it."""
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: build it with `{build}`")
    return path


def ensure_packages(modules, requirements):
    """Imports `modules`; if one is missing, installs `requirements` into target/bench-venv
    and re-runs the script with that environment's Python."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        python = os.path.join(VENV, "bin", "python3")
        if os.path.abspath(sys.executable) == os.path.abspath(python):
            raise
        if not os.path.exists(python):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q", *requirements])
        os.execv(python, [python, *sys.argv])


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def machine():
    """(CPU model from /proc/cpuinfo, short commit of ROOT)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "?"
    except OSError:
        commit = "?"
    return model, commit
