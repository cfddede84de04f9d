"""A non-editable install (``pip install .``, the Dockerfile's) carries everything vislink needs at run time:
the wheel is built, installed in a fresh virtual environment, and its own `vislink` migrates a new database
and runs the doctor, from a folder that is not the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


def test_the_wheel_installs_and_migrates_outside_the_checkout(tmp_path):
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                  "-w", str(tmp_path / "dist"), str(ROOT)])
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("vislink-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    shipped = sorted(Path(n).name for n in names if "/share/vislink/migrations/versions/" in n)
    assert shipped == versions, "the wheel must carry every migration"

    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    # vislink's dependencies come from the test environment (installing torch again would take minutes);
    # vislink itself only from the wheel: a .pth line adds a folder without running its .pth files, so the
    # checkout's editable install is not seen.
    site = _run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    (Path(site.stdout.strip()) / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                      str(wheel)])
    assert installed.returncode == 0, installed.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISLINK_", "QDRANT_", "PYTHONPATH"))}
    env["VISLINK_HOME"] = str(tmp_path / "home")
    where = _run([str(venv / "bin" / "python"), "-c", "import vislink; print(vislink.__file__)"], env=env,
                 cwd=tmp_path)
    assert where.stdout.strip().startswith(str(venv)), f"vislink came from {where.stdout!r}, not the wheel"

    upgraded = _run([str(venv / "bin" / "vislink"), "db", "upgrade"], env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    doctor = _run([str(venv / "bin" / "vislink"), "doctor"], env=env, cwd=tmp_path)
    from vislink.store.db import head_revision

    database = next((ln for ln in doctor.stdout.splitlines() if "] database:" in ln), "")
    assert database.startswith("[ok") and database.endswith(f" at {head_revision()}"), doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr
