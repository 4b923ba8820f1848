"""Shared by the comparison scripts: the repository root and a virtual environment
(target/bench-venv) with the Python packages a script needs."""

import importlib
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VENV = os.path.join(ROOT, "target", "bench-venv")


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
