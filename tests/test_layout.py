# -*- test-case-name: tests.test_layout -*-
"""
The source tree's conventions that no linter checks: every module's
C{test-case-name} line (what C{trial --testmodule} and editors follow from
a module to its tests) names test modules that exist; every unit-test
module runs under trial as well as pytest; only the entry points import the
global reactor; no import cycles (import-linter's contracts in
pyproject.toml check the layers); every C{CTDB_SRVID_*} is assigned in
L{ctdb.protocols.srvids} alone.  (That every exception is in
L{ctdb.errors} is tests/test_errors.py's.)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import grimp
from twisted.scripts.trial import getTestModules
from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent

#: the directories of modules whose test-case-name lines are checked
SOURCES = ("ctdb", "scripts", "bench", "twisted", "tests/support")


def namedTestModules(path: Path) -> list[str]:
    """The modules named by C{path}'s test-case-name line, read as trial
    reads it (the first two lines, comma-separated names)."""
    names: list[str] = getTestModules(str(path))
    return [name.strip() for name in names]


def moduleExists(name: str, root: Path = ROOT) -> bool:
    """Whether the dotted module C{name} is a file or package under C{root}."""
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def missingTestModules(root: Path = ROOT) -> list[tuple[str, str]]:
    """(module file, missing test module) for every dangling test-case-name."""
    missing = []
    for directory in SOURCES:
        for path in sorted((root / directory).rglob("*.py")):
            for name in namedTestModules(path):
                if not moduleExists(name, root):
                    missing.append((str(path.relative_to(root)), name))
    return missing


class TestCaseNameTests(SynchronousTestCase):
    """Every test-case-name line points at a test module that exists."""

    def test_allExist(self) -> None:
        """No module of ctdb/, scripts/, bench/, twisted/ or tests/support/
        names a test module that is missing."""
        self.assertEqual(missingTestModules(), [])

    def test_ctdbModulesChecked(self) -> None:
        """The check sees the lines: ctdb/nodes.py names tests.test_nodes."""
        self.assertEqual(
            namedTestModules(ROOT / "ctdb" / "nodes.py"), ["tests.test_nodes"]
        )

    def test_missingFound(self) -> None:
        """Of the names on a line, the one without a module (or package)
        behind it is reported; a file without the line names nothing."""
        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        (root / "ctdb").mkdir()
        (root / "tests" / "sub").mkdir(parents=True)
        (root / "tests" / "__init__.py").write_text("")
        (root / "tests" / "sub" / "__init__.py").write_text("")
        (root / "tests" / "test_there.py").write_text("")
        (root / "ctdb" / "m.py").write_text(
            "# -*- test-case-name: tests.test_there, tests.sub,tests.test_gone -*-\n"
        )
        (root / "ctdb" / "plain.py").write_text('"""No test-case-name."""\n')
        self.assertEqual(missingTestModules(root), [("ctdb/m.py", "tests.test_gone")])


#: the test packages left to pytest alone: the integration suite's modules
#: take pytest fixtures that start real clusters
PYTEST_ONLY: tuple[str, ...] = ()


def unitTestModules(package: str = "tests", root: Path = ROOT) -> list[str]:
    """The dotted names of the C{test_*.py} modules of C{package} (a
    directory under C{root}), but for those under L{PYTEST_ONLY}."""
    names = []
    for path in sorted((root / package).rglob("test_*.py")):
        parts = path.relative_to(root / package).with_suffix("").parts
        if parts[0] not in PYTEST_ONLY:
            names.append(".".join((package, *parts)))
    return names


def trialProblems(name: str) -> list[str]:
    """
    Why trial would miss tests of the module C{name} that pytest runs: it
    defines no C{unittest.TestCase} subclass, or it has module-level
    C{test*} functions or C{Test*} classes that are not TestCases (pytest
    collects those; trial does not).
    """
    module = importlib.import_module(name)
    problems = []
    cases = []
    for attribute, value in sorted(vars(module).items()):
        if inspect.isclass(value):
            if value.__module__ != name:
                continue
            if issubclass(value, unittest.TestCase):
                cases.append(value)
            elif attribute.startswith("Test"):
                problems.append(f"class {attribute} is not a TestCase")
        elif (
            callable(value)
            and attribute.startswith("test")
            and getattr(value, "__test__", True)
        ):
            # (a function marked __test__ = False, such as trial's module
            # hook testSuite, is not a test to either runner)
            problems.append(f"module-level function {attribute}")
    if not cases:
        problems.append("no TestCase subclass")
    return problems


def trialMisses(package: str = "tests", root: Path = ROOT) -> list[tuple[str, str]]:
    """(test module, problem) for every unit-test module trial cannot run
    in full."""
    return [
        (name, problem)
        for name in unitTestModules(package, root)
        for problem in trialProblems(name)
    ]


class TrialTests(SynchronousTestCase):
    """Every test module, the integration suite's included, runs under
    trial as well as pytest: its tests are methods of unittest TestCases."""

    def test_everyModuleRunsUnderTrial(self) -> None:
        """No unit-test module has module-level test functions or pytest-only
        classes, and each defines a TestCase."""
        self.assertEqual(trialMisses(), [])

    def test_modulesChecked(self) -> None:
        """The check sees the test modules of every package, the
        integration suite's included."""
        names = unitTestModules()
        self.assertIn("tests.test_layout", names)
        self.assertIn("tests.protocols.test_packet", names)
        self.assertIn("tests.daemon.test_core", names)
        self.assertIn("tests.integration.test_clustered_samba", names)

    def test_pytestStyleFound(self) -> None:
        """The check reports, in a throwaway package, a module of pytest
        functions, a pytest-style class and a module without a TestCase; a
        TestCase module passes; a module hook marked C{__test__ = False}
        (trial's testSuite) is no test."""
        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        pkg = root / "probetests"
        for directory in (pkg, pkg / "sub", pkg / "integration"):
            directory.mkdir()
            (directory / "__init__.py").write_text("")
        case = "from twisted.trial.unittest import SynchronousTestCase\n"
        (pkg / "test_good.py").write_text(
            f"{case}class GoodTests(SynchronousTestCase):\n"
            "    def test_one(self) -> None:\n        pass\n"
        )
        (pkg / "test_functions.py").write_text(
            f"{case}class T(SynchronousTestCase):\n    pass\n"
            "def testCamel() -> None:\n    pass\n"
        )
        (pkg / "sub" / "test_plain.py").write_text(
            "class TestPlain:\n    def test_one(self) -> None:\n        pass\n"
        )
        (pkg / "integration" / "test_live.py").write_text(
            f"{case}class LiveTests(SynchronousTestCase):\n    pass\n"
            "def testSuite() -> None:\n    pass\n"
            "testSuite.__test__ = False\n"
        )
        sys.path.insert(0, str(root))
        self.addCleanup(sys.path.remove, str(root))
        self.addCleanup(self._forget, "probetests")
        self.assertEqual(
            trialMisses("probetests", root),
            [
                ("probetests.sub.test_plain", "class TestPlain is not a TestCase"),
                ("probetests.sub.test_plain", "no TestCase subclass"),
                ("probetests.test_functions", "module-level function testCamel"),
            ],
        )

    def _forget(self, package: str) -> None:
        """Drop C{package} and its modules from C{sys.modules}."""
        for name in [n for n in sys.modules if n.split(".")[0] == package]:
            del sys.modules[name]


#: the only modules that may import the global reactor: the entry points
REACTOR_IMPORTERS = {"ctdb.tap", "ctdb.ctdbd"}


def reactorImporters(root: Path = ROOT) -> set[str]:
    """The ctdb modules that import C{twisted.internet.reactor}, anywhere
    in the module (a function-level import counts too)."""
    found = set()
    for path in sorted((root / "ctdb").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if "twisted.internet.reactor" in names:
                module = ".".join(path.relative_to(root).with_suffix("").parts)
                found.add(module.removesuffix(".__init__"))
    return found


def importCycles(package: str = "ctdb") -> list[list[str]]:
    """Import cycles between the modules of C{package} (annotation-only
    imports under TYPE_CHECKING not counted), each as a list of modules."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None and module == min([module, *chain]):
                cycles.append([module, *chain])
    return cycles


class LayerTests(SynchronousTestCase):
    """The layer rules that import-linter (pyproject.toml) cannot state."""

    def test_onlyEntryPointsImportReactor(self) -> None:
        """Only ctdb.tap and ctdb.ctdbd import the global reactor; everything
        else is handed one (STYLE.md habit 4)."""
        self.assertEqual(reactorImporters() - REACTOR_IMPORTERS, set())

    def test_noImportCycles(self) -> None:
        """No two ctdb modules import each other, directly or through others."""
        self.assertEqual(importCycles(), [])

    def test_cycleFound(self) -> None:
        """The cycle check sees a cycle: a throwaway package with one."""
        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        pkg = root / "cyclepkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text("from cyclepkg import b\n")
        (pkg / "b.py").write_text("from cyclepkg import a\n")
        (pkg / "c.py").write_text("from cyclepkg import a\n")
        sys.path.insert(0, str(root))
        self.addCleanup(sys.path.remove, str(root))
        self.assertEqual(
            importCycles("cyclepkg"), [["cyclepkg.a", "cyclepkg.b", "cyclepkg.a"]]
        )


#: the one module that defines srvids, and where any other assignment is looked for
SRVIDS_MODULE = Path("ctdb/protocols/srvids.py")
SRVID_SOURCES = ("ctdb", "tests", "bench", "scripts")


def srvidAssignments(root: Path = ROOT) -> list[tuple[str, int, str]]:
    """(file, line, name) of every assignment to a C{CTDB_SRVID_*} name
    (or attribute) outside L{SRVIDS_MODULE}."""
    found = []
    for directory in SRVID_SOURCES:
        for path in sorted((root / directory).rglob("*.py")):
            relative = path.relative_to(root)
            if relative == SRVIDS_MODULE:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = list(node.targets)
                elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                    targets = [node.target]
                for target in targets:
                    for line, name in _assignedNames(target):
                        if name.startswith("CTDB_SRVID_"):
                            found.append((str(relative), line, name))
    return sorted(found)


def _assignedNames(target: ast.expr) -> list[tuple[int, str]]:
    """The (line, name) pairs an assignment target binds: names, attributes
    and the elements of tuples and lists (not what a subscript indexes)."""
    if isinstance(target, ast.Name):
        return [(target.lineno, target.id)]
    if isinstance(target, ast.Attribute):
        return [(target.lineno, target.attr)]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [pair for element in target.elts for pair in _assignedNames(element)]
    if isinstance(target, ast.Starred):
        return _assignedNames(target.value)
    return []


class SrvidTests(SynchronousTestCase):
    """Samba's srvids are written down once (issue 10 item 6)."""

    def test_onlyInSrvidsModule(self) -> None:
        """No module of ctdb/, tests/, bench/ or scripts/ but
        ctdb/protocols/srvids.py assigns a CTDB_SRVID_* name."""
        self.assertEqual(srvidAssignments(), [])

    def test_assignmentFound(self) -> None:
        """The check sees plain, annotated, tuple and attribute assignments
        outside the srvids module, and none inside it."""
        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        (root / "ctdb" / "protocols").mkdir(parents=True)
        (root / "tests").mkdir()
        (root / "ctdb" / "protocols" / "srvids.py").write_text(
            "CTDB_SRVID_ALL = 0xFFFFFFFFFFFFFFFF\n"
        )
        (root / "ctdb" / "m.py").write_text(
            "from ctdb.protocols.srvids import CTDB_SRVID_ALL\n"
            "CTDB_SRVID_LEADER = 0xF101000000000000\n"
            "CTDB_SRVID_X: int = 1\n"
            "uses = {CTDB_SRVID_ALL: 1}\n"
        )
        (root / "tests" / "t.py").write_text(
            "a, CTDB_SRVID_Y = 1, 2\nobj.CTDB_SRVID_Z = 3\nd[CTDB_SRVID_ALL] = 4\n"
        )
        self.assertEqual(
            srvidAssignments(root),
            [
                ("ctdb/m.py", 2, "CTDB_SRVID_LEADER"),
                ("ctdb/m.py", 3, "CTDB_SRVID_X"),
                ("tests/t.py", 1, "CTDB_SRVID_Y"),
                ("tests/t.py", 2, "CTDB_SRVID_Z"),
            ],
        )
