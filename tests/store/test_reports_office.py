"""An encrypted XLSX export opened by an office suite, not only by a library.

msoffcrypto-tool and olefile check payhub's encrypted workbooks in
``tests/test_reports_xlsx_encryption.py``; here LibreOffice Calc (an
implementation of ECMA-376 agile decryption of its own) opens a real export
with its password, reads the cells (amounts as numbers), and refuses a wrong
password. Excel and WPS are not available on Linux CI; LibreOffice is the
office suite that is. It runs through the system Python's ``uno`` module
(Debian's ``libreoffice-calc-nogui`` and ``python3-uno``, which ``.ci/run``
installs): without them the test skips saying so, under ``CI=true`` it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from reportkit import add_payments, day_filters

from payhub.reports import Reports
from payhub.store import Store

HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() == "true"
SYSTEM_PYTHON = os.environ.get("PAYHUB_UNO_PYTHON", "/usr/bin/python3")
PASSWORD = "财务-Tr0ub4dor&3"


def _missing() -> str | None:
    if shutil.which("soffice") is None:
        return "no soffice on PATH (apt-get install libreoffice-calc-nogui python3-uno)"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import uno (apt-get install python3-uno)"
    return None


def _open(path: Path, password: str, profile: Path) -> dict[str, Any]:
    done = subprocess.run(
        [SYSTEM_PYTHON, str(HERE / "office_open.py"), str(path), password, str(profile)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def office() -> None:
    missing = _missing()
    if missing is not None:
        if IN_CI:
            pytest.fail(f"CI=true and LibreOffice cannot run: {missing}")
        pytest.skip(missing)


def test_libreoffice_opens_an_encrypted_export_with_its_password_only(
    office: None, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'payhub.db'}")
    try:
        store.upgrade()
        add_payments(store, [{"amount_minor": 4200, "subject": "季卡"}])
        run = Reports(store, output_dir=tmp_path / "out").run(
            "payments", day_filters(), format="xlsx", password=PASSWORD
        )
    finally:
        store.close()
    path = Path(run.path)
    profile = tmp_path / "libreoffice-profile"
    opened = _open(path, PASSWORD, profile)
    assert opened["opened"] is True
    header, first = opened["cells"][0], opened["cells"][1]
    assert "季卡" in first
    # the amount (42.00 yuan) is a number Calc can sum, beside its header
    column = first.index("季卡") + 1
    assert opened["numbers"][1][column] == 42
    assert header[column]
    assert _open(path, "wrong password", profile) == {"opened": False}
