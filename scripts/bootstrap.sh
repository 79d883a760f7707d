#!/usr/bin/env bash
# Idempotent set-up of a pip-only ROS 2 (Kilted wheels) environment for cvpose_ros:
#   1. a virtual environment with the ROS 2 wheels, torch (CPU) and the Python dependencies;
#   2. the interface package cvpose_ros_msgs (and tf2_msgs when missing) built with cmake into the venv;
#   3. the project installed editable.
# Each step records a stamp (hash of its inputs) and is skipped when nothing changed.
# Usage: scripts/bootstrap.sh [--dev]      (--dev also installs test/lint tools)
# Env:   CVPOSE_VENV (default: <repo>/.venv), PYTHON (default: python3.11 or python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CVPOSE_VENV:-$REPO/.venv}"
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMPS="$VENV/.cvpose_stamps"
log() { printf '[bootstrap] %s\n' "$*"; }

hash_of() { cat "$@" | sha1sum | cut -d' ' -f1; }
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

# --- 1. venv and packages ----------------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
req_files=("$REPO/requirements.txt" "$REPO/requirements-build.txt")
[ "$DEV" = 1 ] && req_files+=("$REPO/requirements-dev.txt")
for req in "${req_files[@]}"; do
  name="pip-$(basename "$req")"
  h="$(hash_of "$req")"
  if ! stamp_ok "$name" "$h"; then
    log "installing $(basename "$req")"
    "${PIP[@]}" -r "$req"
    stamp_set "$name" "$h"
  fi
done

if [ "$DEV" = 1 ]; then
  h="$(hash_of "$REPO/requirements-mediapipe.txt")"
  if ! stamp_ok pip-mediapipe "$h"; then
    log "installing requirements-mediapipe.txt (--no-deps)"
    "${PIP[@]}" --no-deps -r "$REPO/requirements-mediapipe.txt"
    stamp_set pip-mediapipe "$h"
  fi
fi

# --- 2. interface packages ---------------------------------------------------------------------------------------
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PYINC="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
# The wheels' cmake files carry the paths of the machine they were built on; point them at this venv.
if ! stamp_ok cmake-paths "$SITE"; then
  log "fixing build paths in the wheels' cmake files"
  grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$VENV/share" --include='*.cmake' 2>/dev/null | while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g; \
s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages#$SITE#g" "$f"
  done
  stamp_set cmake-paths "$SITE"
fi

build_interfaces() {  # $1 = name, $2 = source folder
  local name="$1" src="$2" h
  h="$(cd "$src" && find . -type f \( -name '*.msg' -o -name 'CMakeLists.txt' -o -name 'package.xml' \) | sort | xargs cat | sha1sum | cut -d' ' -f1)"
  if stamp_ok "msgs-$name" "$h"; then return; fi
  log "building interface package $name"
  local build="$VENV/.build/$name"
  rm -rf "$build"
  mkdir -p "$build"
  (
    export CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
    cd "$build"
    cmake "$src" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
      -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF > cmake.log 2>&1 || { cat cmake.log; exit 1; }
    cmake --build . -j "$(nproc)" > build.log 2>&1 || { tail -50 build.log; exit 1; }
    cmake --install . > install.log 2>&1 || { tail -50 install.log; exit 1; }
  )
  # rosidl installs the Python module under <prefix>/local/lib/... on some set-ups; make sure it is importable.
  local pymod
  pymod="$(find "$VENV" -path "$VENV/.build" -prune -o -type d -name "$name" -path '*site-packages*' -print | grep -v "^$SITE/$name\$" | head -1 || true)"
  if [ -n "$pymod" ] && [ ! -e "$SITE/$name" ]; then ln -s "$pymod" "$SITE/$name"; fi
  stamp_set "msgs-$name" "$h"
}
build_interfaces cvpose_ros_msgs "$REPO/msg"
if ! "$VENV/bin/python" -c 'from tf2_msgs.msg import TFMessage' > /dev/null 2>&1; then
  build_interfaces tf2_msgs "$REPO/scripts/compat/tf2_msgs"
fi

# --- 3. the project itself ----------------------------------------------------------------------------------------
h="$(hash_of "$REPO/setup.py" "$REPO/setup.cfg")"
if ! stamp_ok project "$h$REPO"; then
  log "installing cvpose_ros (editable)"
  "${PIP[@]}" --no-deps --no-build-isolation -e "$REPO"
  stamp_set project "$h$REPO"
fi
"$VENV/bin/python" -c 'import rclpy, cvpose_ros_msgs.msg, tf2_msgs.msg, torch, cvpose_ros' \
  || { echo "bootstrap: the environment in $VENV does not import; delete it and run again" >&2; exit 1; }
log "environment ready: $VENV"
