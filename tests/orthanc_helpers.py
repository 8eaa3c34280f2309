"""A real Orthanc for tests: Debian's package unpacked into .cache/orthanc (tests/fetch_orthanc.sh, `make
orthanc`), run on a free 127.0.0.1 port with authentication, UTF-8 and optionally its DICOMweb plugin.

Example: ``with start_orthanc(tmp_path, dicomweb=True) as server: server.request("/system")``; DICOMweb is
at ``server.url + "/dicom-web"`` with ``server.user`` / ``server.password``.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "orthanc"


class Orthanc:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.url, self.user, self.password = url, user, password
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, path: str, data: bytes | None = None, method: str | None = None) -> bytes:
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": self.auth})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unpacked(dicomweb: bool) -> Path:
    binary = CACHE / "root" / "usr" / "sbin" / "Orthanc"
    plugin = glob.glob(str(CACHE / "root" / "usr" / "share" / "orthanc" / "plugins*" / "libOrthancDicomWeb.so"))
    if not binary.exists() or (dicomweb and not plugin):
        proc = subprocess.run(["sh", str(ROOT / "tests" / "fetch_orthanc.sh"), str(CACHE)], capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            msg = f"cannot unpack Debian's orthanc (make orthanc): {proc.stderr[-400:]}"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
    return binary


@contextlib.contextmanager
def start_orthanc(work: Path, dicomweb: bool = False) -> Iterator[Orthanc]:
    binary = _unpacked(dicomweb)
    port, password = _free_port(), secrets.token_hex(12)
    plugins = glob.glob(str(CACHE / "root" / "usr" / "share" / "orthanc" / "plugins*" / "libOrthancDicomWeb.so"))
    config = {"Name": "p2med-test", "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
              "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": True, "RegisteredUsers": {"p2med": password}, "DefaultEncoding": "Utf8",
              "Plugins": plugins[:1] if dicomweb else [], "HttpDescribeErrors": True,
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (work / "orthanc.json").write_text(json.dumps(config))
    libdir = glob.glob(str(CACHE / "root" / "usr" / "lib" / "*-linux-gnu"))
    dicdir = glob.glob(str(CACHE / "root" / "usr" / "share" / "libdcmtk*" / "dicom.dic"))
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libdir + [os.environ.get("LD_LIBRARY_PATH", "")]),
           "DCMDICTPATH": dicdir[0] if dicdir else ""}
    log = open(work / "orthanc.log", "wb")
    proc = subprocess.Popen([str(binary), str(work / "orthanc.json")], env=env, stdout=log, stderr=log)
    server = Orthanc(f"http://127.0.0.1:{port}", "p2med", password)
    try:
        for _ in range(150):
            if proc.poll() is not None:
                pytest.fail(f"Orthanc exited: {(work / 'orthanc.log').read_text(errors='replace')[-1500:]}")
            try:
                json.loads(server.request("/system"))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        else:
            pytest.fail("Orthanc did not answer on 127.0.0.1 within 30 s")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
