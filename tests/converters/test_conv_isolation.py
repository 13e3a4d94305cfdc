"""A conversion runs with no network and starts no pip (MNN's Python tool wrappers would do both).

The conversion runs in a new network namespace (`unshare -n`: only a downed loopback exists),
and every Python process of it - the CLI and the MNN converter's child - loads an audit hook
(via sitecustomize on PYTHONPATH) that records process spawns, socket use and the imports
that would mean trouble (pip, MNN.tools).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
pytest.importorskip("onnx")  # build-time extra (convert): skip without it
from onnx_models import external_pose_net

AUDIT = textwrap.dedent('''
    import json, os, sys
    _LOG = os.environ.get("EDGEPOSE_AUDIT_LOG")
    _IMPORTS = ("pip", "MNN.tools", "_tools", "ensurepip")
    _SPAWNS = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork")
    _NET = ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname")

    def _write(record):
        record["pid"] = os.getpid()
        with open(_LOG, "a") as fh:
            fh.write(json.dumps(record) + "\\n")

    def _hook(event, args):
        if event == "import":
            name = str(args[0])
            if name in _IMPORTS or name.split(".")[0] == "pip" or name.startswith("MNN.tools"):
                _write({"event": "import", "name": name})
        elif event in _SPAWNS or event in _NET:
            _write({"event": event, "args": repr(args)[:400]})

    if _LOG:
        sys.addaudithook(_hook)
''')


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root or user namespaces)")
def test_conversion_runs_offline_and_never_touches_pip(tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT)
    log = tmp_path / "audit.jsonl"
    external_pose_net(tmp_path / "model.onnx")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")])),
           "EDGEPOSE_AUDIT_LOG": str(log), "PIP_NO_INDEX": "", "no_proxy": "*"}
    code = "import sys; from edgepose.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", code, "convert", "model.onnx", "--fp16", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model.fp16.mnn").is_file() and (tmp_path / "model.mnn").is_file()

    events = [json.loads(line) for line in log.read_text().splitlines()]
    spawns = [e for e in events if e["event"] != "import" and not e["event"].startswith("socket")]
    imports = {e["name"] for e in events if e["event"] == "import"}
    sockets = [e for e in events if e["event"].startswith("socket")]
    # The hook is live: it saw the converter's child process start and import the native extension.
    assert any(sys.executable in e["args"] and "mnnconvert" in e["args"] for e in spawns), spawns
    assert "_tools" in imports
    # ... and nothing else: no pip, no MNN.tools, no socket, no other program.
    assert not any("pip" in e["args"] for e in spawns), spawns
    assert not {i for i in imports if i.split(".")[0] == "pip" or i.startswith("MNN.tools")}, imports
    assert sockets == []  # (onnxsim imports urllib.request at import time, but nothing opens a socket)
    assert all(sys.executable in e["args"] for e in spawns if e["event"] == "subprocess.Popen"), spawns
