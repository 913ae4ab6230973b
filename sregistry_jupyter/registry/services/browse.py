"""What the web pages show, read in a few queries each so that a page stays fast with a large registry.

Every function here starts from what the viewer may see (``get_visible``, ``visible_collections``), so a
page can only show what the native API would answer the same person. Lists are one page at a time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, and_, cast, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..access import Action, Principal, Role, TeamAction, can, can_team, decide, role_of, visible_collections
from ..errors import NotFound
from ..names import validate_username
from ..orm import Collection, CollectionMember, Container, Image, Share, Star, Tag, Team, TeamMember, User
from . import collections, members
from .collections import CollectionSummary

# A container page lists this many tags, the most recently moved first (the API lists them all).
MAX_TAGS = 200


@dataclass(frozen=True)
class Page:
    """Where a list is: page ``number`` of ``pages``, ``size`` rows each, ``total`` in all."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass
class TagView:
    name: str
    arch: str
    frozen: bool
    digest: str


@dataclass
class ContainerRow:
    container: Container
    images: int
    size: int
    pulls: int
    tags: list[TagView] = field(default_factory=list)

    @property
    def archs(self) -> list[str]:
        return sorted({tag.arch for tag in self.tags})


@dataclass
class Abilities:
    """What the viewer may do in a collection, as ``access`` decides it (the page only shows the buttons)."""

    push: bool
    star: bool
    update: bool
    delete: bool
    freeze: bool
    share: bool
    tag: bool
    manage_members: bool
    change_privacy: bool
    starred: bool


@dataclass
class CollectionView:
    summary: CollectionSummary
    containers: list[ContainerRow]
    page: Page
    can: Abilities
    pulls: int


@dataclass
class ContainerView:
    collection: Collection
    container: Container
    tags: list[Tag]
    tag_total: int
    images: list[Image]
    page: Page
    can: Abilities
    owners: list[str]


@dataclass
class RecentPush:
    collection: str
    container: str
    digest: str
    size: int
    tags: list[str]
    at: object


def abilities(session: Session, principal: Principal, collection: Collection) -> Abilities:
    """What ``access.decide`` allows the viewer in ``collection``, with one look-up of their role."""
    user = principal.user
    role = role_of(session, user, collection)

    def may(action: Action) -> bool:
        return decide(principal, action, collection, role)

    starred = user is not None and session.scalar(
        select(Star.id).where(Star.user_id == user.id, Star.collection_id == collection.id)
    )
    return Abilities(
        push=may(Action.PUSH),
        star=may(Action.STAR),
        update=may(Action.UPDATE),
        delete=may(Action.DELETE_COLLECTION),
        freeze=may(Action.FREEZE),
        share=may(Action.SHARE),
        tag=may(Action.TAG),
        manage_members=may(Action.MANAGE_MEMBERS),
        change_privacy=may(Action.CHANGE_PRIVACY),
        starred=bool(starred),
    )


def starred_ids(session: Session, principal: Principal, ids: list[int]) -> set[int]:
    """Which of the collections ``ids`` the viewer has starred."""
    user = principal.user
    if user is None or not ids:
        return set()
    return set(session.scalars(select(Star.collection_id).where(Star.user_id == user.id, Star.collection_id.in_(ids))))


def collection_list(
    session: Session, principal: Principal, query: str | None, sort: str, page: int, per_page: int
) -> tuple[list[CollectionSummary], Page, set[int], bool]:
    """A page of the collections list, which of them the viewer starred, and whether they may create one."""
    items, total = collections.list_collections(
        session, principal, query=query, sort=sort, offset=(page - 1) * per_page, limit=per_page
    )
    starred = starred_ids(session, principal, [item.collection.id for item in items])
    creates = principal.user is not None and can(session, principal, Action.CREATE_COLLECTION)
    return items, Page(page, per_page, total), starred, creates


def recent_pushes(session: Session, principal: Principal, limit: int = 8) -> list[RecentPush]:
    """The latest images pushed into collections the viewer may see, newest first."""
    rows = session.execute(
        select(Image, Container.name, Collection.name)
        .join(Container, Image.container_id == Container.id)
        .join(Collection, Container.collection_id == Collection.id)
        .where(Image.uploaded.is_(True), visible_collections(principal))
        .order_by(Image.id.desc())
        .limit(limit)
    ).all()
    names = tag_names(session, [image.id for image, _, _ in rows])
    return [
        RecentPush(collection, container, image.digest, image.size, names[image.id], image.uploaded_at)
        for image, container, collection in rows
    ]


def tag_names(session: Session, image_ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    if image_ids:
        for image_id, name in session.execute(
            select(Tag.image_id, Tag.name).where(Tag.image_id.in_(image_ids)).order_by(Tag.name)
        ):
            names[image_id].append(name)
    return names


def collection_view(session: Session, principal: Principal, name: str, page: int, per_page: int) -> CollectionView:
    """A collection, one page of its containers (with their figures and tags) and what the viewer may do."""
    collection = collections.get_visible(session, principal, name)
    total = session.scalar(select(func.count(Container.id)).where(Container.collection_id == collection.id)) or 0
    where = Page(page, per_page, total)
    uploaded = and_(Image.container_id == Container.id, Image.uploaded.is_(True))
    rows = session.execute(
        select(
            Container,
            func.count(Image.id),
            cast(func.coalesce(func.sum(Image.size), 0), BigInteger),
            cast(func.coalesce(func.sum(Image.downloads), 0), BigInteger),
        )
        .outerjoin(Image, uploaded)
        .where(Container.collection_id == collection.id)
        .group_by(Container.id)
        .order_by(Container.name)
        .offset(where.offset)
        .limit(per_page)
    ).all()
    containers = [ContainerRow(c, n, size, pulls) for c, n, size, pulls in rows]
    by_id = {row.container.id: row for row in containers}
    if by_id:
        tags = session.execute(
            select(Tag.container_id, Tag.name, Tag.arch, Tag.frozen, Image.digest)
            .join(Image, Tag.image_id == Image.id)
            .where(Tag.container_id.in_(by_id))
            .order_by(Tag.name, Tag.arch)
        )
        for container_id, tag, arch, frozen, digest in tags:
            by_id[container_id].tags.append(TagView(tag, arch, frozen, digest))
    pulls = session.scalar(
        select(cast(func.coalesce(func.sum(Image.downloads), 0), BigInteger))
        .join(Container)
        .where(Container.collection_id == collection.id)
    )
    return CollectionView(
        collections.summarise(session, collection),
        containers,
        where,
        abilities(session, principal, collection),
        pulls or 0,
    )


def container_view(
    session: Session, principal: Principal, collection_name: str, name: str, page: int, per_page: int
) -> ContainerView:
    """A container, all its tags, one page of its images (newest first) and what the viewer may do."""
    collection = collections.get_visible(session, principal, collection_name)
    container = collections.get_container(session, collection, name)
    total = (
        session.scalar(select(func.count(Image.id)).where(Image.container_id == container.id, Image.uploaded.is_(True)))
        or 0
    )
    where = Page(page, per_page, total)
    images = list(
        session.scalars(
            select(Image)
            .where(Image.container_id == container.id, Image.uploaded.is_(True))
            .options(selectinload(Image.tags))
            .order_by(Image.uploaded_at.desc(), Image.id.desc())
            .offset(where.offset)
            .limit(per_page)
        )
    )
    tags = list(
        session.scalars(
            select(Tag)
            .where(Tag.container_id == container.id)
            .options(joinedload(Tag.image))
            .order_by(Tag.updated_at.desc(), Tag.name)
            .limit(MAX_TAGS)
        )
    )
    tag_total = session.scalar(select(func.count(Tag.id)).where(Tag.container_id == container.id)) or 0
    owners = collections.names_with_role(session, [collection.id])[collection.id]
    return ContainerView(
        collection, container, tags, tag_total, images, where, abilities(session, principal, collection), owners
    )


@dataclass
class Candidate:
    name: str
    teams: list[str]


@dataclass
class Inventory:
    """What deleting a collection deletes."""

    containers: int
    images: int
    size: int
    tags: int
    shares: int
    members: int
    stars: int


@dataclass
class SettingsView:
    summary: CollectionSummary
    members: list[members.Member]
    candidates: list[Candidate]
    frozen: list[tuple[str, str, str]]
    shares: list[tuple[Share, str, str]]
    inventory: Inventory
    can: Abilities


def candidates(session: Session, principal: Principal, collection: Collection) -> list[Candidate]:
    """The people the viewer may give a role in ``collection``: those sharing one of the viewer's teams who
    have no role there yet (``access.may_grant_role`` is what decides; this only fills the picker)."""
    user = principal.user
    if user is None:
        return []
    mine = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    holders = select(CollectionMember.user_id).where(CollectionMember.collection_id == collection.id)
    rows = session.execute(
        select(User.name, Team.name)
        .join(TeamMember, TeamMember.user_id == User.id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.team_id.in_(mine), User.id.not_in(holders), User.disabled_at.is_(None))
        .order_by(User.name, Team.name)
    )
    found: dict[str, list[str]] = {}
    for name, team in rows:
        found.setdefault(name, []).append(team)
    return [Candidate(name, teams) for name, teams in found.items()]


def settings_view(session: Session, principal: Principal, name: str) -> SettingsView:
    """Everything the settings page shows; only those who may change the collection get it."""
    collection = collections.get_visible(session, principal, name, Action.UPDATE)
    in_collection = select(Container.id).where(Container.collection_id == collection.id)
    frozen = session.execute(
        select(Container.name, Tag.name, Tag.arch)
        .join(Container, Tag.container_id == Container.id)
        .where(Container.collection_id == collection.id, Tag.frozen.is_(True))
        .order_by(Container.name, Tag.name)
    ).all()
    shares = session.execute(
        select(Share, Container.name, Image.digest)
        .join(Image, Share.image_id == Image.id)
        .join(Container, Image.container_id == Container.id)
        .where(Container.collection_id == collection.id)
        .order_by(Share.expires_at.desc())
    ).all()
    summary = collections.summarise(session, collection)
    people = members.members_of(session, collection)
    inventory = Inventory(
        containers=summary.containers,
        images=summary.images,
        size=summary.size,
        tags=session.scalar(select(func.count(Tag.id)).where(Tag.container_id.in_(in_collection))) or 0,
        shares=len(shares),
        members=len(people),
        stars=summary.stars,
    )
    return SettingsView(
        summary,
        people,
        candidates(session, principal, collection),
        [tuple(row) for row in frozen],
        [tuple(row) for row in shares],
        inventory,
        abilities(session, principal, collection),
    )


@dataclass
class ProfileView:
    user: User
    owned: list[CollectionSummary]
    owned_page: Page
    contributing: list[CollectionSummary]
    contributing_total: int
    starred: list[CollectionSummary]
    starred_total: int
    teams: list[tuple[Team, str]]
    is_self: bool


def role_page(
    session: Session, principal: Principal, user: User, owner: bool, page: Page
) -> tuple[list[CollectionSummary], int]:
    """One page of the collections the viewer may see in which ``user`` is (or is not) an owner, by name."""
    role = CollectionMember.role == Role.OWNER.value if owner else CollectionMember.role != Role.OWNER.value
    where = (CollectionMember.user_id == user.id, role, visible_collections(principal))
    joined = select(Collection.id).join(CollectionMember, CollectionMember.collection_id == Collection.id)
    total = session.scalar(select(func.count()).select_from(joined.where(*where).subquery())) or 0
    ids = list(session.scalars(joined.where(*where).order_by(Collection.name).offset(page.offset).limit(page.size)))
    return summaries_of(session, ids), total


def profile_view(session: Session, principal: Principal, name: str, page: int, per_page: int) -> ProfileView:
    """A person's page: their collections and stars that the viewer may see (a page of each), and their teams
    (for people who may see teams). Nothing private to them is shown to anyone else."""
    user = session.scalar(select(User).where(User.name == validate_username(name)))
    if user is None or user.disabled_at is not None:
        raise NotFound(f"no user {name!r}")
    owned, owned_total = role_page(session, principal, user, True, Page(page, per_page, 0))
    contributing, contributing_total = role_page(session, principal, user, False, Page(1, per_page, 0))
    starred_where = (Star.user_id == user.id, visible_collections(principal))
    starred_total = (
        session.scalar(
            select(func.count(Star.id)).join(Collection, Star.collection_id == Collection.id).where(*starred_where)
        )
        or 0
    )
    star_ids = list(
        session.scalars(
            select(Collection.id)
            .join(Star, Star.collection_id == Collection.id)
            .where(*starred_where)
            .order_by(Star.created_at.desc())
            .limit(per_page)
        )
    )
    starred = {s.collection.id: s for s in summaries_of(session, star_ids)}
    teams: list[tuple[Team, str]] = []
    if principal.user is not None:
        for team, role in session.execute(
            select(Team, TeamMember.role).join(TeamMember).where(TeamMember.user_id == user.id).order_by(Team.name)
        ):
            if can_team(session, principal, TeamAction.SEE, team):
                teams.append((team, role))
    is_self = principal.user is not None and principal.user.id == user.id
    return ProfileView(
        user,
        owned,
        Page(page, per_page, owned_total),
        contributing,
        contributing_total,
        [starred[i] for i in star_ids],
        starred_total,
        teams,
        is_self,
    )


def summaries_of(session: Session, ids: list[int]) -> list[CollectionSummary]:
    if not ids:
        return []
    return collections.summaries_where(session, Collection.id.in_(ids))


def badge_collection(session: Session, principal: Principal, name: str) -> CollectionSummary:
    return collections.summarise(session, collections.get_visible(session, principal, name))
