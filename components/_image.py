"""The container image every pipeline component runs in.

Components run the installed project, so their image is the project's image, tagged with
the package version: a pipeline compiled from version X runs the code of version X.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["BASE_IMAGE", "IMAGE_REPOSITORY", "package_version"]

IMAGE_REPOSITORY = "ghcr.io/hydatis/ml-scheduler"
DISTRIBUTION = "hydatis-ml-scheduler"


def package_version() -> str:
    """The installed distribution's version (the source tree's when not installed)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        from hydatis import __version__

        return __version__


BASE_IMAGE = f"{IMAGE_REPOSITORY}:{package_version()}"
