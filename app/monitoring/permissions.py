"""Monitoring permissions: what the directory grants a user, or their roles' defaults."""

from app.models.enums import MonitoringMode, MonitoringPermission, Role

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


def permissions_of(user) -> frozenset[Permission]:
    """A users row's monitoring permissions: its own, or else the union of its roles'."""
    if user.permissions is not None:
        return frozenset(Permission(name) for name in user.permissions)
    granted: frozenset[Permission] = frozenset()
    for role in user.roles:
        granted |= ROLE_DEFAULTS.get(Role(role), frozenset())
    return granted
