"""The shape of the project: no module in an import cycle (function-level imports included), no
file over 600 lines, and a program's ``main(argv)`` that leaves the process as it found it."""

import ast
import os
import signal
import threading

import helpers
from helpers import ROOT

MAX_LINES = 600


def project_modules():
    return {name[:-3]: os.path.join(ROOT, name) for name in os.listdir(ROOT)
            if name.endswith(".py")}


def imports(path, modules):
    """The project modules ``path`` imports anywhere in it (at the top, in a function, ...)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(modules)


def cycles(graph):
    """Strongly connected components of more than one module, or a module importing itself
    (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_in_an_import_cycle():
    modules = project_modules()
    graph = {name: imports(path, modules) for name, path in modules.items()}
    assert graph["cli"] == set(), "cli.py imports no project module"
    assert cycles(graph) == []


def test_no_file_is_over_600_lines():
    long = {name: n for name, path in project_modules().items()
            if (n := sum(1 for _ in open(path))) > MAX_LINES}
    assert long == {}


def test_importing_a_program_changes_nothing_and_main_puts_back_what_it_changed(tmp_path):
    """Importing a program installs no handler; a run of main() (here a bad flag, and a
    training run that installs the Ctrl-C hook) leaves the handlers and the thread exception
    hook as they were."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hook = threading.excepthook
    for program in ("train_and_val", "evaluate", "extract_codes", "predict", "export"):
        __import__(program)
    assert {sig: signal.getsignal(sig) for sig in before} == before
    result = helpers.call("evaluate.py", "--log-dir", tmp_path / "none")
    assert result.returncode == 2
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert threading.excepthook is hook
