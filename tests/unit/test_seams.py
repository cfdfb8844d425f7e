"""One seam per outside system: the rules that keep it so, read from the source (no imports)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "airpods"
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def _classes() -> list[tuple[str, str, list[str]]]:
    """(module path, class name, base names) of every class in airpods/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rpartition(".")[2] for b in node.bases]
                found.append((str(path.relative_to(PACKAGE.parent)), node.name, bases))
    return found


def exception_classes() -> list[tuple[str, str]]:
    """(module path, name) of every exception class airpods defines: a builtin exception or
    one of these among its bases (by name, which is how this code base spells them)."""
    classes = _classes()
    known = set(BUILTIN_ERRORS)
    grew = True
    while grew:
        new = {name for _, name, bases in classes if name not in known and known & set(bases)}
        known |= new
        grew = bool(new)
    return [(path, name) for path, name, _ in classes if name in known - BUILTIN_ERRORS]


def test_every_shared_exception_lives_in_errors_py() -> None:
    """airpods/errors.py draws the tree; only a private one (raised and caught in its module,
    named with `_`) may live elsewhere."""
    outside = sorted(f"{path}: {name}" for path, name in set(exception_classes())
                     if path != "airpods/errors.py" and not name.startswith("_"))
    assert outside == []


def test_no_two_exceptions_share_a_name() -> None:
    names = [name for _, name in set(exception_classes())]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_the_docstring_names_every_class_in_errors_py() -> None:
    import airpods.errors as errors

    drawn = errors.__doc__ or ""
    defined = [name for path, name in set(exception_classes()) if path == "airpods/errors.py"]
    assert len(defined) >= 20
    assert [name for name in defined if f" {name} -" not in drawn] == []


# --- HTTP: airpods/http_clients.py builds every client -----------------------------------------

CONSTRUCTORS = ("httpx.Client(", "httpx.AsyncClient(", "httpx.get(", "httpx.post(",
                "httpx.request(", "httpx.stream(", "LocalHTTP(", "urlopen(", "HTTPConnection(",
                "HTTPSConnection(")


def http_client_sites() -> list[str]:
    """`module: call` for every HTTP client airpods builds (class definitions aside)."""
    sites = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            sites += [f"{path.relative_to(PACKAGE.parent)}:{number}: {call}"
                      for call in CONSTRUCTORS if call in code and "class " not in code]
    return sites


def test_http_clients_are_built_in_one_module() -> None:
    # The modules shipped into the gateway container run inside LiteLLM, where airpods is not
    # installed: the peers poller builds its own (airpods/http_clients.py's table names it).
    outside = [site for site in http_client_sites()
               if not site.startswith(("airpods/http_clients.py:",
                                       "airpods/kinds/gateway_files/airpods_peers.py:"))]
    assert outside == []


# --- Podman: one protocol, the real adapter and the one fake both implement it ----------------


def test_the_adapter_and_the_fake_implement_the_podman_protocol() -> None:
    import inspect

    from airpods.engine.podman import Podman as Adapter
    from airpods.engine.podman_protocol import Podman
    from tests.fake_podman import FakePodman

    members = [name for name, value in vars(Podman).items()
               if callable(value) and not name.startswith("_")]
    assert len(members) >= 20
    adapter = Adapter("unix:///nonexistent/podman.sock")  # connects on first request only
    for implementation in (adapter, FakePodman()):
        assert isinstance(implementation, Podman)
        for name in members:
            want = list(inspect.signature(getattr(Podman, name)).parameters)[1:]
            got = list(inspect.signature(getattr(implementation, name)).parameters)
            assert got == want, f"{type(implementation).__name__}.{name}"


def test_unit_tests_share_one_podman_fake() -> None:
    """No test module defines its own Podman stand-in or replaces cli.context.connect itself:
    tests/fake_podman.py does both, once."""
    tests = PACKAGE.parent / "tests" / "unit"
    own = []
    for path in sorted(tests.glob("*.py")):
        if path.name == Path(__file__).name:
            continue  # the patterns below
        text = path.read_text()
        tree = ast.parse(text)
        own += [f"{path.name}: {node.name}" for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef) and "Podman" in node.name]
        own += [f"{path.name}: patches connect" for line in text.splitlines()
                if "context.connect" in line and "setattr" in line
                or 'context, "connect"' in line]
    assert own == []
