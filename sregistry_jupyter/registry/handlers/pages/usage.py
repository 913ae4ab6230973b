"""The usage instructions a collection and a container page show: every client, on this registry's URL.

The library ref has the three parts the real client insists on (``entity/collection/container``); the
entity is accepted and ignored by the registry, so the collection's first owner is used, which reads
naturally and is the same for every viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .base import remote_name, sregistry_config


@dataclass(frozen=True)
class Usage:
    """One client's instructions: a heading, a sentence and the commands (copied with one button)."""

    key: str
    title: str
    intro: str
    commands: str


def usage(
    *,
    base: str,
    registry_name: str,
    collection: str,
    container: str,
    tag: str,
    entity: str,
    username: str | None,
) -> list[Usage]:
    remote = remote_name(registry_name)
    host = urlsplit(base).netloc
    name = f"{collection}/{container}"
    ref = f"{name}:{tag}"
    library = f"library://{entity}/{ref}"
    return [
        Usage(
            "apptainer",
            "Apptainer or SingularityCE",
            "Add this registry once as a remote and log in with a token from your tokens page; then pull and push "
            "with the three-part library ref.",
            f"apptainer remote add --no-login {remote} {base}\n"
            f"apptainer remote login {remote}\n"
            f"apptainer remote use {remote}\n"
            f"apptainer pull {library}\n"
            f"apptainer push image.sif {library}",
        ),
        Usage(
            "shub",
            "Singularity (shub://)",
            "Older Singularity clients pull public images by their shub:// address.",
            f"singularity pull shub://{host}/{ref}",
        ),
        Usage(
            "sregistry",
            "sregistry-cli",
            "Install the client, save this as ~/.sregistry (with your token), then pull or push.",
            "pip install sregistry==0.2.39 requests-toolbelt\n"
            f"cat > ~/.sregistry <<'END'\n{sregistry_config(base, username or '<your user name>', None)}\nEND\n"
            f"sregistry pull {ref}\n"
            f"sregistry push --name {name} --tag {tag} image.sif",
        ),
        Usage(
            "jupyter",
            "Python, a terminal or Jupyter",
            "The sregistry-jupyter client reads SREGISTRY_URL and SREGISTRY_TOKEN; inside JupyterHub it needs no "
            "token. In a notebook the RegistryClient does the same.",
            "pip install sregistry-jupyter\n"
            f"sregistry-jupyter login --url {base}\n"
            f"sregistry-jupyter pull {ref}\n"
            "python3 - <<'END'\n"
            "from sregistry_jupyter.client import RegistryClient\n"
            f'client = RegistryClient("{base}")\n'
            f'client.pull("{ref}", ".")\n'
            "END",
        ),
    ]
