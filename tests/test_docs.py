"""The docs say what the code does: the CLI reference is --help itself, and every `mnistgan`
command shown in README.md and docs/ parses with the options the CLI has today.

Regenerate docs/cli.md after changing an option: python tests/test_docs.py
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"


def command_names() -> list[str]:
    """Every command of the CLI, in the order they are declared."""
    from mnistgan.cli import app

    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def render_cli_reference() -> str:
    from typer.testing import CliRunner

    from mnistgan.cli import app

    runner = CliRunner()
    parts = [
        "# Command-line reference\n\n",
        "Generated from `mnistgan COMMAND --help` (`python tests/test_docs.py` rewrites this page; a test fails\n"
        "when it differs from the code). The Python API under these commands: [api.md](api.md).\n",
    ]
    for name in ["", *command_names()]:
        args = [name, "--help"] if name else ["--help"]
        result = runner.invoke(app, args, prog_name="mnistgan", terminal_width=100)
        assert result.exit_code == 0, result.output
        parts.append(f"\n## mnistgan {name}\n\n```\n{result.stdout.rstrip()}\n```\n" if name else
                     f"\n## mnistgan\n\n```\n{result.stdout.rstrip()}\n```\n")
    return "".join(parts)


def test_the_cli_reference_is_the_help_of_today():
    assert CLI_MD.read_text() == render_cli_reference(), "docs/cli.md is stale: run python tests/test_docs.py"


def shown_commands() -> list[tuple[str, str]]:
    """(file, command line) for each `mnistgan ...` line in a sh code block of README.md and docs/."""
    found = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```sh\n(.*?)```", md.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip().removesuffix("&").strip()
                line = re.sub(r"^(\.venv/bin/|\$ )", "", line)
                if line.startswith("mnistgan "):
                    found.append((md.name, line))
    return found


def test_every_command_in_the_docs_parses():
    """Options renamed or values refused break this test, not the reader. Parsing only: nothing runs
    (in the test's own empty working folder, where the files the commands name are made empty)."""
    from typer.main import get_command

    from mnistgan.cli import app

    group = get_command(app)
    for where, line in shown_commands():
        words = shlex.split(line)[1:]
        while words and words[0].startswith("-"):  # top-level options: mnistgan --debug train ...
            assert words[0] in ("--debug", "--version"), f"{where}: {line}"
            words = words[1:]
        command = group.commands.get(words[0]) if words else None
        assert command is not None, f"{where}: no such command in {line}"
        # What the commands read must exist to parse: made empty here (absolute paths made relative).
        words = [w.lstrip("/") if w.startswith("/") and not Path(w).exists() else w for w in words]
        for option, value in zip(words, words[1:]):
            if option in ("--data", "--samples") and not Path(value).exists():
                Path(value).parent.mkdir(parents=True, exist_ok=True)
                Path(value).touch()
            if option == "--run":
                Path(value).mkdir(parents=True, exist_ok=True)
        if words[0] == "animate" and len(words) > 1 and not words[1].startswith("-"):
            Path(words[1]).mkdir(parents=True, exist_ok=True)
        parent = group.make_context("mnistgan", [words[0]])
        with command.make_context(words[0], words[1:], parent=parent):  # raises on a bad option or value
            pass


def test_every_test_the_docs_name_exists():
    """The docs point to the tests behind their claims (docs/reliability.md's table): a renamed or
    merged test must not leave a pointer to nothing. ``test_x.py::test_y`` must be in that file; a
    bare ``test_y`` in a paragraph or table that names tests so must be in some test file (elsewhere
    a bare ``test_...`` may be something else, such as a field of ``evaluate --json``)."""
    tests = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    missing, named = [], 0
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        blocks = [block for block in md.read_text().split("\n\n") if ".py::test_" in block]
        for file, name in re.findall(r"(?:(test_\w+\.py)::)?\b(test_\w+)\b(?!\.py)", "\n\n".join(blocks)):
            named += 1
            where = [tests.get(file, "")] if file else tests.values()
            if not any(re.search(rf"^def {name}\(", text, flags=re.M) for text in where):
                missing.append(f"{md.name}: {file + '::' if file else ''}{name}")
    assert named > 10, "hardly a test named in the docs: the pattern no longer matches how they name tests"
    assert not missing, "docs name tests that do not exist:\n" + "\n".join(missing)


if __name__ == "__main__":
    CLI_MD.write_text(render_cli_reference())
    print(f"wrote {CLI_MD}")
