"""JupyterHub configuration that makes the registry a hub service with single sign-on.

The registry runs on its own URL (apptainer clients talk to it directly), so it is an *external* OAuth
client of the hub: the service entry names its OAuth client, its callback and the secret it shares
with the registry, and has no ``url``, so the hub adds no proxy route for it. Users sign in to the
registry through the hub, and single-user servers call it with their own hub token.

Everything a deployment changes comes from the environment (see server/README.md):

    SREGISTRY_URL                 the registry's public URL, e.g. https://registry.example.org
    SREGISTRY_HUB_API_TOKEN       the secret shared with the registry (its JUPYTERHUB_API_TOKEN)
    SREGISTRY_SERVICE_NAME        the service's name in the hub (default: sregistry)
    SREGISTRY_HUB_BIND_URL        where the hub's proxy listens for browsers (default: http://127.0.0.1:8000)
    SREGISTRY_HUB_INTERNAL_URL    where the hub itself listens (default: http://127.0.0.1:8081)
    SREGISTRY_HUB_PROXY_API_URL   the proxy's API (default: http://127.0.0.1:8001)
    SREGISTRY_HUB_PROXY_COMMAND   the configurable-http-proxy executable (default: found on PATH)
    SREGISTRY_HUB_STATE_DIR       the hub's database, cookie secret and proxy PID file (default: .)

The site's own authenticator and spawner (oauthenticator for GitHub or OIDC, a batch spawner, ...) are
set after loading this file, e.g. from the site's main config with ``load_subconfig``.
"""

import os
from pathlib import Path

from jupyterhub.roles import get_default_roles

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ValueError(f"set {name} in the hub's environment (see server/README.md)")
    return value


def default_scopes(role: str) -> list[str]:
    """The scopes JupyterHub gives ``role`` out of the box, so that adding one keeps the others."""
    return next(r["scopes"] for r in get_default_roles() if r["name"] == role)


registry_url = required("SREGISTRY_URL").rstrip("/")
service = os.environ.get("SREGISTRY_SERVICE_NAME", "sregistry")
access_scope = f"access:services!service={service}"
state_dir = Path(os.environ.get("SREGISTRY_HUB_STATE_DIR", ".")).resolve()

c.JupyterHub.bind_url = os.environ.get("SREGISTRY_HUB_BIND_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_bind_url = os.environ.get("SREGISTRY_HUB_INTERNAL_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("SREGISTRY_HUB_PROXY_API_URL", "http://127.0.0.1:8001")
c.ConfigurableHTTPProxy.command = [os.environ.get("SREGISTRY_HUB_PROXY_COMMAND", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state_dir / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")

c.JupyterHub.services = [
    {
        "name": service,
        "oauth_client_id": f"service-{service}",
        "api_token": required("SREGISTRY_HUB_API_TOKEN"),
        "oauth_redirect_uri": f"{registry_url}/oauth_callback",
        "oauth_no_confirm": True,
    },
]

# Who may use the registry: every hub user (through the browser) and every single-user server (with
# its own token, as the user who owns it). Give the scope to a group's role instead to restrict it.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": [*default_scopes("user"), access_scope]},
    {"name": "server", "scopes": [*default_scopes("server"), access_scope]},
]

# Single-user servers (and the Jupyter extension in them) find the registry here.
c.Spawner.environment = {"SREGISTRY_URL": registry_url}
