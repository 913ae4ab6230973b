"""A collection's settings, for those who may change it: description and privacy, owners and
contributors, the badge, frozen tags and share links, and the danger zone.

The member picker offers the people who share one of the viewer's teams, but the form also takes any
name: whether a role may be given is ``access.may_grant_role``'s decision, and its refusal (someone in
none of your teams) is shown on the page as it is said on every other surface.
"""

from __future__ import annotations

from ...access import Role
from ...errors import InvalidInput, RegistryError
from ...names import row_id
from ...services import browse, collections, members, shares
from .base import PageHandler

TABS = {
    "general": "General",
    "owners": "Owners",
    "contributors": "Contributors",
    "badge": "Badge",
    "sharing": "Frozen tags and share links",
    "danger": "Danger zone",
}
ROLE_TABS = {"owners": Role.OWNER, "contributors": Role.CONTRIBUTOR}


class SettingsHandler(PageHandler):
    async def get(self, name: str) -> None:
        self.require_person()
        await self.show(name, self.get_query_argument("tab", "general"))

    async def show(
        self, name: str, tab: str, *, message: str | None = None, error: str | None = None, status: int = 200
    ) -> None:
        if tab not in TABS:
            tab = "general"
        view = await self.read_db(browse.settings_view, self.principal, name)
        base = self.base_url()
        badge = f"{base}/collections/{name}/-/badge.svg"
        page = f"{base}/collections/{name}"
        self.set_status(status)
        self.render(
            "settings.html",
            view=view,
            collection=view.summary.collection,
            tab=tab,
            tabs=TABS,
            role_tabs=ROLE_TABS,
            message=message,
            error=error,
            badge_url=badge,
            badge_markdown=f"[![{name}]({badge})]({page})",
            badge_html=f'<a href="{page}"><img src="{badge}" alt="{name}"></a>',
            private_only=self.principal.policy.private_only,
        )

    async def submit(self, form: dict[str, str], name: str) -> None:
        self.require_person()
        op, tab = form.get("op", ""), form.get("tab", "general")
        principal = self.principal
        try:
            if op == "update":
                private = form.get("private") == "1"
                await self.write_db(
                    collections.update_collection,
                    principal,
                    name,
                    description=form.get("description", "").replace("\r\n", "\n"),
                    private=private if private != (form.get("was_private") == "1") else None,
                )
                message = "Saved."
            elif op == "add-member":
                user = form.get("user", "").strip().lower()
                role = members.role_value(form.get("role", ""))
                await self.write_db(members.add_member, principal, name, user, role)
                message = f"{user} is now {'an owner' if role is Role.OWNER else 'a contributor'}."
            elif op == "set-role":
                user, role = form.get("user", ""), members.role_value(form.get("role", ""))
                await self.write_db(members.set_role, principal, name, user, role)
                message = f"{user} is now {'an owner' if role is Role.OWNER else 'a contributor'}."
            elif op == "remove-member":
                user = form.get("user", "")
                await self.write_db(members.remove_member, principal, name, user)
                message = f"{user} no longer has a role in {name}."
            elif op == "revoke-share":
                await self.write_db(
                    shares.revoke_share,
                    principal,
                    name,
                    form.get("container", ""),
                    form.get("digest", ""),
                    row_id(form.get("share", ""), "share link"),
                )
                message = "The share link no longer works."
            elif op == "delete":
                if form.get("confirm", "").strip() != name:
                    raise InvalidInput(f"type the collection's name, {name}, to delete it")
                await self.write_db(collections.delete_collection, principal, name)
                self.redirect(f"/users/{principal.user.name}?deleted={name}", status=303)
                return
            else:
                raise InvalidInput(f"unknown action {op!r}")
        except RegistryError as refused:
            await self.show(name, tab, error=refused.message, status=refused.status)
            return
        await self.show(name, tab, message=message)


def routes() -> list[tuple[str, type]]:
    return [(r"/collections/([a-z0-9][^/]*)/-/settings", SettingsHandler)]
