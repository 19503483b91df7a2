"""Build the checker's compiled core where a C compiler exists; without one the extension is
skipped (optional=True) and the checker runs its pure-Python engine (`splitbrain check --json`
says which ran)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("splitbrain._core", ["src/splitbrain/_core.c"],
                             optional=True, extra_compile_args=["-O2"])])
