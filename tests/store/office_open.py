"""Open an (encrypted) XLSX with LibreOffice and print what it reads, as JSON.

Run by ``test_reports_office.py`` with the system Python that has LibreOffice's
``uno`` module (Debian: ``python3-uno``), never imported by the test suite:

    /usr/bin/python3 office_open.py FILE PASSWORD PROFILE_DIR

Starts a headless ``soffice`` with its own profile, asks it to load FILE with
PASSWORD as Calc's "Calc MS Excel 2007 XML" filter would from the open dialog,
and prints ``{"opened": false}`` or ``{"opened": true, "sheet": …, "cells":
[[…], …], "numbers": [[…], …]}`` for the first sheet's first three rows and six
columns (cells as text and as numbers).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]


def _prop(name: str, value: Any) -> Any:
    prop = PropertyValue()
    prop.Name, prop.Value = name, value
    return prop


def main(path: str, password: str, profile: str) -> None:
    pipe = f"payhub{uuid.uuid4().hex}"
    soffice = subprocess.Popen(
        [
            "soffice",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            f"-env:UserInstallation={Path(profile).as_uri()}",
            f"--accept=pipe,name={pipe};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    desktop = None
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        try:
            doc = desktop.loadComponentFromURL(
                uno.systemPathToFileUrl(str(Path(path).resolve())),
                "_blank",
                0,
                (
                    _prop("Hidden", True),
                    _prop("Password", password),
                    _prop("FilterName", "Calc MS Excel 2007 XML"),
                ),
            )
        except Exception:  # LibreOffice refuses some files by raising
            doc = None
        if doc is None:
            print(json.dumps({"opened": False}))
            return
        sheet = doc.Sheets.getByIndex(0)
        rows = [[sheet.getCellByPosition(c, r) for c in range(6)] for r in range(3)]
        print(
            json.dumps(
                {
                    "opened": True,
                    "sheet": sheet.Name,
                    "cells": [[cell.getString() for cell in row] for row in rows],
                    "numbers": [[cell.getValue() for cell in row] for row in rows],
                },
                ensure_ascii=False,
            )
        )
        doc.close(True)
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):  # it may go before answering
                desktop.terminate()
        try:
            soffice.wait(timeout=60)
        except subprocess.TimeoutExpired:
            soffice.kill()


if __name__ == "__main__":
    main(*sys.argv[1:4])
