"""Maps the top-level folders onto subpackages of `cuesmith`.

pyproject.toml holds the metadata and the package-dir mapping; only the list
of packages lives here, because setuptools' `find` cannot rename folders.
"""
from setuptools import find_packages, setup

ROOMS = ("engine", "plugin_bridge", "gui", "exporters", "models")

packages = [
    "cuesmith." + name
    for name in find_packages(include=[f"{room}*" for room in ROOMS])
]
setup(packages=packages)
