#!/usr/bin/env bash
# skillcall's one set-up command: system packages (where missing), a virtual environment in .venv, the project
# with its training and test extras. Safe to run again; pip's cache makes a rerun quick.
set -euo pipefail
cd "$(dirname "$0")"

# espeak-ng: spoken replies and the test WAVs; sox: audio checks; libportaudio2: the microphone (sounddevice);
# libsndfile1: WAV/FLAC input; alsa-utils: the virtual-microphone test.
packages=(espeak-ng sox libportaudio2 libsndfile1 alsa-utils)
if command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
else
    echo "install.sh: no apt-get here; install these yourself: ${packages[*]}" >&2
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# llama-cpp-python builds from source; these flags skip parts skillcall does not use (about 7 min on 1 core).
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_CCACHE=OFF}"
.venv/bin/python -m pip install -q -e '.[train,dev]'
echo "skillcall installed: .venv/bin/skillcall --help"
