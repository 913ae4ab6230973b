"""JSON shapes of the native API (documented in ``openapi.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..access import TeamRole
from ..orm import ApiToken, Container, Image, Invitation, Share, Tag, Team, User
from ..services.collections import CollectionSummary
from ..services.members import Member
from ..services.teams import Membership


def when(value: dt.datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "admin": user.is_admin,
        "staff": user.is_staff,
        "robot": user.is_robot,
        "created": when(user.created_at),
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created": when(token.created_at),
        "expires": when(token.expires_at),
        "last_used": when(token.last_used_at),
        "revoked": when(token.revoked_at),
    }


def collection_json(summary: CollectionSummary) -> dict[str, Any]:
    c = summary.collection
    return {
        "name": c.name,
        "description": c.description,
        "private": c.private,
        "owners": summary.owners,
        "containers": summary.containers,
        "images": summary.images,
        "size": summary.size,
        "stars": summary.stars,
        "created": when(c.created_at),
        "updated": when(c.updated_at),
    }


def tag_json(tag: Tag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "arch": tag.arch,
        "digest": tag.image.digest,
        "frozen": tag.frozen,
        "updated": when(tag.updated_at),
    }


def image_json(image: Image) -> dict[str, Any]:
    container = image.container
    sif = image.sif or {}
    return {
        "collection": container.collection.name,
        "container": container.name,
        "digest": image.digest,
        "size": image.size,
        "arch": image.arch,
        "description": image.description,
        "tags": sorted(t.name for t in image.tags),
        "signed": image.signed,
        "downloads": image.downloads,
        "uploaded": when(image.uploaded_at),
        "sif": {
            "partitions": sif.get("partitions", []),
            "deffile": sif.get("deffile"),
            "labels": sif.get("labels"),
        }
        if image.sif
        else None,
    }


def tags_json(container: Container) -> list[dict[str, Any]]:
    """A container's tags, by name and then architecture."""
    return [tag_json(t) for t in sorted(container.tags, key=lambda t: (t.name, t.arch))]


def container_json(container: Container, images: list[Image] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collection": container.collection.name,
        "name": container.name,
        "description": container.description,
        "tags": tags_json(container),
        "created": when(container.created_at),
        "updated": when(container.updated_at),
    }
    if images is not None:
        body["images"] = [image_json(i) for i in images]
    return body


def team_json(team: Team, members: list[Membership], your_role: TeamRole | None) -> dict[str, Any]:
    return {
        "name": team.name,
        "description": team.description,
        "open": team.open,
        "owners": [m.user.name for m in members if m.role is TeamRole.OWNER],
        "members": [member_json(m) for m in members],
        "your_role": your_role.value if your_role else None,
        "created": when(team.created_at),
    }


def invitation_json(invitation: Invitation, team_name: str) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "team": team_name,
        "created": when(invitation.created_at),
        "expires": when(invitation.expires_at),
    }


def member_json(member: Member | Membership) -> dict[str, Any]:
    """A user's role in a collection or a team."""
    return {"user": member.user.name, "role": member.role.value}


def share_json(share: Share, image: Image, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": share.id,
        "collection": image.container.collection.name,
        "container": image.container.name,
        "digest": image.digest,
        "created": when(share.created_at),
        "expires": when(share.expires_at),
        "expired": share.expires_at <= now,
        "downloads": share.downloads,
    }
