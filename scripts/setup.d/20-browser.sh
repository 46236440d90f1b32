#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian, for the web UI's browser tests
# (tests/webui/test_browser*.py), and a font with Chinese characters for the UI in Chinese (a
# small one: WenQuanYi Micro Hei, 5 MB). Runs as root; skipped when all are already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "20-browser.sh: chromium and chromium-driver are missing and this is not root;" \
       "the browser tests will be skipped (run scripts/setup.sh as root to install them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium chromium-driver fonts-wqy-microhei
