"""Strawberry objects built from rows without the dataclass `__init__`.

A Strawberry type's `__init__` takes keywords only, and parsing them is most of building
an object: 0.57 us for a Participant, against 0.23 us for setting its fields one by one. A
1,000-interaction queueActivity builds about 3,000 such objects.
"""

import dataclasses
import keyword


def built_from_rows(**columns: str):
    """A class decorator (above `@strawberry.type`) that gives the type `of(row)`: an object
    with each field set from the row's column named for it here, or else from the column of
    the field's own name. Checked once, when the class is made: every name must be a plain
    identifier and a field, and the type must have no `__post_init__` (which `of` would
    skip)."""

    def decorate(cls):
        fields = [field.name for field in dataclasses.fields(cls) if field.init]
        if unknown := set(columns) - set(fields):
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)}")
        if hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__} has a __post_init__, which of() would skip")
        sources = {name: columns.get(name, name) for name in fields}
        for name in (*sources, *sources.values()):
            if not name.isidentifier() or keyword.iskeyword(name):
                raise TypeError(f"{name!r} is not a plain name")
        body = "".join(f"    made.{name} = row.{column}\n" for name, column in sources.items())
        namespace = {"new": object.__new__, "cls": cls}
        # Our own source, from the dataclass's field names (checked above).
        exec(f"def of(row):\n    made = new(cls)\n{body}    return made\n", namespace)  # noqa: S102
        of = namespace["of"]
        of.__qualname__ = f"{cls.__name__}.of"
        of.__doc__ = f"A {cls.__name__} of a row (app/graphql/from_rows.py)."
        cls.of = staticmethod(of)
        return cls

    return decorate
