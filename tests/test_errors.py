# -*- test-case-name: tests.test_errors -*-
"""
Tests for L{ctdb.errors}: every exception of txctdb is defined there and
derives from L{CTDBError} (issue 10 item 6), keeping the builtin bases its
callers catch it by.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from ctdb import client, errors
from ctdb.database import tdb
from ctdb.errors import CTDBError

ROOT = Path(__file__).resolve().parent.parent


def _resolve(expr: ast.expr, namespace: dict[str, Any]) -> object:
    """What a base-class expression (C{Name} or dotted C{Attribute}) names
    in a module's namespace or the builtins, or None."""
    if isinstance(expr, ast.Name):
        if expr.id in namespace:
            return namespace[expr.id]
        return getattr(builtins, expr.id, None)
    if isinstance(expr, ast.Attribute):
        owner = _resolve(expr.value, namespace)
        return None if owner is None else getattr(owner, expr.attr, None)
    return None


def _isException(
    base: ast.expr, namespace: dict[str, Any], localExceptions: set[str]
) -> bool:
    if isinstance(base, ast.Name) and base.id in localExceptions:
        return True
    value = _resolve(base, namespace)
    return inspect.isclass(value) and issubclass(value, BaseException)


def definedExceptions(
    package: str = "ctdb", root: Path = ROOT
) -> list[tuple[str, str]]:
    """
    (module, class) of every class in C{package} (a directory under
    C{root}) that derives from C{BaseException}, anywhere in a module:
    at the top, in a class or in a function.  A base counts if the module
    (imported) or the builtins name an exception by it, or if it is a class
    of the same file found to be one.
    """
    found = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if not classes:
            continue
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        module: ModuleType = importlib.import_module(name)
        namespace = vars(module)
        local: set[str] = set()
        # a class may derive from one defined below it: repeat to a fixpoint
        changed = True
        while changed:
            changed = False
            for node in classes:
                if node.name not in local and any(
                    _isException(base, namespace, local) for base in node.bases
                ):
                    local.add(node.name)
                    found.append((name, node.name))
                    changed = True
    return sorted(found)


def _forget(package: str) -> None:
    """Drop C{package} and its modules from C{sys.modules}."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            del sys.modules[name]


class OneModuleTests(SynchronousTestCase):
    """Every exception class of ctdb/ is in ctdb/errors.py."""

    def test_noneElsewhere(self) -> None:
        """No module of ctdb/ but ctdb.errors defines an exception class."""
        self.assertEqual(
            [(m, c) for m, c in definedExceptions() if m != "ctdb.errors"], []
        )

    def test_errorsSeen(self) -> None:
        """The check sees the classes of ctdb.errors (so it would see them
        anywhere)."""
        found = {c for m, c in definedExceptions() if m == "ctdb.errors"}
        self.assertIn("CTDBError", found)
        self.assertIn("MalformedPacket", found)
        self.assertIn("TDBError", found)

    def test_found(self) -> None:
        """A throwaway package: exceptions at the top, in a class, in a
        function, through a dotted base and through a class of the same
        file are all found; plain classes are not."""
        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        pkg = root / "errpkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "errors.py").write_text("class Base(Exception):\n    pass\n")
        (pkg / "other.py").write_text(
            "import json\n"
            "from errpkg import errors\n"
            "class Plain:\n"
            "    class Nested(KeyError):\n"
            "        pass\n"
            "class Early(ValueError):\n"
            "    pass\n"
            "class Later(Early):\n"
            "    pass\n"
            "def f():\n"
            "    class Inner(OSError):\n"
            "        pass\n"
            "    class Deeper(Inner):\n"
            "        pass\n"
            "class Dotted(json.JSONDecodeError):\n"
            "    pass\n"
            "class FromErrors(errors.Base):\n"
            "    pass\n"
            "class NotOne(Plain):\n"
            "    pass\n"
        )
        sys.path.insert(0, str(root))
        self.addCleanup(sys.path.remove, str(root))
        self.addCleanup(_forget, "errpkg")
        self.assertEqual(
            definedExceptions("errpkg", root),
            [
                ("errpkg.errors", "Base"),
                ("errpkg.other", "Deeper"),
                ("errpkg.other", "Dotted"),
                ("errpkg.other", "Early"),
                ("errpkg.other", "FromErrors"),
                ("errpkg.other", "Inner"),
                ("errpkg.other", "Later"),
                ("errpkg.other", "Nested"),
            ],
        )


class HierarchyTests(SynchronousTestCase):
    """The exceptions of ctdb.errors share one base and keep their others."""

    def test_oneBase(self) -> None:
        """Every exception class of ctdb.errors derives from CTDBError."""
        classes = [
            value
            for value in vars(errors).values()
            if inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == errors.__name__
        ]
        self.assertGreater(len(classes), 10)
        self.assertEqual(
            [c.__name__ for c in classes if not issubclass(c, CTDBError)], []
        )

    def test_builtinBases(self) -> None:
        """Callers that catch a builtin still catch ours."""
        self.assertTrue(issubclass(errors.MalformedPacket, ValueError))
        self.assertTrue(issubclass(errors.ConfigError, ValueError))
        self.assertTrue(issubclass(errors.ConfigLoadError, errors.ConfigError))
        self.assertTrue(issubclass(errors.ControlTimeout, TimeoutError))
        self.assertTrue(issubclass(errors.ConnectionClosed, ConnectionError))
        self.assertTrue(issubclass(errors.TDBUnavailable, ImportError))
        self.assertTrue(issubclass(errors.FetchLockError, errors.ClientError))

    def test_publicNames(self) -> None:
        """The client API and the TDB handle still export their errors."""
        self.assertIs(client.FetchLockError, errors.FetchLockError)
        self.assertIs(client.TransactionError, errors.TransactionError)
        self.assertIs(client.ClientError, errors.ClientError)
        self.assertIs(tdb.TDBError, errors.TDBError)
        self.assertIs(tdb.TDBUnavailable, errors.TDBUnavailable)

    def test_tdbErrorText(self) -> None:
        """TDBError names the libtdb code by the name it is given, else by
        number."""
        self.assertEqual(
            str(
                errors.TDBError(
                    "tdb_store",
                    "Record exists",
                    5,
                    path="/x",
                    codeName="TDB_ERR_EXISTS",
                )
            ),
            "tdb_store (/x): Record exists [TDB_ERR_EXISTS]",
        )
        self.assertEqual(str(errors.TDBError("tdb_store", "m", 5)), "tdb_store: m [5]")
        self.assertEqual(str(errors.TDBError("tdb", "closed")), "tdb: closed")
