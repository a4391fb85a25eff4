"""The import layers of docs/architecture.md, enforced on every import in the source tree.

Every ``import`` / ``from … import`` of a biolens module is read from the AST of every file under
``src/biolens`` (at module level and inside functions alike) and checked against the layer order:

    foundation → data, metrics → models → tasks → engines (training, evaluation, interpret, deploy, doctor)
    → workflows → cli

A component may import its own package and any component of a lower layer, never one of a higher layer, and
never another component of its own layer (the engines do not import each other). No biolens import may sit
inside a function outside ``cli/``: the CLI imports lazily so that ``biolens --help`` does not load torch.
The one exemption is the package facade ``biolens/__init__.py`` (PEP 562 ``__getattr__``), which loads the
public API on first use for the same reason; its names are visible to IDEs through ``TYPE_CHECKING`` imports.
Optional heavy third-party dependencies (tensorboard, mlflow, optuna, pyBigWig, pysam) may be imported inside
functions anywhere; they are not biolens imports and this test does not restrict them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "biolens"

FOUNDATION = {"_version", "errors", "config", "contract", "findings", "io", "bundle", "devices", "metric_fns"}
LAYERS: list[set[str]] = [
    FOUNDATION,
    {"data", "metrics"},
    {"models"},
    {"tasks"},
    {"training", "evaluation", "interpret", "deploy", "doctor"},
    {"workflows"},
    {"cli", "__main__", "__init__"},
]
LAZY_FACADE = {"__init__"}


def component(module: str) -> str:
    """``biolens.data.readers`` → ``data``; the foundation's modules form one component."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "__init__"
    return "foundation" if name in FOUNDATION else name


def layer_of(comp: str) -> int:
    if comp == "foundation":
        return 0
    for i, names in enumerate(LAYERS):
        if comp in names:
            return i
    raise AssertionError(f"component {comp!r} is in no layer; add it to LAYERS and docs/architecture.md")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports() -> list[tuple[str, str, bool, str]]:
    """(importing module, imported biolens module, inside a function, file:line) for every biolens import."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        nested: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                nested |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = [resolve(node, module, path.name == "__init__.py")]
                if node.module is None or targets[0] == "biolens":  # from biolens import x → biolens.x
                    targets = [f"{targets[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t == "biolens" or t.startswith("biolens."):
                    found.append((module, t, id(node) in nested, f"{path.relative_to(SRC.parent)}:{node.lineno}"))
    return found


def test_every_package_is_in_a_layer():
    comps = {component(module_name(p)) for p in SRC.rglob("*.py")}
    for comp in comps:
        layer_of(comp)


def test_imports_point_down_the_layers():
    bad = []
    for src, dst, _, where in imports():
        a, b = component(src), component(dst)
        if a == b:
            continue
        la, lb = layer_of(a), layer_of(b)
        if lb > la:
            bad.append(f"{where}: {src} imports {dst} ({a} is layer {la}, {b} is layer {lb}: upwards)")
        elif lb == la and a not in LAYERS[-1]:
            bad.append(f"{where}: {src} imports {dst} ({a} and {b} are both layer {la}: side by side)")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst, _, _ in imports():
        a, b = component(src), component(dst)
        if a != b:
            graph[a].add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_no_biolens_import_inside_a_function_outside_the_cli():
    bad = [f"{where}: {src} imports {dst} inside a function"
           for src, dst, nested, where in imports()
           if nested and component(src) != "cli" and component(src) not in LAZY_FACADE]
    assert not bad, "move these imports to module level (or fix the layering that made them lazy):\n" + "\n".join(bad)


def test_the_checker_sees_nested_and_relative_imports(tmp_path):
    """The AST walk above must notice an import inside a function; a test that cannot fail is a defect."""
    code = "def f():\n    from biolens.training import trainer\n"
    tree = ast.parse(code)
    nested = {id(n) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) for n in ast.walk(fn)
              if isinstance(n, ast.ImportFrom)}
    assert len(nested) == 1
    assert component("biolens.training.trainer") == "training" and component("biolens.bundle") == "foundation"
    assert layer_of("workflows") > layer_of("training") > layer_of("tasks") > layer_of("models") > layer_of("data")
