"""The documentation against the code: every command line ``python PROGRAM.py ...`` in a fenced
code block of README.md or docs/*.md is parsed by that program's own argument parser, flag by
flag (full names only: argparse would take an abbreviation) and as a whole (argparse's types and
choices); the README stays a front door (at most 350 lines) whose test command is the one
.ci/run runs; every link of the pages names a file that exists, and every picture is shown.

How a command is read: from the fenced blocks of shell (no language named, or sh, bash, shell,
console; a program's output goes in a ``text`` block, Python in a ``python`` one), a line ending
in ``\\`` goes on on the next line; a word starting with ``#`` begins a comment; ``&&`` and ``;``
separate commands, and ``>``, ``2>`` and ``|`` end one (what follows is the shell's);
``NAME=value`` words before ``python`` set the environment. A command with a placeholder is
not parsed as a whole; only each flag it names is looked up. The placeholders: ``...``
(something left out, such as "the training flags"), a word in square brackets
(``[--augment]``: an optional part of a synopsis), a word with ``|`` in it (``squash|crop``: one
of these) or ``<name>`` (``<class>``). Commands of other tools
(``pytest``, ``tensorboard``, ``pip``, ...) are not ours and skipped, except that the README's
command for the whole suite must be .ci/run's last line.

The parser is had without running the program: ``common.cli.ArgumentParser.parse_args`` (every
program's parser is one) is patched to record the parser and the arguments it is given and to
raise; the program's ``parse_args(argv)`` (or its ``main(argv)`` where it parses there) builds
its parser and calls it; argparse's own ``parse_args`` then parses the recorded arguments. What
a program checks after argparse (flags that go together, files that exist) is not checked here.
"""

import argparse
import ast
import contextlib
import importlib
import io
import os
import re
import shlex

import pytest

from common import cli
from helpers import ROOT

README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")
MAX_README_LINES = 350
SHELLS = ("", "sh", "bash", "shell", "console")
SEPARATORS = ("&&", "||", ";", "&")  # between two commands
REDIRECTIONS = ("|", ">", ">>", "<", ">&", "<&")  # the rest of the command is the shell's


def pages():
    """README.md and every page of docs/, as paths."""
    return [README] + sorted(os.path.join(DOCS, name) for name in os.listdir(DOCS)
                             if name.endswith(".md"))


def fenced_lines(text):
    """The lines inside the fenced code blocks (``` or ~~~) of a Markdown text that hold shell
    commands (no language named, or sh, bash, shell, console: not python or text), with the
    continuation lines (ending in a backslash) joined and comments left out."""
    lines, fence, shell, pending = [], None, False, ""
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None:
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
                shell = stripped[3:].strip() in SHELLS
        elif stripped.startswith(fence):
            fence, pending = None, ""
        elif shell:
            stripped = without_comment(stripped)
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
            else:
                lines.append((pending + stripped).strip())
                pending = ""
    return lines


def without_comment(line):
    """LINE up to a ``#`` that begins a word outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def has_placeholder(line):
    """``...``, a word in square brackets, ``a|b`` or ``<name>`` (see the docstring)."""
    return ("..." in line or re.search(r"(^|\s)\[", line) is not None or
            re.search(r"[^\s|]\|[^\s|]", line) is not None or
            re.search(r"<[A-Za-z][^<>]*>", line) is not None)


def commands(line):
    """The commands of one shell line, each a list of words (redirections and what follows a
    pipe left out)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    found, words, ended = [], [], False
    for word in lexer:
        if word in SEPARATORS:
            found.append(words)
            words, ended = [], False
        elif word in REDIRECTIONS:
            if not ended and words and words[-1].isdigit() and words[-1] + word in line:
                words.pop()  # 2> names a file descriptor
            ended = True
        elif not ended:
            words.append(word)
    found.append(words)
    return [words for words in found if words]


def python_commands(line):
    """``(program, arguments, whole)`` for each ``python PROGRAM.py ...`` of LINE, environment
    assignments dropped; ``whole`` is False when the line has a placeholder."""
    whole = not has_placeholder(line)
    if whole:
        parts = commands(line)
    else:  # a synopsis: its | and [ ] are not the shell's
        parts = [[]]
        for word in line.split():
            if word in SEPARATORS:
                parts.append([])
            else:
                parts[-1].append(word)
    found = []
    for words in parts:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if len(words) >= 2 and words[0] in ("python", "python3") and words[1].endswith(".py"):
            found.append((words[1], words[2:], whole))  # (not python -m pytest, python -c ...)
    return found


def documented_commands():
    """``[(page, line, program, arguments, whole)]`` of every command of the pages."""
    found = []
    for page in pages():
        with open(page) as f:
            for line in fenced_lines(f.read()):
                found += [(os.path.relpath(page, ROOT), line, *command)
                          for command in python_commands(line)]
    return found


def programs():
    """The .py files at the root that are programs (they end in ``if __name__ ==
    "__main__":``)."""
    found = set()
    for name in os.listdir(ROOT):
        if name.endswith(".py"):
            with open(os.path.join(ROOT, name)) as f:
                tree = ast.parse(f.read())
            if any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
                   for node in tree.body):
                found.add(name)
    return found


class Parsed(Exception):
    """Raised in place of parsing: the program's parser and the arguments it was given."""

    def __init__(self, parser, args):
        super().__init__()
        self.parser, self.args = parser, args


def parser_of(program, argv, monkeypatch):
    """``(parser, arguments)``: the argparse parser PROGRAM builds for ARGV and the arguments it
    would parse with it (cluster.py keeps what follows ``--`` for its tasks)."""
    module = importlib.import_module(program[:-3])

    def record(parser, args=None, namespace=None):
        raise Parsed(parser, list(args))

    with monkeypatch.context() as patch:
        patch.setattr(cli.ArgumentParser, "parse_args", record)
        try:
            getattr(module, "parse_args", module.main)(list(argv))
        except Parsed as parsed:
            return parsed.parser, parsed.args
    raise AssertionError(f"{program} did not call its parser's parse_args")


def unknown_flags(program, parser, words):
    """The flags among WORDS (``--name``, ``--name=value``; in a synopsis also ``[--name]``,
    ``--a|--b``) that PARSER does not have by that full name, each as a sentence."""
    flags = [piece.split("=")[0].rstrip("]") for word in words
             for piece in word.lstrip("[").split("|") if re.match(r"--?[A-Za-z]", piece)]
    return [f"{program} has no flag {flag}" for flag in flags
            if flag not in parser._option_string_actions]


def problems(program, argv, monkeypatch):
    """What is wrong with ``python PROGRAM ARGV`` as its parser sees it: flags it does not have
    (by their full name), then argparse's error; an empty list when it parses."""
    parser, args = parser_of(program, argv, monkeypatch)
    ours = args[:args.index("--")] if "--" in args else args
    found = unknown_flags(program, parser, ours)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            argparse.ArgumentParser.parse_args(parser, args)
    except SystemExit:
        found.append(err.getvalue().strip() or f"{program}: argparse exited")
    if program == "cluster.py" and "--" in argv:  # the training flags of every task
        found += problems("train_and_val.py", argv[argv.index("--") + 1:], monkeypatch)
    return found


def test_the_reader_finds_commands_joins_lines_and_knows_placeholders():
    text = ("Some prose with `python train_and_val.py --not-checked`.\n\n"
            "```\n"
            "python train_and_val.py --arch vgg11 \\\n"
            "    --max-steps 5   # a comment\n"
            "tensorboard --logdir logs\n"
            "pip install -r requirements.txt && python evaluate.py --split val\n"
            "python predict.py --json a.png > out.json\n"
            "TF_CONFIG='{\"a\": 1}' python train_and_val.py --seed 1\n"
            "python evaluate.py [--log-dir logs] [--best]\n"
            "python train_and_val.py ... --arch vgg16\n"
            "python -m pytest -q tests\n"
            "```\n")
    found = [c for line in fenced_lines(text) for c in python_commands(line)]
    assert found == [("train_and_val.py", ["--arch", "vgg11", "--max-steps", "5"], True),
                     ("evaluate.py", ["--split", "val"], True),
                     ("predict.py", ["--json", "a.png"], True),
                     ("train_and_val.py", ["--seed", "1"], True),
                     ("evaluate.py", ["[--log-dir", "logs]", "[--best]"], False),
                     ("train_and_val.py", ["...", "--arch", "vgg16"], False)]


def test_a_synopsis_has_its_flags_checked(monkeypatch):
    parser, _ = parser_of("evaluate.py", [], monkeypatch)
    words = "[--log-dir logs] [--checkpoint PATH | --best] [--resize squash|crop] --x=1".split()
    assert unknown_flags("evaluate.py", parser, words) == ["evaluate.py has no flag --x"]
    (program, argv, whole), = python_commands("python evaluate.py [--best | --checkpoint PATH] "
                                              "[--resize squash|crop] [--bets]")
    assert not whole
    assert unknown_flags(program, parser, argv) == ["evaluate.py has no flag --bets"]


@pytest.mark.parametrize("argv, wrong", [
    (["--max-step", "5"], "no flag --max-step"),  # an abbreviation argparse would take
    (["--no-such-flag"], "no flag --no-such-flag"),
    (["--max-steps", "N"], "argument --max-steps"),  # a type
    (["--arch", "vgg99"], "argument --arch"),  # a choice
    (["--learning-rate", "nan"], "argument --learning-rate"),
])
def test_the_check_catches_a_wrong_command(argv, wrong, monkeypatch):
    found = problems("train_and_val.py", argv, monkeypatch)
    assert found and wrong in found[0]


def test_the_check_reads_the_tasks_flags_of_cluster_py(monkeypatch):
    assert problems("cluster.py", ["--ps", "1", "--", "--max-steps", "5"], monkeypatch) == []
    assert "no flag --max-step" in problems("cluster.py", ["--", "--max-step", "5"],
                                            monkeypatch)[0]
    assert problems("cluster.py", ["--ps", "0"], monkeypatch)


def test_every_documented_command_parses(monkeypatch):
    """Each command as a whole; of a command with a placeholder, each flag it names."""
    found = documented_commands()
    whole = [command for command in found if command[-1]]
    assert len(whole) >= 40 and len(found) - len(whole) < len(whole) / 10, len(found)
    assert {"train_and_val.py", "evaluate.py", "predict.py", "explain.py", "export.py",
            "extract_codes.py", "benchmark.py", "cluster.py", "convert_weights.py",
            "input_data.py"} <= {program for _, _, program, _, _ in whole}
    ours = programs()
    wrong = []
    for page, line, program, argv, complete in found:
        if program not in ours:
            wrong.append(f"{page}: {line}\n    {program} is not a program at the root")
        elif complete:
            wrong += [f"{page}: {line}\n    {problem}"
                      for problem in problems(program, argv, monkeypatch)]
        else:
            ours_part = argv[:argv.index("--")] if "--" in argv else argv
            wrong += [f"{page}: {line}\n    {problem}" for problem in unknown_flags(
                program, parser_of(program, [], monkeypatch)[0], ours_part)]
    assert not wrong, "\n".join(wrong)


def test_the_readme_is_a_front_door_with_the_ci_test_command():
    with open(README) as f:
        text = f.read()
    assert len(text.splitlines()) <= MAX_README_LINES
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line.strip() for line in f if line.strip()][-1]
    suite = [line for line in fenced_lines(text)
             if line.startswith("python -m pytest") and line.split()[-1] == "tests"]
    assert suite and all(line == ci for line in suite), (suite, ci)


def links(text):
    """The targets of a Markdown text's links and images, ``[text](target)``."""
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def anchors(text):
    """The anchors GitHub gives a Markdown text's headings: lower case, punctuation but ``-``
    and ``_`` left out, spaces as ``-``; a repeated one gets ``-1``, ``-2``, ..."""
    found = []
    for line in text.splitlines():
        if line.startswith("#"):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            repeats = sum(1 for a in found if re.fullmatch(re.escape(slug) + r"(-\d+)?", a))
            found.append(f"{slug}-{repeats}" if repeats else slug)
    return set(found)


def test_the_anchors_are_githubs():
    assert anchors("# Tests\n## Grad-CAM (explain.py)\n## The VGG paper's recipe\n## Tests") == {
        "tests", "grad-cam-explainpy", "the-vgg-papers-recipe", "tests-1"}


def test_every_link_names_a_file_and_every_page_and_picture_is_reached():
    linked = set()
    for page in pages():
        with open(page) as f:
            text = f.read()
        assert text.startswith("# "), f"{page} begins with its title"
        for target in links(text):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            path = os.path.normpath(os.path.join(os.path.dirname(page), name)) if name else page
            assert os.path.exists(path), f"{os.path.relpath(page, ROOT)} links to {target}"
            if anchor:
                with open(path) as f:
                    assert anchor in anchors(f.read()), \
                        f"{os.path.relpath(page, ROOT)} links to {target}: no such heading"
            linked.add(path)
    with open(README) as f:
        from_readme = {os.path.normpath(os.path.join(ROOT, t.split("#")[0]))
                       for t in links(f.read())}
    assert set(pages()[1:]) <= from_readme, "the README links to every page of docs/"
    pictures = os.path.join(ROOT, "pictures")
    assert {os.path.join(pictures, name) for name in os.listdir(pictures)} <= linked
