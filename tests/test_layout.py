# -*- test-case-name: tests.test_layout -*-
"""
The source tree's conventions that no linter checks: every module's
C{test-case-name} line (what C{trial --testmodule} and editors follow from
a module to its tests) names test modules that exist.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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
