#!/usr/bin/env bash
# Set up khfsm on a fresh Debian/Ubuntu machine: a virtual environment in .venv with the
# package installed (editable) and, with --test, the system packages the test suite drives
# (GStreamer's RTSP server for a real IP camera, Chromium and its chromedriver for the browser
# tests in tests/browser).
#
#   scripts/setup.sh            runtime only (CPU ONNX Runtime)
#   scripts/setup.sh --test     runtime + dev tools + test system packages
#   KHFSM_ONNX=gpu scripts/setup.sh   onnxruntime-gpu instead of the CPU build (CUDA machines)
#
# Offline once set up: the install writes .venv/.khfsm-installed (the hash of pyproject.toml,
# the Python version and the extras installed). While that stamp matches and covers the
# extras asked for, nothing is installed (no pip, no network): an exam site's server has no
# package index. Changing pyproject.toml (or asking for another extra) reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1
onnx_extra="${KHFSM_ONNX:-cpu}"
case "$onnx_extra" in cpu|gpu) ;; *) echo "KHFSM_ONNX must be cpu or gpu" >&2; exit 2 ;; esac

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [[ $want_test == 1 ]]; then
  # The RTSP camera helper runs on Debian's own python3 with GStreamer's RTSP server.
  apt_packages=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav chromium chromium-driver)
  missing=()
  for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if (( ${#missing[@]} )); then
    log "installing system packages: ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "khfsm needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
  exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$python" -m venv .venv
fi
extras="$onnx_extra"
[[ $want_test == 1 ]] && extras="$extras,dev"

stamp=.venv/.khfsm-installed
project_hash="$(sha256sum pyproject.toml | cut -d' ' -f1) $(.venv/bin/python -c \
  'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
if [[ -f $stamp ]]; then
  read -r stamped_hash stamped_python stamped_extras < "$stamp" || true
  covered=1
  for extra in ${extras//,/ }; do
    [[ ",$stamped_extras," == *",$extra,"* ]] || covered=0
  done
  if [[ "$stamped_hash $stamped_python" == "$project_hash" && $covered == 1 ]]; then
    log ".venv is set up for this pyproject.toml (khfsm[$stamped_extras]): nothing to install"
    exit 0
  fi
  # Installing more extras keeps the ones already there.
  for extra in ${stamped_extras//,/ }; do
    [[ ",$extras," == *",$extra,"* || $extra == cpu || $extra == gpu ]] || extras="$extras,$extra"
  done
fi
rm -f "$stamp"  # a failed install must not leave a stamp that says it succeeded
log "installing khfsm[$extras] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
# onnxruntime and onnxruntime-gpu ship the same module and overwrite each other: keep one.
other=$([[ $onnx_extra == cpu ]] && echo onnxruntime-gpu || echo onnxruntime)
if .venv/bin/python -m pip show -q "$other" >/dev/null 2>&1; then
  log "removing $other (only one ONNX Runtime build may be installed)"
  .venv/bin/python -m pip uninstall -q -y "$other" onnxruntime onnxruntime-gpu
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
fi
echo "$project_hash $extras" > "$stamp"
