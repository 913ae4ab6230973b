"""Notebook widgets over the registry: browse, push, share and plot, built from ipywidgets and plotly.

They are made of ipywidgets' own controls and plotly figures only, so they work in JupyterLab and
Notebook 7 with nothing to enable. Each takes a ``RegistryClient`` or makes one from the environment.
"""

from .browser import CollectionBrowser
from .plots import RegistryPlots
from .push import PushWidget
from .share import ShareWidget

__all__ = ["CollectionBrowser", "PushWidget", "RegistryPlots", "ShareWidget"]
