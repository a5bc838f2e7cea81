"""
Build of txctdb's one compiled module, C{ctdb.database._tdbc} (the cffi
half of the libtdb binding; see ctdb/database/_tdbc_build.py).  Everything
else is in setup.cfg.  The module is optional: where libtdb-dev or a C
compiler is missing the install goes on without it, and the daemon uses
the ctypes binding alone.
"""

import os
import runpy

from setuptools import setup


def extensions() -> list:
    try:
        import cffi  # noqa: F401
    except ImportError:
        return []
    here = os.path.dirname(os.path.abspath(__file__))
    build = runpy.run_path(os.path.join(here, "ctdb", "database", "_tdbc_build.py"))
    ext = build["ffibuilder"].distutils_extension(tmpdir=os.path.join("build", "cffi"))
    ext.optional = True
    return [ext]


setup(ext_modules=extensions())
