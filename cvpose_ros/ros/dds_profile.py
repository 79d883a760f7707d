"""The package's Fast DDS profile for camera images (config/fastdds_images.xml): where it is installed and how a
process adopts it.

Fast DDS reads the file named by FASTDDS_DEFAULT_PROFILES_FILE once, when the process creates its first DDS
participant (rclpy.init / the first node), so `use_default_profile` must run before that. It never replaces a
profile the user chose: either environment variable set (even empty), or a DEFAULT_FASTDDS_PROFILES.xml /
DEFAULT_FASTRTPS_PROFILES.xml in the working directory (which Fast DDS loads on its own), wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

PACKAGE = "cvpose_ros"
PROFILE_NAME = "fastdds_images.xml"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
LEGACY_PROFILE_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"  # Fast DDS 2.x (Humble); still honoured as the user's own
WORKING_DIR_PROFILES = ("DEFAULT_FASTDDS_PROFILES.xml", "DEFAULT_FASTRTPS_PROFILES.xml")


def shipped_profile() -> Path | None:
    """Path of the installed profile: the package's share folder (ament index, then this interpreter's prefix),
    else the source tree's config/ (editable installs); None when none exists."""
    candidates: list[Path] = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / PROFILE_NAME)
        except (PackageNotFoundError, OSError):  # not indexed, or no AMENT_PREFIX_PATH (a plain venv)
            pass
    except ImportError:  # plain Python without the ROS index
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "config" / PROFILE_NAME)
    candidates.append(Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME)
    return next((path for path in candidates if path.is_file()), None)


def user_profile(environ: MutableMapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """What the user chose for Fast DDS already (an environment variable or a working-directory file), or None."""
    environ = os.environ if environ is None else environ
    for name in (PROFILE_ENV, LEGACY_PROFILE_ENV):
        if name in environ:
            return f"{name}={environ[name]}"
    folder = Path.cwd() if cwd is None else cwd
    for name in WORKING_DIR_PROFILES:
        if (folder / name).is_file():
            return str(folder / name)
    return None


def profile_to_set(explicit: str = "", environ: MutableMapping[str, str] | None = None,
                   cwd: Path | None = None) -> str | None:
    """The profile a launch file should give its processes: `explicit` (its dds_profile argument) when set, else
    the shipped one unless the user chose one; None = leave the environment alone."""
    if explicit:
        return explicit
    environ = os.environ if environ is None else environ
    if user_profile(environ, cwd) is not None:
        return None
    path = shipped_profile()
    return None if path is None else str(path)


def launch_actions() -> list:
    """Launch actions that give every process started after them (nodes, included camera drivers) the profile:
    a `dds_profile` argument ('' = the user's FASTDDS_DEFAULT_PROFILES_FILE if set, else the package's) and the
    action that sets FASTDDS_DEFAULT_PROFILES_FILE. Put them before the nodes of a launch description."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration

    def set_profile(context) -> list:
        explicit = LaunchConfiguration("dds_profile").perform(context)
        path = profile_to_set(explicit, getattr(context, "environment", os.environ))
        return [] if path is None else [SetEnvironmentVariable(PROFILE_ENV, path)]

    argument = DeclareLaunchArgument(
        "dds_profile", default_value="",
        description=f"Fast DDS profile file for every process of this launch; empty = {PROFILE_ENV} when set, "
                    f"else the package's config/{PROFILE_NAME} (large images without loss)")
    return [argument, OpaqueFunction(function=set_profile)]


def use_default_profile(environ: MutableMapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Point FASTDDS_DEFAULT_PROFILES_FILE at the shipped profile unless the user chose one; returns the path set
    (None when the user's choice stands or no profile is installed). Call before rclpy.init."""
    environ = os.environ if environ is None else environ
    path = profile_to_set("", environ, cwd)
    if path is not None:
        environ[PROFILE_ENV] = path
    return path


def main() -> int:
    """`python -m cvpose_ros.ros.dds_profile`: print the installed profile's path (for `export ...=$(...)`)."""
    path = shipped_profile()
    if path is None:
        print("cvpose_ros: config/fastdds_images.xml is not installed", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
