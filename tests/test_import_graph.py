"""The package's import graph against the layers of docs/design.md: no upward import, no cycle, no kernel
module importing another (but the one exception the design names), no module outside every layer.

The graph is read from the source (ast), not by importing it: every `import` and `from ... import`
anywhere in a module, function-level ones included, is an edge; `from P import n` is an edge to P.n
where that is a module, else to P. A submodule's implicit import of its parent package is not an edge
(Python runs the parent's __init__ first; that is how packages work, not a dependency of the author's
choosing). The checker runs on the real tree, and on copies with a fault planted, each of which it must
report.
"""

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
MARKER = "<!-- layers -->"
KERNEL_HELPERS = {"pyddpm.ops", "pyddpm.ops.checks", "pyddpm.ops.backend", "pyddpm.ops.cuda_args",
                  "pyddpm.ops.allocator", "pyddpm.ops.registry", "pyddpm.ops.aliasing"}
KERNEL_COMPOSITIONS = {("pyddpm.ops.winograd_conv", "pyddpm.ops.winograd"),  # docs/design.md, "Layers"
                       ("pyddpm.ops.winograd_conv", "pyddpm.ops.batched_matmul")}


def read_layers(design_text):
    """[(layer, [module prefixes])], top layer first, from the block between the two markers."""
    parts = design_text.split(MARKER)
    assert len(parts) == 3, f"docs/design.md must hold the layer table between two {MARKER!r} lines"
    layers = []
    for line in parts[1].splitlines():
        words = line.split()
        if words and not words[0].startswith("```"):
            layers.append((words[0], words[1:]))
    return layers


def module_names(package_dir):
    """{module name: path} for every .py file under package_dir (a package's __init__ named for the package)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name, path, modules):
    """The pyddpm modules ``name`` imports, resolved to names in ``modules``."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package holding this module
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import pyddpm.ops.x as y` names a module; trim to one
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] == "pyddpm":
                out.add(target)
    return out


def layer_of(module, layers):
    """The index of the layer holding ``module`` (longest matching prefix; the root package only by its
    own name), or None."""
    best = None
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if module == prefix or (prefix != "pyddpm" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return None if best is None else best[0]


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def problems(package_dir, design_text):
    """Every violation of the layering in the tree at package_dir, as readable lines."""
    layers = read_layers(design_text)
    modules = module_names(package_dir)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    found = []
    for name in sorted(modules):
        if layer_of(name, layers) is None:
            found.append(f"{name} is in no layer of docs/design.md")
    for name, targets in sorted(graph.items()):
        here = layer_of(name, layers)
        for target in sorted(targets):
            there = layer_of(target, layers)
            if here is not None and there is not None and there < here:
                found.append(f"upward import: {name} ({layers[here][0]}) imports {target} ({layers[there][0]})")
            kernels = (name, target)
            if (all(k.startswith("pyddpm.ops.") and k not in KERNEL_HELPERS for k in kernels)
                    and kernels not in KERNEL_COMPOSITIONS):
                found.append(f"kernel module {name} imports kernel module {target}")
    found += [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    return found


def test_the_package_follows_its_layers():
    assert problems(ROOT / "pyddpm", DESIGN.read_text()) == []


def test_every_layer_of_the_design_holds_a_module():
    """A layer table naming modules that do not exist (a typo, a rename) would check nothing for them."""
    modules = module_names(ROOT / "pyddpm")
    for layer, prefixes in read_layers(DESIGN.read_text()):
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), f"{layer}: {prefix}"


PLANTED = [
    ("pyddpm/ops/q_sample.py", "from pyddpm.train import loop\n",
     "upward import: pyddpm.ops.q_sample (ops) imports pyddpm.train.loop (train)"),
    ("pyddpm/arrays.py", "def f():\n    from pyddpm.ops import backend\n",
     "upward import: pyddpm.arrays (base) imports pyddpm.ops.backend (ops)"),
    ("pyddpm/ops/checks.py", "from pyddpm.ops.backend import resolve\n",
     "import cycle: pyddpm.ops.backend <-> pyddpm.ops.checks"),
    ("pyddpm/ops/normal_kl.py", "from pyddpm.ops.discretized_gaussian_log_likelihood import check_discretized_gaussian_log_likelihood\n",
     "kernel module pyddpm.ops.normal_kl imports kernel module pyddpm.ops.discretized_gaussian_log_likelihood"),
    ("pyddpm/helpers.py", "x = 1\n", "pyddpm.helpers is in no layer of docs/design.md"),
    ("pyddpm/ops/group_norm.py", "from pyddpm.ops import array_module\n",
     "import cycle: pyddpm.ops <-> pyddpm.ops.group_norm"),
]


@pytest.mark.parametrize("path,line,report", PLANTED, ids=[p[2].split(":")[0] for p in PLANTED])
def test_a_planted_fault_is_reported(tmp_path, path, line, report):
    shutil.copytree(ROOT / "pyddpm", tmp_path / "pyddpm", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    if path == "pyddpm/ops/checks.py":  # a cycle needs both directions
        target = tmp_path / "pyddpm" / "ops" / "backend.py"
        target.write_text(target.read_text() + "from pyddpm.ops.checks import shape\n")
    planted = tmp_path / path
    planted.write_text((planted.read_text() if planted.exists() else "") + line)
    assert report in problems(tmp_path / "pyddpm", DESIGN.read_text())
