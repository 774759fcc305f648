"""Every command answers --help with a description; the README mentions every top-level command."""

from pathlib import Path

import click
from conftest import invoke

from pipeline.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help():
    seen = 0
    for path, command in _commands(cli):
        result = invoke(*path, "--help")
        assert result.exit_code == 0, path
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        assert "Usage:" in result.output
        seen += 1
    assert seen >= 4


def test_readme_mentions_every_command():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in cli.commands:
        assert f"yolo-pipeline {name}" in readme, f"README lacks 'yolo-pipeline {name}'"
