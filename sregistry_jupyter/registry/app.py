"""The ``sregistry-jupyter`` command: configuration, start-up and the admin commands.

Configuration works like Jupyter's: traitlets on ``RegistryApp`` (and on pluggable classes such as the
blob store), set in ``sregistry_jupyter_config.py`` (``--generate-config`` writes one), on the command
line as ``--RegistryApp.trait=value``, or for secrets in the environment.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from tornado.netutil import bind_sockets
from traitlets import Bool, Enum, Float, Integer, List, TraitError, Type, Unicode, default, validate
from traitlets.config import Application, catch_config_error

from .. import __version__
from . import db, logs
from .access import Policy
from .auth import Authenticator
from .auth.jupyterhub import HubAuthenticator
from .auth.local import LocalAuthenticator
from .auth.oauth import GitHubAuthenticator, OIDCAuthenticator
from .connections import ConnectionLimits, make_server
from .context import LOCAL_HOSTS, Registry
from .proxies import TrustedProxies
from .services.limits import Limiter, Limits, parse_networks
from .services.uploads import UploadLimits
from .storage import BlobStore, FilesystemBlobStore, StoreUnavailable
from .webapp import make_app

CONFIG_FILE = "sregistry_jupyter_config.py"
DEFAULT_TERMS = (
    "This registry is provided for your research. You are responsible for the containers you push to it: "
    "that you may share them, that they hold no secrets or personal data that must not be shared, and "
    "that you keep them up to date. The registry's staff may remove containers that break these terms."
)
SECRET_ENV = "SREGISTRY_SECRET_KEY"
DB_URL_ENV = "SREGISTRY_DB_URL"

common_aliases = {
    "data-dir": "RegistryApp.data_dir",
    "db-url": "RegistryApp.db_url",
    "config": "RegistryApp.config_file",
    "log-level": "Application.log_level",
    "log-format": "RegistryApp.log_format",
}
AUTHENTICATORS = [LocalAuthenticator, GitHubAuthenticator, OIDCAuthenticator, HubAuthenticator]
BLOB_STORES = {
    "filesystem": "sregistry_jupyter.registry.storage.filesystem.FilesystemBlobStore",
    "s3": "sregistry_jupyter.registry.storage.s3.S3BlobStore",
}


class BlobStoreType(Type):
    """A blob store class, named by a short alias (``filesystem``, ``s3``) or by its import path.

    The S3 store is imported only when chosen, so boto3 is needed only by those who use it.
    """

    def validate(self, obj: object, value: object) -> object:
        if isinstance(value, str):
            value = BLOB_STORES.get(value.strip().lower(), value)
        return super().validate(obj, value)


class RegistryUnavailable(Exception):
    """No usable registry where the options point (none there, an unreachable database, a schema this version
    cannot use); the message says so in one line, and what to do."""


class RegistryApp(Application):
    """A container registry for Singularity/Apptainer images."""

    name = "sregistry-jupyter"
    version = __version__
    description = __doc__
    aliases = common_aliases
    flags = {
        "generate-config": ({"RegistryApp": {"generate_config": True}}, "Write a default config file and exit."),
    }

    config_file = Unicode(CONFIG_FILE, config=True, help="The configuration file to load.")
    generate_config = Bool(False, config=True, help="Write a default config file and exit.")
    data_dir = Unicode(
        "sregistry-data", config=True, help="Folder for the database (SQLite), blobs and the secret key."
    )
    db_url = Unicode(
        "",
        config=True,
        help=f"Database URL; default SQLite in the data dir. ${DB_URL_ENV} overrides the default.",
    )
    registry_name = Unicode("Singularity Registry", config=True, help="The registry's name, shown on its pages.")
    public_url = Unicode(
        "", config=True, help="The URL clients reach the registry at, when it differs from the request's host."
    )
    allowed_hosts = List(
        Unicode(),
        config=True,
        help="Host names the registry answers to when public_url is not set, besides localhost, 127.0.0.1 and "
        "::1 (generated links use the request's host, so any other host is refused with a 400).",
    )
    trusted_proxies = List(
        Unicode(),
        config=True,
        help="Reverse proxies (addresses or CIDRs such as 10.0.0.0/8) whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; from anyone else those headers are ignored. Empty: none.",
    )
    log_format = Enum(
        list(logs.FORMATS),
        "text",
        config=True,
        help="How log lines look: 'text' for people, 'json' for one JSON object per line (for log shippers).",
    )
    ip = Unicode("127.0.0.1", config=True, help="The address to listen on.")
    port = Integer(5000, config=True, help="The port to listen on (0 picks a free one).")
    blob_store_class = BlobStoreType(
        FilesystemBlobStore,
        klass=BlobStore,
        config=True,
        help=f"Where image bytes are stored: {' or '.join(BLOB_STORES)} (or the import path of a BlobStore class).",
    )
    reuse_port = Bool(
        False,
        config=True,
        help="Share the port with other serve processes on this machine (SO_REUSEPORT): the kernel spreads "
        "connections over them, so N processes on one port use N cores without a proxy between them. Every "
        "process must use the same database, blob store and SREGISTRY_SECRET_KEY; see server/README.md.",
    )
    max_upload_size = Integer(64 << 30, config=True, help="Largest image accepted, in bytes.")
    multipart_part_size = Integer(
        64 << 20, config=True, help="Part size handed to library clients for multipart uploads, in bytes."
    )
    max_open_uploads = Integer(
        10, config=True, help="Most uploads in progress (library multipart, tus) one person may have open at once."
    )
    max_open_upload_bytes = Integer(
        256 << 30, config=True, help="Most bytes one person's uploads in progress may declare together."
    )
    max_json_body = Integer(1 << 20, config=True, help="Largest JSON request body accepted, in bytes.")
    default_page_size = Integer(20, config=True, help="Items per page when a request does not say.")
    max_page_size = Integer(100, config=True, help="Most items per page a request may ask for.")
    library_redirect = Bool(
        True,
        config=True,
        help="Answer library downloads with a 303 to a signed URL (concurrent ranged pulls); "
        "False sends the bytes in the response itself, for clients and proxies that do not follow redirects.",
    )
    users_create_collections = Bool(True, config=True, help="Whether users (not only staff) may create collections.")
    users_create_teams = Bool(False, config=True, help="Whether users (not only staff) may create teams.")
    collection_limit = Integer(0, config=True, help="Most collections a user may own (0: no limit; staff: none).")
    private_by_default = Bool(False, config=True, help="New collections are private unless their creator says not.")
    private_only = Bool(False, config=True, help="Every collection is private; none can be made public.")
    invitation_days = Float(7.0, config=True, help="Days until a team invitation link expires (it works once).")
    max_share_days = Integer(30, config=True, help="Most days a share link (a download link for one image) may last.")
    terms_of_service = Unicode(
        DEFAULT_TERMS,
        config=True,
        help="Text a person must accept on first sign-in before anything works for them (empty: none).",
    )
    authenticator_class = Type(
        LocalAuthenticator, klass=Authenticator, config=True, help="How people sign in to the web pages."
    )
    shutdown_timeout = Float(
        60.0, config=True, help="Seconds to let requests in flight finish after SIGTERM before exiting."
    )
    rate_limit = Integer(
        600, config=True, help="Requests a minute per token (or per signed-in user without one); 0: no limit."
    )
    anonymous_rate_limit = Integer(
        120, config=True, help="Requests a minute per address from callers without a token; 0: no limit."
    )
    weekly_pull_limit_collection = Integer(
        0, config=True, help="Pulls a week (from Monday 00:00 UTC) of images in one collection; 0: no limit."
    )
    weekly_pull_limit_container = Integer(
        0, config=True, help="Pulls a week (from Monday 00:00 UTC) of images in one container; 0: no limit."
    )
    limit_exempt_users = List(Unicode(), config=True, help="Users (CI robots, say) whom no limit applies to.")
    limit_exempt_networks = List(
        Unicode(), config=True, help="Networks (CIDRs such as 10.0.0.0/8) whom no limit applies to."
    )
    redis_url = Unicode(
        "", config=True, help="Redis to count limits in (redis://host:6379/0); empty: the database counts them."
    )
    redis_prefix = Unicode("sregistry:", config=True, help="Prefix of the registry's keys in Redis.")
    header_timeout = Float(
        10.0,
        config=True,
        help="Seconds a connection has to send a request's headers, from its opening or its previous response "
        "(so also how long an idle keep-alive connection stays open); 0: Tornado's hour.",
    )
    body_min_rate = Integer(
        64 << 10,
        config=True,
        help="Bytes a second a request body must keep arriving at, averaged over body_rate_window; slower "
        "requests get 408 and are closed, whatever their size; 0: no minimum.",
    )
    body_rate_window = Float(
        30.0, config=True, help="Seconds over which a request body's rate is averaged (see body_min_rate)."
    )
    max_connections_per_address = Integer(
        64,
        config=True,
        help="Connections one client address (an IPv6 /64) may keep open at once; more are answered 429 and "
        "closed. Behind a reverse proxy every connection comes from the proxy, so trusted_proxies (and "
        "limit_exempt_networks) are not capped: cap clients at the proxy. 0: no cap.",
    )

    @validate("limit_exempt_networks", "trusted_proxies")
    def _valid_networks(self, proposal: dict) -> list[str]:
        try:
            parse_networks(proposal["value"])
        except ValueError as error:
            raise TraitError(str(error)) from None
        return proposal["value"]

    @validate("header_timeout", "body_min_rate", "max_connections_per_address")
    def _not_negative(self, proposal: dict) -> float:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 (off) or more, not {proposal['value']}")
        return proposal["value"]

    @validate("body_rate_window")
    def _positive_window(self, proposal: dict) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"body_rate_window must be a positive number of seconds, not {proposal['value']}")
        return proposal["value"]

    @default("db_url")
    def _db_url_default(self) -> str:
        return os.environ.get(DB_URL_ENV) or f"sqlite:///{Path(self.data_dir).resolve() / 'registry.db'}"

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.INFO

    @default("log")
    def _log_default(self) -> logging.Logger:
        return logging.getLogger(logs.PACKAGE)

    def get_default_logging_config(self) -> dict:
        return logs.logging_config(self.log_level, self.log_format)

    @property
    def classes(self) -> list[type]:  # type: ignore[override]
        pluggable = [FilesystemBlobStore, *AUTHENTICATORS]
        for chosen in (self.blob_store_class, self.authenticator_class):
            if chosen not in pluggable:
                pluggable.append(chosen)
        # A command with options of its own lists them, so that its --help can describe them.
        own = [type(self)] if type(self) is not RegistryApp and type(self).class_own_traits(config=True) else []
        return [RegistryApp, *own, *pluggable]

    subcommands = {
        "serve": ("sregistry_jupyter.registry.app.ServeCommand", "Run the registry server."),
        "init": (
            "sregistry_jupyter.registry.app.InitCommand",
            "Create the registry (data folder, database, secret key), or upgrade its database, and exit.",
        ),
        "admin": ("sregistry_jupyter.registry.admin.AdminCommand", "Administer users, tokens and storage."),
        "push": ("sregistry_jupyter.client.cli.PushCommand", "Push a SIF file to a registry."),
        "pull": ("sregistry_jupyter.client.cli.PullCommand", "Pull an image from a registry."),
        "ls": ("sregistry_jupyter.client.cli.LsCommand", "List collections, containers or tags."),
        "search": ("sregistry_jupyter.client.cli.SearchCommand", "Search a registry's collections."),
        "share": ("sregistry_jupyter.client.cli.ShareCommand", "Share a collection or make a download link."),
        "login": ("sregistry_jupyter.client.cli.LoginCommand", "Save a registry's URL and token."),
    }

    @catch_config_error
    def initialize(self, argv: list[str] | None = None) -> None:
        self.parse_command_line(argv)
        if self.subapp is not None:
            return
        if self.config_file and (os.path.exists(self.config_file) or self.config_file != CONFIG_FILE):
            self.load_config_file(self.config_file)
            self.parse_command_line(argv)
        self._configure_logging()

    def fail(self, message: str, status: int = 1) -> NoReturn:
        """End the command with one line on standard error saying what is wrong and what to do."""
        print(message, file=sys.stderr, flush=True)
        self.exit(status)

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        if self.generate_config:
            self.write_config_file()
            return
        self.print_help()
        self.exit(1)

    def write_config_file(self) -> None:
        path = Path(self.config_file)
        if path.exists():
            print(f"{path} exists; not overwriting it", file=sys.stderr)
            self.exit(1)
        path.write_text(self.generate_config_file())
        print(f"wrote {path}")

    def secret_key(self, *, create: bool = True) -> bytes:
        """The key that signs URLs and derives tokens: from the environment, else a 0600 file kept in
        the data dir (created on first start)."""
        from_env = os.environ.get(SECRET_ENV)
        if from_env:
            return from_env.encode()
        path = Path(self.data_dir) / "secret_key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise RegistryUnavailable(
                    f"no secret key at {path.resolve()}: give the registry's --data-dir, "
                    f"or set {SECRET_ENV} as the server has it"
                ) from None
        key = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        self.log.info("created a secret key in %s", path.resolve())
        return key

    def shown_db_url(self) -> str:
        return make_url(db.normalise_url(self.db_url)).render_as_string(hide_password=True)

    def create_database(self) -> tuple[Engine, db.Upgrade]:
        """The database engine, after creating the schema or upgrading it (with a backup, for SQLite)."""
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        engine = db.make_engine(self.db_url)
        try:
            return engine, db.upgrade(engine)
        except db.SchemaError as error:
            engine.dispose()
            raise RegistryUnavailable(str(error)) from None
        except OperationalError as error:
            engine.dispose()
            raise self.unreachable(error) from None
        except BaseException:
            engine.dispose()
            raise

    def unreachable(self, error: OperationalError) -> RegistryUnavailable:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        return RegistryUnavailable(f"cannot use the database {self.shown_db_url()}: {reason}")

    def existing_database(self) -> Engine:
        """The engine of an existing registry's database at this version's schema; else RegistryUnavailable."""
        engine = db.make_engine(self.db_url)
        path = db.sqlite_file(engine)
        options = "--data-dir DIR (or --db-url URL)" if self.db_url == self._db_url_default() else "--db-url URL"
        if path is not None and not path.exists():
            engine.dispose()
            raise RegistryUnavailable(
                f"there is no registry at {Path(self.data_dir).resolve()} (no {path.name} there): "
                f"point at one with {options}, or create one with `sregistry-jupyter init`"
            )
        try:
            current, head = db.current_revision(engine), db.head_revision()
        except OperationalError as error:
            engine.dispose()
            raise self.unreachable(error) from None
        if current != head:
            engine.dispose()
            if current is None:
                raise RegistryUnavailable(
                    f"the database {self.shown_db_url()} holds no registry: point at one with {options}, "
                    f"or create one there with `sregistry-jupyter init`"
                )
            try:
                db.check_known(current)
            except db.SchemaError as error:
                raise RegistryUnavailable(str(error)) from None
            raise RegistryUnavailable(
                f"the registry's database is at schema {current} and this version needs {head}: upgrade it "
                f"with `sregistry-jupyter init` (or by starting the server) given the same options"
            )
        return engine

    def open_registry(self, *, create: bool = True) -> Registry:
        """Everything a command needs: the database (created or upgraded only if ``create``), storage, keys.

        Without ``create`` a registry must already exist where the options point, or RegistryUnavailable says so.
        """
        if create:
            store = self.make_store()  # first: an unusable bucket stops a start before anything is created
            engine, _ = self.create_database()
        else:
            store = None
            engine = self.existing_database()
        try:
            return self.registry_on(engine, self.secret_key(create=create), store)
        except BaseException:
            engine.dispose()
            raise

    def make_store(self) -> BlobStore:
        """The configured blob store, or RegistryUnavailable saying in one line why it cannot be used."""
        store_kwargs = {}
        if issubclass(self.blob_store_class, FilesystemBlobStore):
            configured = self.config.get("FilesystemBlobStore", {}).get("root")
            store_kwargs["root"] = configured or str(Path(self.data_dir).resolve() / "storage")
        try:
            return self.blob_store_class(parent=self, **store_kwargs)
        except StoreUnavailable as error:
            raise RegistryUnavailable(str(error)) from None

    def registry_on(self, engine: Engine, secret_key: bytes, store: BlobStore | None = None) -> Registry:
        store = store or self.make_store()
        policy = Policy(
            users_create_collections=self.users_create_collections,
            users_create_teams=self.users_create_teams,
            collection_limit=self.collection_limit,
            private_by_default=self.private_by_default,
            private_only=self.private_only,
        )
        return Registry(
            engine=engine,
            session_factory=db.make_session_factory(engine),
            store=store,
            secret_key=secret_key,
            name=self.registry_name,
            public_url=self.public_url.rstrip("/"),
            max_upload_size=self.max_upload_size,
            multipart_part_size=max(self.multipart_part_size, store.min_part_size),
            upload_limits=UploadLimits(self.max_open_uploads, self.max_open_upload_bytes),
            max_json_body=self.max_json_body,
            default_page_size=self.default_page_size,
            max_page_size=self.max_page_size,
            policy=policy,
            library_redirect=self.library_redirect,
            invitation_days=self.invitation_days,
            max_share_days=self.max_share_days,
            terms_of_service=self.terms_of_service,
            authenticator=self.authenticator_class(parent=self),
            limiter=self.make_limiter(),
            trusted_proxies=TrustedProxies.from_config(self.trusted_proxies),
            allowed_hosts=frozenset([*LOCAL_HOSTS, *(h.lower().strip("[]") for h in self.allowed_hosts)]),
            connection_limits=self.make_connection_limits(),
        )

    def make_connection_limits(self) -> ConnectionLimits:
        """The connection defences; trusted proxies are not capped, since every client behind them shares
        their address (the proxy caps its clients itself)."""
        return ConnectionLimits(
            header_timeout=self.header_timeout,
            body_min_rate=self.body_min_rate,
            body_rate_window=self.body_rate_window,
            max_connections_per_address=self.max_connections_per_address,
            exempt_networks=parse_networks([*self.trusted_proxies, *self.limit_exempt_networks]),
        )

    def make_limiter(self) -> Limiter:
        limits = Limits(
            rate_limit=self.rate_limit,
            anonymous_rate_limit=self.anonymous_rate_limit,
            weekly_pull_limit_collection=self.weekly_pull_limit_collection,
            weekly_pull_limit_container=self.weekly_pull_limit_container,
            exempt_users=frozenset(self.limit_exempt_users),
            exempt_networks=parse_networks(self.limit_exempt_networks),
        )
        return Limiter(limits, self.redis_url, self.redis_prefix)


class InitCommand(RegistryApp):
    """Create a registry where the options point, or bring its database up to this version's schema."""

    description = __doc__
    subcommands = {}

    def start(self) -> None:
        if self.generate_config:
            self.write_config_file()
            return
        try:
            store = self.make_store()  # creates the storage folders (or checks the bucket), as a start would
            engine, upgrade = self.create_database()
        except RegistryUnavailable as error:
            self.fail(str(error))
        try:
            self.registry_on(engine, self.secret_key(), store)
        finally:
            engine.dispose()
        where = f"at {Path(self.data_dir).resolve()}" if db.sqlite_file(engine) else f"in {self.shown_db_url()}"
        if upgrade.before is None:
            print(f"created a registry {where} (schema {upgrade.after}); run it with `sregistry-jupyter serve`")
        elif upgrade.changed:
            kept = f"; the old database is kept at {upgrade.backup}" if upgrade.backup else ""
            print(f"upgraded the registry {where} from schema {upgrade.before} to {upgrade.after}{kept}")
        else:
            print(f"the registry {where} is up to date (schema {upgrade.after})")


def freeze_heap() -> None:
    """Keep what start-up built (modules, mappers, compiled statements, pools: most of the heap) out of the
    cyclic garbage collector's sight for good. Requests allocate quickly and a full collection walks every
    object it tracks: before this, full collections took a third of a busy server's time (eight milliseconds
    per search answer), walking objects that live as long as the process."""
    gc.collect()
    gc.freeze()


class ServeCommand(RegistryApp):
    """Run the registry server."""

    description = "Run the registry server."
    aliases = {**common_aliases, "ip": "RegistryApp.ip", "port": "RegistryApp.port"}
    subcommands = {}

    def start(self) -> None:
        if self.generate_config:
            self.write_config_file()
            return
        asyncio.run(self.serve())

    def listen(self) -> list:
        """The listening sockets, bound before anything else so that a busy port fails at once, in one line."""
        shown = f"[{self.ip}]" if ":" in self.ip else self.ip
        try:
            return bind_sockets(self.port, self.ip, reuse_port=self.reuse_port)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                self.fail(
                    f"cannot listen on {shown}:{self.port}: the address is already in use "
                    f"(by another registry or program); choose another port with --port"
                )
            self.fail(f"cannot listen on {shown}:{self.port}: {error.strerror}; choose another --ip or --port")

    async def serve(self) -> None:
        sockets = self.listen()
        try:
            registry = self.open_registry()
        except RegistryUnavailable as error:
            self.fail(str(error))
        server = make_server(make_app(registry), registry)
        server.add_sockets(sockets)
        await registry.start()  # the write-behind bookkeeping: counters, token use, pulls
        host, port = sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        proxies = ", ".join(self.trusted_proxies) or "none"
        self.log.info(
            "started sregistry-jupyter %s on http://%s:%d/ (database %s, %s, trusted proxies: %s)",
            __version__,
            shown,
            port,
            self.shown_db_url(),
            type(registry.store).__name__,
            proxies,
        )
        freeze_heap()
        print(f"{self.registry_name} is running at http://{shown}:{port}/", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        self.log.info("shutting down: no new connections; waiting for %d requests", registry.in_flight.count)
        server.stop()
        deadline = loop.time() + self.shutdown_timeout
        while registry.in_flight.count > 0 and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await server.close_all_connections()
        await registry.stop()  # writes what is pending, then releases the database
        self.log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    RegistryApp.launch_instance(argv)
