#!/usr/bin/env bash
# Installs with apt what the platform needs from the system and is missing:
# Tesseract with the Russian and Belarusian models, PostgreSQL server binaries,
# Python's venv module, and Chromium (the tests open report.html in it through
# Playwright, which is pointed at /usr/bin/chromium and never downloads a browser).
set -euo pipefail

missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
if command -v tesseract >/dev/null 2>&1; then
    langs=$(tesseract --list-langs 2>/dev/null || true)
    grep -qx rus <<<"$langs" || missing+=(tesseract-ocr-rus)
    grep -qx bel <<<"$langs" || missing+=(tesseract-ocr-bel)
else
    missing+=(tesseract-ocr-rus tesseract-ocr-bel)
fi
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing system packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "run as root, or install: apt-get install ${missing[*]}" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
