# Sourced by the README's commands: make (or reuse) a project-local virtual
# environment and install the project into it.  Never touches the system
# Python's packages.
#   use_venv DIR EXTRAS [CONSTRAINTS]   sets $PY to DIR's python, puts DIR/bin first on PATH
# CONSTRAINTS is a pip constraints file (the lowest-version run uses one).
# The install runs again only when pyproject.toml, the extras or the
# constraints change (a stamp file in DIR remembers what was installed).

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian packages named in $@ that are missing.
apt_need() {
    [ $# -gt 0 ] || return 0
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

use_venv() {
    local dir=$1 extras=$2 constraints=${3:-}
    if [ ! -x "$dir/bin/python" ]; then
        # Debian's own python3 has venv only with python3-venv installed
        if ! python3 -m venv "$dir" 2>/dev/null; then
            rm -rf "$dir"
            local ver
            ver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt_need "python$ver-venv"
            python3 -m venv "$dir"
        fi
    fi
    PY="$dir/bin/python"
    # as if activated: programs the tests start (python3, pyright) are the venv's
    export VIRTUAL_ENV="$PWD/$dir" PATH="$PWD/$dir/bin:$PATH"
    local stamp
    stamp="$(cat pyproject.toml $constraints | sha256sum | cut -c1-16) [$extras] $constraints"
    if [ "$(cat "$dir/.adapt-installed" 2>/dev/null)" != "$stamp" ]; then
        "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
        "$PY" -m pip install -q --disable-pip-version-check -e ".[$extras]" \
            ${constraints:+--constraint "$constraints"}
        echo "$stamp" > "$dir/.adapt-installed"
    fi
}
