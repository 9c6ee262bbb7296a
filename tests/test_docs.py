"""The docs say what the code does: the CLI reference is --help itself, and every `mnistgan`
command shown in README.md and docs/ parses with the options the CLI has today.

Regenerate docs/cli.md after changing an option: python tests/test_docs.py
"""

from __future__ import annotations

import bisect
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

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


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(```|~~~)")
REFUSED = re.compile(r"#\s*refused\b")  # the mark of a line shown to be refused
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")  # PSI, N, FILE, RUN: any value of the option


@dataclass(frozen=True)
class Shown:
    """One `mnistgan ...` command line of a page: where it is, its words after `mnistgan`, whether
    it is an inline code span (a fragment of prose) and whether the page marks it as refused."""

    page: str
    line: int
    text: str
    words: tuple[str, ...]
    inline: bool
    refused: bool

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def _commands_in(text: str) -> list[tuple[list[str], bool]]:
    """The `mnistgan` commands of one shell line or code span: (words after `mnistgan`, refused).
    `a && b`, `a; b`, `a | b` and `a &` are several commands; `VAR=value` and `srun` before the
    program are passed over; the program is `mnistgan` or a path ending in it (.venv/bin/mnistgan)."""
    text = re.sub(r"^\$ ", "", text.strip())
    refused = bool(REFUSED.search(text))
    try:
        words = shlex.split(text.removesuffix("\\"), comments=True)
    except ValueError:  # an unbalanced quote: not a command line
        return []
    found, command = [], []
    for word in [*words, ";"]:
        if word in ("&&", "||", ";", "|", "&"):
            while command and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]) or command[0] == "srun"):
                command = command[1:]
            if command and Path(command[0]).name == "mnistgan":
                found.append((command[1:], refused))
            command = []
        else:
            command.append(word.rstrip(";"))
    return found


def shown_commands() -> list[Shown]:
    """Every `mnistgan ...` command of README.md and docs/*.md: each line of a fenced code block
    (a shell line, or a `$ ` line of a transcript) and each inline code span that starts with
    `mnistgan ` (not `mnistgan.x` or `mnistgan[onnx]`), in prose or in a code block's comment.
    CHANGELOG.md is history, which names the options of earlier versions, and is not read."""
    found = []
    for md in PAGES:
        lines = md.read_text().splitlines()
        fenced = False
        prose: list[tuple[int, str]] = []  # the lines outside fences, for the inline spans
        for number, line in enumerate(lines, 1):
            if FENCE.match(line.strip()):
                fenced = not fenced
                continue
            if fenced:
                for words, refused in _commands_in(line):
                    found.append(Shown(md.name, number, line.strip(), tuple(words), False, refused))
                for span in re.finditer(r"`(mnistgan [^`]+)`", line):  # in a comment of a Python block
                    for words, refused in _commands_in(span.group(1)):
                        found.append(Shown(md.name, number, span.group(0), tuple(words), True, refused))
            else:
                prose.append((number, line))
        # Inline spans may run over a line break: join the prose, keeping each character's line.
        text = "\n".join(line for _, line in prose)
        starts = [0]
        for _, line in prose:
            starts.append(starts[-1] + len(line) + 1)
        for span in re.finditer(r"(?<!`)`(mnistgan [^`]+)`(?!`)", text):
            number = prose[bisect.bisect_right(starts, span.start()) - 1][0]
            for words, refused in _commands_in(" ".join(span.group(1).split())):
                found.append(Shown(md.name, number, span.group(0), tuple(words), True, refused))
    return found


def _option(command, name: str):
    return next((p for p in command.params if name in (*p.opts, *p.secondary_opts)), None)


def parse(shown: Shown) -> None:
    """Parse a shown command with the CLI's own parser, and run nothing: raises click's
    usage error, a typer.TyperException (an unknown command or option, a bad or missing value) where the CLI would.

    The rules for what is shown:
    - `mnistgan` options before the command are the group's own (--debug, --version, -h);
    - a command word that is a placeholder (`mnistgan COMMAND --help`) checks those alone;
    - `-h`/`--help` is checked as an option of the command, then dropped (it would print help);
    - a placeholder value, an upper-case word such as PSI, N, FILE or RUN after an option
      (`--truncation PSI`), stands for any value: the command must have the option, and the
      option must take a value; `...` stands for more options and is dropped;
    - in an inline code span, which is a fragment of a sentence, a command named alone
      (`mnistgan animate`) checks that the command exists, and an option at the end without
      its value (`mnistgan sample --noise`) that the command has it. A code block's lines are
      whole commands: nothing is left out there;
    - what a command reads must exist to parse (`--data`, `--samples`, `--run`, animate's
      FOLDER): it is made, empty, in the test's own working folder (absolute paths made
      relative), so that the parse judges the options, not this machine's files.
    """
    from typer.main import get_command

    from mnistgan.cli import app

    group = get_command(app)
    top = group.make_context("mnistgan", ["sample"])
    words = [w for w in shown.words if w != "..."]
    while words and words[0].startswith("-"):
        if _option(group, words[0]) is None and words[0] not in top.help_option_names:
            raise typer.BadParameter(f"No such option: {words[0]}", ctx=top)
        words = words[1:]
    if not words or PLACEHOLDER.match(words[0]):
        return
    command = group.commands.get(words[0])
    if command is None:
        raise typer.BadParameter(f"No such command '{words[0]}'", ctx=top)
    args = words[1:]
    if shown.inline and not args:
        return
    kept: list[str] = []
    while args:
        word, args = args[0], args[1:]
        if word in top.help_option_names:
            continue
        option = _option(command, word.split("=")[0]) if word.startswith("-") else None
        takes_value = option is not None and not getattr(option, "is_flag", False) and "=" not in word
        if takes_value and ((args and PLACEHOLDER.match(args[0])) or (shown.inline and not args)):
            args = args[1:]  # a placeholder, or a fragment's last option: the option exists and takes a value
            continue
        kept.append(word)
    kept = [w.lstrip("/") if w.startswith("/") and not Path(w).exists() else w for w in kept]
    for option, value in zip(kept, kept[1:]):
        if option in ("--data", "--samples") and not Path(value).exists():
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).touch()
        if option == "--run":
            Path(value).mkdir(parents=True, exist_ok=True)
    if command.name == "animate" and kept and not kept[0].startswith("-"):
        Path(kept[0]).mkdir(parents=True, exist_ok=True)
    with command.make_context(command.name, kept, parent=top):  # raises on a bad option or value
        pass


@pytest.mark.parametrize("shown", shown_commands(), ids=str)
def test_every_command_in_the_docs_parses(shown):
    """Options renamed or values refused break this test, not the reader: each `mnistgan` line of
    a page parses with the CLI of today (see parse() for what counts as shown). A line the page
    marks `# refused` (a comment at its end, in a code block or inside an inline span) shows an
    error: the parser must refuse it."""
    try:
        parse(shown)
        wrong = None
    except typer.TyperException as exc:
        wrong = exc.format_message()
    if shown.refused and wrong is None:
        pytest.fail(f"{shown}: {shown.text}\n  marked refused, but it parses", pytrace=False)
    if not shown.refused and wrong is not None:
        pytest.fail(f"{shown}: {shown.text}\n  {wrong}", pytrace=False)


def test_the_command_check_bites():
    """What the check must refuse, it refuses: a command, an option or a value the CLI does not
    have, and a line marked refused that parses."""
    def shown(text: str, inline: bool = False) -> Shown:
        [(words, refused)] = _commands_in(text)
        return Shown("test", 1, text, tuple(words), inline, refused)

    for bad in ("mnistgan trian", "mnistgan train --epoch 3", "mnistgan sample --recipe fast",
                "mnistgan sample -n 0", "mnistgan sample -n many", "mnistgan train --recipe quick",
                "mnistgan train --debug", "mnistgan --bogus train", "mnistgan sample --out x.jpg",
                "mnistgan train --noise-dim", "mnistgan project --test-index -1"):
        with pytest.raises(typer.TyperException):
            parse(shown(bad))
    parse(shown("mnistgan sample --noise", inline=True))
    parse(shown("mnistgan --debug COMMAND ...", inline=True))
    parse(shown("mnistgan sample --truncation PSI -n N"))
    with pytest.raises(typer.TyperException):
        parse(shown("mnistgan sample --psi PSI"))
    assert shown("mnistgan train --debug  # refused: after the command").refused
    assert [w for w, _ in _commands_in("A=1 srun .venv/bin/mnistgan train && mnistgan sample -n 2 &")] == [
        ["train"], ["sample", "-n", "2"]]


def test_every_test_the_docs_name_exists():
    """The docs point to the tests behind their claims (docs/reliability.md's table): a renamed or
    merged test must not leave a pointer to nothing. ``test_x.py::test_y`` must be in that file; a
    bare ``test_y`` in a paragraph or table that names tests so must be in some test file (elsewhere
    a bare ``test_...`` may be something else, such as a field of ``evaluate --json``)."""
    tests = {p.name: p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    missing, named = [], 0
    for md in PAGES:
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
