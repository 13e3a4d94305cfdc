"""Package layout only (metadata lives in pyproject.toml).

The build-time code sits in top-level folders of the repo (`converters/`, `models/`,
`benchmarks/`) but installs under the `edgepose` namespace, so site-packages gains no
generic top-level names such as `models`. Sub-packages are discovered, not listed by hand.
"""
from setuptools import find_packages, setup

MAPPED = {
    "edgepose.converters": "converters",
    "edgepose.models": "models",
    "edgepose.benchmarks": "benchmarks",
}

packages = find_packages(include=["edgepose", "edgepose.*"])
package_dir = {"edgepose": "edgepose"}
for namespace, folder in MAPPED.items():
    package_dir[namespace] = folder
    packages += [namespace] + [f"{namespace}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir, include_package_data=True)
