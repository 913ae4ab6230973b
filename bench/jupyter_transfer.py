"""Jupyter transfer benchmark: push and pull through the Python client and through the Jupyter extension,
beside curl doing the same against the same registry.

Every figure is a ratio to curl's in the same run, so a noisy shared disk moves both sides alike. Each push
sends different bytes (three files of the same size), so no push is skipped by the registry's dedup check.
The client's push time includes hashing the file, which curl is spared (its digest is computed beforehand,
untimed): that is the price of the dedup check and of knowing the digest before the first byte goes out.
Peak RSS is read from the client process (``ru_maxrss``) and sampled from the Jupyter server.

    python bench/jupyter_transfer.py [--size-mib 1024] [--keep] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import BLOCK, BenchFailure, RssSampler, free_port, in_work_dir, registry_server, robot_token, stop, timed

CLIENT_RUN = """
import resource, sys, time
from sregistry_jupyter.client import RegistryClient
action, url, token, ref, path = sys.argv[1:6]
with RegistryClient(url, token) as client:
    started = time.perf_counter()
    client.push(path, ref) if action == "push" else client.pull(ref, path)
    print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_file(path: Path, size: int) -> str:
    """``size`` random bytes (distinct per file); their registry digest."""
    hasher = hashlib.sha256()
    block = os.urandom(BLOCK)
    with path.open("wb") as out:
        for index in range(size // BLOCK):
            chunk = index.to_bytes(8, "big") + block[8:]
            hasher.update(chunk)
            out.write(chunk)
    return f"sha256.{hasher.hexdigest()}"


def curl(*args: str) -> float:
    seconds, result = timed(["curl", "-sS", "--fail", *args])
    if result.returncode:
        raise BenchFailure(f"curl failed: {result.stderr.strip()}")
    return seconds


def through_client(action: str, url: str, token: str, ref: str, path: Path) -> tuple[float, int]:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_RUN, action, url, token, ref, str(path)], capture_output=True, text=True
    )
    if result.returncode:
        raise BenchFailure(f"client {action} failed: {result.stderr.strip()[-500:]}")
    seconds, rss = result.stdout.split()
    return float(seconds), int(rss)


class JupyterServer:
    """A real ``jupyter server`` with the extension, whose transfers are started and polled over HTTP."""

    def __init__(self, work: Path, registry_url: str, token: str) -> None:
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.log = work / "jupyter.log"
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            f"--ServerApp.root_dir={work}",
            f"--IdentityProvider.token={self.token}",
            "--allow-root",
            "--ServerApp.open_browser=False",
            f"--SregistryExtension.registry_url={registry_url}",
            f"--SregistryExtension.token={token}",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/sregistry/api",
            timeout=60,
            headers={"Authorization": f"token {self.token}"},
        )
        for _ in range(600):
            try:
                if self.http.get("/whoami").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise BenchFailure(f"jupyter server did not start: {self.log.read_text()[-500:]}")

    def transfer(self, body: dict) -> tuple[float, int]:
        sampler = RssSampler(self.process.pid)
        sampler.start()
        started = time.perf_counter()
        transfer = self.http.post("/transfers", json=body).json()
        while transfer.get("state") not in ("done", "failed", "cancelled"):
            time.sleep(0.02)
            transfer = self.http.get(f"/transfers/{transfer['id']}").json()
        seconds = time.perf_counter() - started
        peak = sampler.stop()
        if transfer["state"] != "done":
            raise BenchFailure(f"extension transfer {transfer['state']}: {transfer.get('error')}")
        return seconds, peak

    def close(self) -> None:
        self.http.close()
        stop(self.process)


def run(work: Path, size: int) -> None:
    files = {name: work / f"{name}.sif" for name in ("curl", "client", "extension")}
    digests = {name: write_file(path, size) for name, path in files.items()}
    data = work / "data"
    with registry_server(work, data) as (_, url):
        token = robot_token(data, "bench")
        auth = f"Authorization: Bearer {token}"
        mib = size / (1 << 20)
        images = f"{url}/api/v1/collections/bench/containers"
        curl_push = curl(
            "-H",
            auth,
            "-H",
            "Content-Type: application/octet-stream",
            "-X",
            "POST",
            "-T",
            str(files["curl"]),
            f"{images}/curl/images?digest={digests['curl']}&tag=v1",
            "-o",
            "/dev/null",
        )
        curl_pull = curl("-H", auth, "-o", str(work / "curl.out"), f"{images}/curl/images/v1/file")
        client_push, client_push_rss = through_client("push", url, token, "bench/client:v1", files["client"])
        client_pull, client_pull_rss = through_client("pull", url, token, "bench/client:v1", work / "client.out")
        server = JupyterServer(work, url, token)
        try:
            ext_push, ext_push_rss = server.transfer(
                {"direction": "push", "path": "extension.sif", "ref": "bench/extension:v1"}
            )
            ext_pull, ext_pull_rss = server.transfer(
                {"direction": "pull", "ref": "bench/extension:v1", "filename": "extension.out"}
            )
        finally:
            server.close()
        for name, out in (("client", "client.out"), ("extension", "extension.out")):
            if (work / out).stat().st_size != size:
                raise BenchFailure(f"{name} pull wrote {(work / out).stat().st_size} bytes, not {size}")
        rows = [
            ("push", "curl", curl_push, None, 1.0),
            ("push", "client", client_push, client_push_rss, curl_push / client_push),
            ("push", "extension", ext_push, ext_push_rss, curl_push / ext_push),
            ("pull", "curl", curl_pull, None, 1.0),
            ("pull", "client", client_pull, client_pull_rss, curl_pull / client_pull),
            ("pull", "extension", ext_pull, ext_pull_rss, curl_pull / ext_pull),
        ]
        print(f"{mib:.0f} MiB each way, registry at {url}")
        print(f"{'':5} {'through':10} {'seconds':>8} {'MiB/s':>8} {'speed / curl':>13} {'peak RSS MiB':>13}")
        for action, through, seconds, rss, ratio in rows:
            shown = f"{rss / (1 << 20):.0f}" if rss else "-"
            print(f"{action:5} {through:10} {seconds:8.2f} {mib / seconds:8.0f} {ratio:13.2f} {shown:>13}")
        print(json.dumps({f"{a}_{t}_ratio": round(r, 3) for a, t, _, _, r in rows if t != "curl"}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    size = max(1, args.size_mib) << 20
    size -= size % BLOCK
    return in_work_dir(args.work_dir, "jupyter-bench-", args.keep, lambda work: run(work, size))


if __name__ == "__main__":
    sys.exit(main())
