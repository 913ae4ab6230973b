"""The native API's answers built from database rows, as the shared models (``sregistry_jupyter.models``).

The rows come from the registry's own database, so the models are built with ``model_construct``: nothing
is validated again, and rendering costs about what writing the dictionaries by hand did (``bench/
serialize.py`` measures it).
"""

from __future__ import annotations

import datetime as dt

from ... import models
from ...models import when
from ..access import TeamRole
from ..orm import ApiToken, Container, Image, Invitation, Share, Tag, Team, User
from ..services.collections import CollectionSummary, ContainerView
from ..services.members import Member
from ..services.teams import Membership

__all__ = ["when"]


def user_model(user: User) -> models.User:
    return models.User.model_construct(
        name=user.name, admin=user.is_admin, staff=user.is_staff, robot=user.is_robot, created=user.created_at
    )


def token_fields(token: ApiToken) -> dict:
    return {
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created": token.created_at,
        "expires": token.expires_at,
        "last_used": token.last_used_at,
        "revoked": token.revoked_at,
    }


def token_model(token: ApiToken) -> models.Token:
    return models.Token.model_construct(**token_fields(token))


def new_token_model(token: ApiToken, secret: str) -> models.NewToken:
    return models.NewToken.model_construct(**token_fields(token), token=secret)


def collection_fields(summary: CollectionSummary) -> dict:
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
        "created": c.created_at,
        "updated": c.updated_at,
    }


def collection_model(summary: CollectionSummary) -> models.Collection:
    return models.Collection.model_construct(**collection_fields(summary))


def collection_detail_model(summary: CollectionSummary, containers: list[Container]) -> models.CollectionDetail:
    return models.CollectionDetail.model_construct(
        **collection_fields(summary), containers_list=[container_model(c) for c in containers]
    )


def tag_model(tag: Tag) -> models.Tag:
    return models.Tag.model_construct(
        name=tag.name, arch=tag.arch, digest=tag.image.digest, frozen=tag.frozen, updated=tag.updated_at
    )


def sif_model(sif: dict | None) -> models.SifMetadata | None:
    if not sif:
        return None
    return models.SifMetadata.model_construct(
        partitions=[models.SifPartition.model_construct(**p) for p in sif.get("partitions", [])],
        deffile=sif.get("deffile"),
        labels=sif.get("labels"),
    )


def image_model(image: Image) -> models.Image:
    container = image.container
    return models.Image.model_construct(
        collection=container.collection.name,
        container=container.name,
        digest=image.digest,
        size=image.size,
        arch=image.arch,
        description=image.description,
        tags=sorted(t.name for t in image.tags),
        signed=image.signed,
        downloads=image.downloads,
        uploaded=image.uploaded_at,
        sif=sif_model(image.sif),
    )


def tag_models(container: Container) -> list[models.Tag]:
    """A container's tags, by name and then architecture."""
    return [tag_model(t) for t in sorted(container.tags, key=lambda t: (t.name, t.arch))]


def container_fields(container: Container) -> dict:
    return {
        "collection": container.collection.name,
        "name": container.name,
        "description": container.description,
        "tags": tag_models(container),
        "created": container.created_at,
        "updated": container.updated_at,
    }


def container_model(container: Container) -> models.Container:
    return models.Container.model_construct(**container_fields(container))


def sif_fields(sif: dict | None) -> dict | None:
    """What an answer shows of an image's stored SIF metadata."""
    if not sif:
        return None
    return {"partitions": sif.get("partitions", []), "deffile": sif.get("deffile"), "labels": sif.get("labels")}


def container_view_model(view: ContainerView) -> models.ContainerDetail:
    """A container with its tags and images, from the column-only rows of ``view_container``.

    Built as plain values and validated by the model in one call: pydantic's compiled validator makes the
    nested answer several times faster than constructing each object in Python, and it checks the answer
    against the schema the API document publishes."""
    c = view.container
    tags_of: dict[int, list[str]] = {}
    for tag in view.tags:
        tags_of.setdefault(tag.image_id, []).append(tag.name)
    return models.ContainerDetail.model_validate(
        {
            "collection": view.collection,
            "name": c.container_name,
            "description": c.description,
            "tags": [
                {"name": t.name, "arch": t.arch, "digest": t.digest, "frozen": t.frozen, "updated": t.updated_at}
                for t in view.tags
            ],
            "created": c.created_at,
            "updated": c.updated_at,
            "images": [
                {
                    "collection": view.collection,
                    "container": c.container_name,
                    "digest": i.digest,
                    "size": i.size,
                    "arch": i.arch,
                    "description": i.description,
                    "tags": sorted(tags_of.get(i.id, ())),
                    "signed": i.signed,
                    "downloads": i.downloads,
                    "uploaded": i.uploaded_at,
                    "sif": sif_fields(i.sif),
                }
                for i in view.images
            ],
        }
    )


def team_member_model(member: Membership) -> models.TeamMember:
    """A user's role in a team."""
    return models.TeamMember.model_construct(user=member.user.name, role=member.role.value)


def collection_member_model(member: Member) -> models.CollectionMember:
    """A user's role in a collection."""
    return models.CollectionMember.model_construct(user=member.user.name, role=member.role.value)


def team_model(team: Team, members: list[Membership], your_role: TeamRole | None) -> models.Team:
    return models.Team.model_construct(
        name=team.name,
        description=team.description,
        open=team.open,
        owners=[m.user.name for m in members if m.role is TeamRole.OWNER],
        members=[team_member_model(m) for m in members],
        your_role=your_role.value if your_role else None,
        created=team.created_at,
    )


def invitation_fields(invitation: Invitation, team_name: str) -> dict:
    return {"id": invitation.id, "team": team_name, "created": invitation.created_at, "expires": invitation.expires_at}


def invitation_model(invitation: Invitation, team_name: str) -> models.Invitation:
    return models.Invitation.model_construct(**invitation_fields(invitation, team_name))


def share_fields(share: Share, image: Image, now: dt.datetime) -> dict:
    return {
        "id": share.id,
        "collection": image.container.collection.name,
        "container": image.container.name,
        "digest": image.digest,
        "created": share.created_at,
        "expires": share.expires_at,
        "expired": share.expires_at <= now,
        "downloads": share.downloads,
    }


def share_model(share: Share, image: Image, now: dt.datetime) -> models.Share:
    return models.Share.model_construct(**share_fields(share, image, now))
