"""The import rules of DESIGN.md, checked on every module's imports (parsed, never run).

Dependencies point one way: ``ari`` <- hotline kernel <- domain packages <- hotline app.

1. ``ari`` imports nothing from this project but itself.
2. The hotline kernel (``KERNEL`` below) imports no domain package and no hotline app module.
3. Every module under ``hotline/`` is listed in ``KERNEL`` or ``APP``, so a new one is a decision.
4. Domain packages (``DOMAINS``) never import a hotline app module.
5. A domain package reaches another only through that package's public modules (``PUBLIC``:
   config, service, models, errors), never its flows, HTTP routes or other internals; beyond
   that they talk through a Protocol or a callback the app hands in, or in-process events.
   (None imports another yet: the IVR hands callers to the queues through ``QueueDirectory``
   and ``Handoff``, which ``hotline.app`` wires; ``hotline.asterisk`` and ``hotline.callconfig``
   read the ivr and agents configuration, as app modules may.)
6. The hotline app may import everything.

Every import counts, wherever it is: inside a function, or under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("ivr", "agents", "transcripts", "tickets", "escalation")
PACKAGES = ("ari", "hotline", *DOMAINS)
PUBLIC = ("config", "service", "models", "errors")

# hotline's modules, by name inside the package. migrations.env collects every package's tables
# for Alembic, which is wiring; the migration steps themselves (migrations.versions.*) import
# nothing of ours and are kernel.
KERNEL = {
    "__init__",
    "settings",
    "logging",
    "clock",
    "secrets",
    "db",
    "models",
    "calls",
    "callflow",
    "web",
    "auth",
    "workdays",
}
KERNEL_FOLDERS = ("migrations.versions.",)
APP = {"app", "cli", "asterisk", "callconfig", "sipp", "speech", "paging", "migrations.env"}


@dataclass(frozen=True, slots=True)
class Import:
    line: int
    target: str  # the dotted module imported (a submodule when ``from pkg import module``)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imports_of(module: str, is_package: bool, source: str, known: set[str]) -> list[Import]:
    """The project modules ``source`` imports (relative imports resolved against ``module``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(Import(node.lineno, candidate if candidate in known else base))
    return [i for i in found if i.target.split(".")[0] in PACKAGES]


def hotline_layer(module: str) -> str | None:
    """'kernel', 'app', or None when the module is in neither list."""
    inner = "__init__" if module == "hotline" else module.removeprefix("hotline.")
    if inner in KERNEL or inner.startswith(KERNEL_FOLDERS):
        return "kernel"
    if inner in APP:
        return "app"
    return None


def broken_rule(importer: str, target: str) -> str | None:
    """Why ``importer`` may not import ``target``; None when it may."""
    source, dest = importer.split(".")[0], target.split(".")[0]
    if source == dest and source != "hotline":
        return None  # within one package (ari or a domain)
    if source == "ari":
        return "ari imports nothing from this project but itself"
    if source == "hotline":
        layer = hotline_layer(importer)
        if layer == "app":
            return None
        if dest in DOMAINS:
            return "the hotline kernel imports no domain package"
        if dest == "hotline" and hotline_layer(target) == "app":
            return "the hotline kernel imports no hotline app module"
        return None
    # A domain package.
    if dest == "hotline" and hotline_layer(target) == "app":
        return "a domain package never imports a hotline app module"
    if dest in DOMAINS:
        parts = target.split(".")
        if len(parts) < 2 or parts[1] not in PUBLIC:
            public = ", ".join(f"{dest}.{name}" for name in PUBLIC)
            return f"a domain package reaches another only through its public modules ({public})"
    return None


def violations(modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    found = []
    for module, path in sorted(modules.items()):
        source = path.read_text(encoding="utf-8")
        for imp in imports_of(module, path.name == "__init__.py", source, known):
            reason = broken_rule(module, imp.target)
            if reason:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{imp.line} imports {imp.target}: {reason}")
    return found


def test_every_module_keeps_the_layers() -> None:
    found = violations(project_modules())
    if found:
        pytest.fail("imports against the layering rules (tests/unit/test_layering.py):\n" + "\n".join(found))


def test_every_hotline_module_is_kernel_or_app() -> None:
    unlisted = [
        str(path.relative_to(ROOT))
        for module, path in project_modules().items()
        if module.split(".")[0] == "hotline" and hotline_layer(module) is None
    ]
    if unlisted:
        pytest.fail(
            "hotline modules that are neither kernel nor app; add each to KERNEL or APP in "
            f"tests/unit/test_layering.py: {', '.join(unlisted)}"
        )


def test_the_rules_are_found_in_the_tree() -> None:
    modules = project_modules()
    assert {"ari.client", "hotline.settings", "hotline.app", "agents.service", "ivr.flow"} <= set(modules)


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        ("ari.client", "from hotline.settings import Settings", "ari imports nothing"),
        ("ari.client", "from .rest import Channels", None),
        ("ari.client", "from . import events", None),
        ("hotline.web", "import agents.http", "kernel imports no domain package"),
        (
            "hotline.calls",
            "def f():\n    from hotline import asterisk",
            "kernel imports no hotline app module",
        ),
        ("hotline.callflow", "from ari import AriClient", None),
        ("hotline.app", "from agents.stasis import QueueFlow", None),
        ("agents.stasis", "from hotline.app import App", "domain package never imports a hotline app"),
        ("agents.stasis", "from hotline.models import Call", None),
        ("tickets.service", "from agents import stasis", "only through its public modules"),
        ("tickets.service", "from agents.models import AgentEvent", None),
        ("tickets.service", "import ivr", "only through its public modules"),
        ("ivr.flow", "from agents.config import QueuesConfig", None),
    ],
)
def test_the_rules_catch_what_they_should(module: str, source: str, reason: str | None) -> None:
    known = {"ari.events", "ari.rest", "hotline.asterisk", "agents.stasis", "hotline.app"}
    found = [broken_rule(module, imp.target) for imp in imports_of(module, False, source, known)]
    if reason is None:
        assert found and found == [None] * len(found)
    else:
        assert len(found) == 1 and found[0] is not None and reason in found[0]
