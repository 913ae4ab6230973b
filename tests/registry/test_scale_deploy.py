"""The deployment examples in ``server/`` are loaded for real where this machine can run them.

nginx runs the example config (its TLS and upstream settings unchanged; only the certificate, the ports and
the paths nginx writes to are pointed into the test's folder) in front of two real ``serve`` processes on one
PostgreSQL database, and requests over HTTPS reach both. ``systemd-analyze verify`` checks the service
template without a warning. The compose file is parsed: its registry processes share one database, one
bucket and one secret key that match the services providing them, and every ``--Class.trait`` option it
passes is a trait of the registry (Docker cannot run here).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml
from traitlets.config import Configurable

from sregistry_jupyter.registry.app import ServeCommand
from tests.conftest import free_port, pg_database, run_cli, start_process, wait_for

SERVER = Path(__file__).resolve().parents[2] / "server"
NGINX = "/usr/sbin/nginx"
SECRET = "one secret key for every process"


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "registry.pem", folder / "registry.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def nginx_main(site: str, prefix: Path) -> str:
    """A main config around the example site config, with every path nginx writes inside ``prefix``."""
    temps = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"};
events {{ worker_connections 256; }}
http {{
    access_log off;
{temps}
{site}
}}
"""


def test_nginx_example_fronts_two_processes_over_tls(tmp_path):
    site = (SERVER / "nginx" / "sregistry.conf").read_text()
    upstreams = re.findall(r"server 127\.0\.0\.1:(\d+)", site)
    assert len(upstreams) >= 2
    for url in pg_database():
        env = {"SREGISTRY_DB_URL": url, "SREGISTRY_SECRET_KEY": SECRET}
        data = tmp_path / "data"
        run_cli("init", "--data-dir", str(data), env=env)
        ports = [free_port() for _ in upstreams]
        options = ("--data-dir", str(data), "--RegistryApp.trusted_proxies=['127.0.0.1']", "--ip", "127.0.0.1")
        servers = []
        try:
            for port in ports:
                servers.append(start_process(*options, "--port", str(port), env=env))
            https, http = free_port(), free_port()
            cert, key = self_signed(tmp_path)
            for old, new in zip(upstreams, ports, strict=True):
                site = site.replace(f"127.0.0.1:{old} ", f"127.0.0.1:{new} ")
            site = site.replace("listen 443 ", f"listen 127.0.0.1:{https} ").replace(
                "listen 80;", f"listen 127.0.0.1:{http};"
            )
            site = re.sub(r"ssl_certificate .*;", f"ssl_certificate {cert};", site)
            site = re.sub(r"ssl_certificate_key .*;", f"ssl_certificate_key {key};", site)
            conf = tmp_path / "nginx.conf"
            conf.write_text(nginx_main(site, tmp_path))
            checked = subprocess.run(
                [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
            )
            assert checked.returncode == 0, checked.stderr
            nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE)
            try:
                base = f"https://localhost:{https}"
                assert wait_for(lambda: _answers(base))  # noqa: B023 (called at once, in this iteration)
                redirect = httpx.get(f"http://127.0.0.1:{http}/version", headers={"Host": "registry.example.org"})
                assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")
                with httpx.Client(verify=False, base_url=base, timeout=30) as client:
                    answers = [client.get("/version") for _ in range(20)]
                    assert {answer.status_code for answer in answers} == {200}
                    config = client.get("/assets/config/config.prod.json").json()
                    assert urlsplit(config["libraryAPI"]["uri"]).scheme == "https"  # X-Forwarded-Proto believed
            finally:
                nginx.terminate()
                nginx.wait(10)
            assert [server.stop() for server in servers] == [0] * len(servers)
        finally:
            for server in servers:
                if server.process.poll() is None:
                    server.stop()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/version", verify=False, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_systemd_template_verifies_without_a_warning(tmp_path):
    unit = (SERVER / "systemd" / "sregistry@.service").read_text()
    command = re.search(r"^ExecStart=(\S+)", unit, re.M).group(1)
    assert command.endswith("/sregistry-jupyter")
    here = Path(sys.executable).with_name("sregistry-jupyter")
    (tmp_path / "sregistry@.service").write_text(unit)
    instance = tmp_path / "sregistry@5001.service"
    instance.write_text(unit.replace(command, str(here)))
    verified = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == ""
    serve = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    assert serve[1] == "serve" and serve[serve.index("--port") + 1] == "%i"


def options_of(command: str) -> dict[str, str]:
    """The ``--Class.trait=value`` options of a shell command line."""
    return dict(re.findall(r"--([A-Za-z0-9]+\.[a-z_]+)=(\S+)", command))


def trait_classes() -> dict[str, type[Configurable]]:
    """The configurable classes ``serve`` knows, and the store a compose file may name."""
    known = {cls.__name__: cls for cls in ServeCommand().classes}
    try:
        from sregistry_jupyter.registry.storage.s3 import S3BlobStore
    except ImportError:
        return known
    return {**known, "S3BlobStore": S3BlobStore}


def test_compose_file_matches_the_registry(tmp_path):
    compose = yaml.safe_load((SERVER / "compose.yaml").read_text())
    services = compose["services"]
    registries = {name: service for name, service in services.items() if name.startswith("registry")}
    assert len(registries) >= 2
    database = services["postgres"]["environment"]
    minio = services["minio"]["environment"]
    classes = trait_classes()
    seen = []
    for service in registries.values():
        env = service["environment"]
        url = urlsplit(env["SREGISTRY_DB_URL"])
        assert (url.username, url.password, url.path.lstrip("/")) == (
            database["POSTGRES_USER"],
            database["POSTGRES_PASSWORD"],
            database["POSTGRES_DB"],
        )
        assert url.hostname == "postgres"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            minio["MINIO_ROOT_USER"],
            minio["MINIO_ROOT_PASSWORD"],
        )
        assert urlsplit(env["AWS_ENDPOINT_URL"]).hostname == "minio"
        options = options_of(service["command"])
        assert options["RegistryApp.blob_store_class"] == "s3"
        assert urlsplit(options["RegistryApp.redis_url"]).hostname in services
        for option in options:
            owner, trait = option.split(".")
            if owner in classes:
                assert classes[owner].class_own_traits(config=True).get(trait) or classes[owner].class_traits(
                    config=True
                ).get(trait), option
            else:
                assert owner == "S3BlobStore" and trait in {"bucket", "prefix"}, option
        bucket = options["S3BlobStore.bucket"]
        assert f"local/{bucket}" in services["bucket"]["entrypoint"]
        seen.append((env["SREGISTRY_SECRET_KEY"], env["SREGISTRY_DB_URL"], bucket))
    assert len(set(seen)) == 1  # one key, one database, one bucket
    published = [service["ports"][0].split(":")[0] for service in registries.values()]
    assert len(set(published)) == len(published)
