# Sourced by the scripts: create .venv if missing and install the project into it.
# ensure_venv EXTRA   installs ".[EXTRA]" (re-run when pyproject.toml changes).
ensure_venv() {
    local extra="${1:-}" spec="."
    [ -n "$extra" ] && spec=".[$extra]"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local stamp=".venv/.installed-${extra:-base}"
    # The test install holds the base one: the demo needs no second install after tests.
    if [ -z "$extra" ] && [ -f .venv/.installed-test ] && [ ! pyproject.toml -nt .venv/.installed-test ]; then
        stamp=".venv/.installed-test"
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        # torch==2.13.0 resolves to the local CPU wheel on these machines.
        .venv/bin/python -m pip install --quiet -e "$spec"
        touch "$stamp"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
    # One on-disk kernel cache per checkout, so test processes share compiled code.
    export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.cache/numba}"
}
