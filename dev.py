#!/usr/bin/env python3
"""Set up a virtual environment and run the bot or its tests: `python3 dev.py run|test|lint|bench`.

Needs only Python 3.11+ and pip. Installs the project (editable, with test extras) into .venv the
first time and again whenever pyproject.toml changes; then runs the command inside .venv.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject"


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_environment() -> None:
    """Create .venv and install the project when missing or when pyproject.toml changed."""
    # dev.py runs under whatever python3 the user has, so this check is reachable.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"scrutiny-bot needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not _python().exists():
        print("Creating virtual environment in .venv ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(f"Could not create .venv ({exc}). On Debian/Ubuntu: apt install python3-venv")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("Installing scrutiny-bot into .venv (the first run takes a minute) ...", flush=True)
    pip = [str(_python()), "-m", "pip", "install", "-q"]
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # pip would compile all ~23,000 modules it installs (msgraph alone has 16,700), about a
        # minute of one core; the tests load about 3,800 and Python caches those on first import
        # (about 17 s, once). Where bytecode is never written that would recur on every run.
        pip.append("--no-compile")
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(digest)


def main(argv: list[str]) -> int:
    """Dispatch `run`, `test`, `lint` or `bench`, passing any further arguments on."""
    commands = {
        "run": [str(BIN / "scrutiny-bot"), "run"],
        "test": [str(_python()), "-m", "pytest"],
        "lint": None,
        "bench": None,
    }
    if not argv or argv[0] not in commands:
        print(__doc__)
        print("usage: python3 dev.py run|test|lint|bench [arguments...]")
        return 2
    ensure_environment()
    name, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if name == "lint":
        steps = [
            [str(BIN / "ruff"), "check", "."],
            [str(BIN / "ruff"), "format", "--check", "."],
            [str(BIN / "mypy")],
        ]
        return max(subprocess.run(step).returncode for step in steps)
    if name == "bench":
        scripts = sorted((ROOT / "bench").glob("*.py"))
        codes = [subprocess.run([str(_python()), str(s), *rest]).returncode for s in scripts]
        return max(codes, default=0)
    return subprocess.run([*commands[name], *rest]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
