"""Build payhub's optional compiled fast paths; everything else is in pyproject.toml.

``payhub._speedups`` is optional: where no C compiler is at hand the build
warns and goes on, and payhub runs on the pure-Python twins of each function.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("payhub._speedups", ["payhub/_speedups.c"], optional=True)],
)
