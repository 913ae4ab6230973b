"""Sign-in: pluggable authenticators (``RegistryApp.authenticator_class``) and browser sessions."""

from .base import Authenticator

__all__ = ["Authenticator"]
