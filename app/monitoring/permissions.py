"""Monitoring permissions: what the directory grants a user, or their roles' defaults."""

import functools

from app.models.enums import MonitoringMode, MonitoringPermission, Role
from app.records import remembered_per_record

Permission = MonitoringPermission

# A user without `permissions` in the directory has those of their roles.
ROLE_DEFAULTS: dict[Role, frozenset[Permission]] = {
    Role.SUPERVISOR: frozenset({Permission.MONITOR, Permission.COACH, Permission.BARGE}),
    Role.ADMIN: frozenset(Permission),
}

# The permission each mode needs.
MODE_PERMISSION = {
    MonitoringMode.MONITOR: Permission.MONITOR,
    MonitoringMode.COACH: Permission.COACH,
    MonitoringMode.BARGE: Permission.BARGE,
}


@remembered_per_record
def permissions_of(user) -> frozenset[Permission]:
    """A users row's monitoring permissions: its own, or else the union of its roles'."""
    own = user.permissions
    return _permissions(tuple(own) if own is not None else None, tuple(user.roles))


# The monitoring rules ask for every agent of a queue's activity: decided once per value.
@functools.lru_cache(maxsize=256)
def _permissions(own: tuple[str, ...] | None, roles: tuple[str, ...]) -> frozenset[Permission]:
    if own is not None:
        return frozenset(Permission(name) for name in own)
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_DEFAULTS.get(Role(role), frozenset())
    return granted
