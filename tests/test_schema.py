"""The exported schema: committed, compatible with the contract, and documented."""

import subprocess
import sys

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    specified_scalar_types,
)

from app.graphql.schema import sdl


def test_committed_schema_file_is_the_schema_of_the_code(repo_root):
    committed = (repo_root / "schema" / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), (
        "schema/schema.graphql is out of date: "
        "run `binocular export-schema > schema/schema.graphql`"
    )


def test_schema_keeps_everything_of_the_contract(shared_dir):
    contract_path = shared_dir / "contract" / "schema.graphql"
    contract = build_schema(contract_path.read_text(encoding="utf-8"))
    breaking = find_breaking_changes(contract, build_schema(sdl()))
    assert breaking == [], "breaking changes against the contract:\n" + "\n".join(
        f"  {change.type.name}: {change.description}" for change in breaking
    )


def test_contract_check_tool_passes(repo_root, shared_dir):
    tool = shared_dir / "tools" / "contract-check"
    result = subprocess.run(
        [sys.executable, str(tool)],
        cwd=repo_root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 breaking changes" in result.stdout


def _undescribed(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument, input field and enum value of ours with no description."""
    missing = []
    for name, type_ in sorted(schema.type_map.items()):
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if not (type_.description or "").strip():
            missing.append(f"type {name}")
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                if not (field.description or "").strip():
                    missing.append(f"field {name}.{field_name}")
                for arg_name, arg in field.args.items():
                    if not (arg.description or "").strip():
                        missing.append(f"argument {name}.{field_name}({arg_name})")
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not (field.description or "").strip():
                    missing.append(f"input field {name}.{field_name}")
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if not (value.description or "").strip():
                    missing.append(f"enum value {name}.{value_name}")
    return missing


def test_every_part_of_the_schema_is_described():
    missing = _undescribed(build_schema(sdl()))
    assert missing == [], f"{len(missing)} parts of the schema have no description:\n" + "\n".join(
        f"  {item}" for item in missing
    )


def test_the_description_check_finds_what_is_undescribed():
    # The check itself must be able to fail.
    schema = build_schema("""
        "Described."
        type Query { "Described." a(x: Int): Int  b: E }
        enum E { "Described." ONE TWO }
        input I { f: Int }
    """)
    assert _undescribed(schema) == [
        "type E",
        "enum value E.TWO",
        "type I",
        "input field I.f",
        "argument Query.a(x)",
        "field Query.b",
    ]
