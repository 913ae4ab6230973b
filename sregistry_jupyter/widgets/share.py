"""``ShareWidget``: give a team-mate a role in a collection, or make an expiring download link."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import traitlets

from .background import Background, default_client, message_html


class ShareWidget(w.VBox):
    """``member`` is the last role granted, ``link`` the last link made."""

    member = traitlets.Any(None)
    link = traitlets.Any(None)

    def __init__(self, client: Any = None, *, ref: str = "", **kwargs: Any) -> None:
        self.client = default_client(client)
        self.collection = w.Dropdown(options=[], description="Collection", layout=w.Layout(width="360px"))
        self.teammate = w.Dropdown(options=[], description="Team-mate", layout=w.Layout(width="360px"))
        self.role = w.ToggleButtons(
            options=[("Contributor (see, pull)", "contributor"), ("Owner (push, manage)", "owner")],
            value="contributor",
            style={"button_width": "auto"},
        )
        self.share_button = w.Button(description="Share", icon="user-plus", button_style="primary")
        self.members = w.HTML()
        self.ref = w.Text(
            value=ref, description="Image", placeholder="collection/container:tag", layout=w.Layout(width="360px")
        )
        self.days = w.BoundedIntText(value=7, min=1, max=365, description="Days", layout=w.Layout(width="160px"))
        self.link_button = w.Button(description="Make link", icon="link")
        self.link_html = w.HTML()
        self.status = w.HTML()
        self.background = Background(self.status)
        super().__init__(
            [
                w.HTML("<b>Share a collection with a team-mate</b>"),
                self.collection,
                self.teammate,
                self.role,
                self.share_button,
                self.members,
                w.HTML("<b>Share an image by link</b>"),
                w.HBox([self.ref, self.days]),
                self.link_button,
                self.link_html,
                self.status,
            ],
            **kwargs,
        )
        self.share_button.on_click(lambda _: self.share())
        self.link_button.on_click(lambda _: self.make_link())
        self.collection.observe(lambda change: self.show_members(change["new"]), names="value")
        self.background.run(lambda: (self.client.pushable(), self.client.teammates()), self._loaded, "Loading…")

    def _loaded(self, loaded: tuple[list[Any], list[str]]) -> None:
        collections, mates = loaded
        self.teammate.options = mates
        self.collection.options = [c.name for c in collections]
        if collections and self.collection.value is None:
            self.collection.value = collections[0].name
        if mates and self.teammate.value is None:
            self.teammate.value = mates[0]
        if not mates:
            self.status.value = message_html(
                "you share no team with anyone yet: join a team in the registry to share collections", "info"
            )

    def show_members(self, collection: str | None) -> None:
        if collection:
            self.background.run(lambda: self.client.members(collection), self._members_loaded)

    def _members_loaded(self, members: list[Any]) -> None:
        listed = ", ".join(f"{html.escape(m.user)} ({m.role})" for m in members)
        self.members.value = f"Members: {listed}"

    def share(self) -> None:
        collection, user, role = self.collection.value, self.teammate.value, self.role.value
        if not collection or not user:
            self.status.value = message_html("choose a collection and a team-mate", "error")
            return

        def done(member: Any) -> None:
            self.member = member
            self.status.value = message_html(f"{member.user} is now {member.role} of {collection}", "ok")
            self.show_members(collection)

        self.background.run(lambda: self.client.add_member(collection, user, role), done, f"Sharing with {user}…")

    def make_link(self) -> None:
        ref, days = self.ref.value.strip(), self.days.value

        def done(link: Any) -> None:
            self.link = link
            until = link.expires.strftime("%Y-%m-%d %H:%M UTC")
            self.link_html.value = (
                f'<a href="{html.escape(link.url)}" target="_blank">{html.escape(link.url)}</a>'
                f"<div>valid until {until}; anyone with the link can download the image</div>"
            )

        self.background.run(lambda: self.client.share_link(ref, days=days), done, "Making a link…")
