"""``SregistryExtension``: the registry inside a Jupyter server, for the Lab panel and the widgets.

Installing the package enables it (``jupyter-config/jupyter_server_config.d/sregistry_jupyter.json``).
It acts for the person who owns the server, with their own credential: inside JupyterHub the server's
hub token (``$JUPYTERHUB_API_TOKEN``, which the registry accepts for the hub user), else
``$SREGISTRY_TOKEN``; the registry's URL is ``$SREGISTRY_URL``, which the hub sets for every server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default

from ..client import AsyncRegistryClient
from ..client.config import HUB_TOKEN_ENV, TOKEN_ENV, URL_ENV, Settings
from ..client.errors import RegistryError, RegistryUnavailable, Unauthorized
from .handlers import HUB_REFUSAL, routes
from .transfers import TransferManager

NO_URL = (
    f"no registry is configured: set {URL_ENV} in the Jupyter server's environment or c.SregistryExtension.registry_url"
)
NO_TOKEN = f"no registry credential: set {TOKEN_ENV} in the Jupyter server's environment or c.SregistryExtension.token"


class SregistryExtension(ExtensionApp):
    """Browse, push, pull and share registry images from JupyterLab, as the person who owns this server."""

    name = "sregistry_jupyter"
    load_other_extensions = True

    registry_url = Unicode(config=True, help=f"The registry's URL; default ${URL_ENV}.")
    token = Unicode(
        config=True,
        help=f"The registry credential; default ${HUB_TOKEN_ENV} inside JupyterHub, else ${TOKEN_ENV}.",
    )
    transfer_folder = Unicode(
        "",
        config=True,
        help="Folder, relative to the server's root, that pulls go to when the request names none.",
    )

    @default("registry_url")
    def _registry_url_default(self) -> str:
        return os.environ.get(URL_ENV, "")

    @default("token")
    def _token_default(self) -> str:
        return os.environ.get(HUB_TOKEN_ENV) or os.environ.get(TOKEN_ENV, "")

    _client: AsyncRegistryClient | None = None

    def initialize_settings(self) -> None:
        self.transfers = TransferManager(self.log)
        self.log.info("sregistry: registry %s", self.registry_url or "(not configured)")

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes())

    @property
    def workspace_root(self) -> Path:
        return Path(self.serverapp.root_dir)

    def settings_in_use(self) -> Settings:
        source = "none"
        if self.token:
            from_hub = self.token == os.environ.get(HUB_TOKEN_ENV) and "token" not in self.config.get(
                "SregistryExtension", {}
            )
            source = HUB_TOKEN_ENV if from_hub else "SregistryExtension.token"
        return Settings(self.registry_url.rstrip("/"), self.token or None, source)

    def registry_client(self) -> AsyncRegistryClient:
        """The long-lived client (one connection pool for every request and transfer of this server)."""
        if not self.registry_url:
            raise RegistryUnavailable(NO_URL, code="NOT_CONFIGURED")
        if self._client is None:
            self._client = AsyncRegistryClient(self.registry_url, self.token)
        return self._client

    async def whoami(self) -> dict[str, Any]:
        """Who the registry takes this server for, or why it does not."""
        answer: dict[str, Any] = {"registry_url": self.registry_url or None, "user": None, "message": None}
        if not self.registry_url:
            answer["message"] = NO_URL
            return answer
        if not self.token:
            answer["message"] = NO_TOKEN
            return answer
        try:
            user = await self.registry_client().whoami()
        except Unauthorized as error:
            hub = self.settings_in_use().from_hub
            answer["message"] = f"{HUB_REFUSAL} (the registry said: {error.message})" if hub else error.message
            return answer
        except RegistryError as error:
            answer["message"] = error.message
            return answer
        answer["user"] = {"name": user.name, "is_admin": user.admin, "is_staff": user.staff}
        return answer

    async def stop_extension(self) -> None:
        await self.transfers.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
