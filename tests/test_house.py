"""The shape of the project, read from its files: programs at the root and the library in a few
packages; no module in an import cycle (function-level imports included); no program importing
another; no file over 550 lines; every module saying what it is for; and a program's
``main(argv)`` that leaves the process as it found it."""

import ast
import os
import signal
import threading

import helpers
from helpers import ROOT

MAX_LINES = 550
PACKAGES = ("benchmarks", "common", "datasets", "inference", "training")


def project_modules():
    """{dotted module name: path} of the root's .py files and those of its packages."""
    modules = {name[:-3]: os.path.join(ROOT, name) for name in os.listdir(ROOT)
               if name.endswith(".py")}
    for package in sorted(os.listdir(ROOT)):
        folder = os.path.join(ROOT, package)
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            modules[package] = os.path.join(folder, "__init__.py")
            modules.update({f"{package}.{name[:-3]}": os.path.join(folder, name)
                            for name in os.listdir(folder)
                            if name.endswith(".py") and name != "__init__.py"})
    return modules


def parsed(path):
    with open(path) as f:
        return ast.parse(f.read(), path)


def imports(tree, modules):
    """The project modules a parsed file imports anywhere in it (at the top, in a function):
    ``import a.b`` and ``from a.b import c`` name a.b; ``from a import b`` names a.b when that
    is a module, else a."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            inside = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(inside & set(modules) or {node.module})
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


def is_program(tree):
    """A program ends in ``if __name__ == "__main__":``."""
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
               for node in tree.body)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_scanner_reads_each_form_of_import():
    modules = {"a": "", "a.b": "", "c": ""}
    tree = ast.parse("import c\ndef f():\n    from a import b\nfrom a.b import x\n"
                     "from a import y\nimport os\n")
    assert imports(tree, modules) == {"a", "a.b", "c"}


def test_the_packages_hold_the_library():
    modules = project_modules()
    assert set(PACKAGES) <= set(modules)
    assert {"datasets.cifar10", "training.inputs", "inference.tflite", "common.cli",
            "benchmarks.measure"} <= set(modules)


def test_no_module_is_in_an_import_cycle():
    modules = project_modules()
    graph = {name: imports(parsed(path), modules) for name, path in modules.items()}
    assert graph["common.cli"] == set(), "common/cli.py imports no project module"
    assert cycles(graph) == []


def test_programs_are_at_the_root_and_none_imports_another():
    modules = {name: parsed(path) for name, path in project_modules().items()}
    # input_data.py is a library with a small command line of its own (--download, --show)
    programs = {name for name, tree in modules.items() if is_program(tree)} - {"input_data"}
    assert {"train_and_val", "evaluate", "benchmark", "convert_weights", "cluster"} <= programs
    assert all("." not in name for name in programs), programs
    for name, tree in modules.items():
        assert not imports(tree, modules) & (programs - {name}), name


def test_no_file_is_over_550_lines():
    long = {name: n for name, path in project_modules().items()
            if (n := sum(1 for _ in open(path))) > MAX_LINES}
    assert long == {}


def test_every_module_says_what_it_is_for():
    for name, path in project_modules().items():
        doc = ast.get_docstring(parsed(path))
        assert doc and len(doc.split()) >= 12, name


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
