# Sourced by scripts/test: the Prometheus server and promtool the tests run
# (tests/deploy/test_deploy.py, test_prometheus_scrape.py).
# ensure_prometheus   installs the Debian package "prometheus" when either is missing.
ensure_prometheus() {
    if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "prometheus and promtool are needed by the tests: install Prometheus (2.x)" >&2
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "== installing prometheus (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        prometheus >/dev/null
    # The tests start their own server on a free port; a system one is not wanted.
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
}
