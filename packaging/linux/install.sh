#!/usr/bin/env bash
# Install Featherweight into the user's desktop (no root needed):
#   - a launcher  ~/.local/bin/featherweight  -> the bundle's executable
#   - a menu entry ~/.local/share/applications/featherweight.desktop
#   - icons in the hicolor theme (apps and the project-file MIME icon)
#   - the MIME type application/x-featherweight-project (*.fwproj), opened by Featherweight
#
# Usage:
#   install.sh [--bundle DIR] [--prefix DIR]      install (DIR defaults: see below)
#   install.sh --uninstall [--prefix DIR]          remove everything install.sh put there
#
# --bundle: the folder holding the `featherweight` executable. Default: the folder this script
#   sits in (the bundle ships it as featherweight/install.sh), else ../../dist/featherweight
#   (running it from a source checkout after packaging/build). The bundle is used in place:
#   move it where it should live first, and rerun install.sh after moving it.
# --prefix: default ${XDG_DATA_HOME%/share} i.e. ~/.local.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${HOME}/.local"
bundle=""
action=install

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

share="$prefix/share"
manifest="$share/featherweight/install-manifest.txt"
mime_type="application/x-featherweight-project"
mime_icon="application-x-featherweight-project"

refresh_caches() {
  if command -v update-mime-database >/dev/null; then
    update-mime-database "$share/mime" >/dev/null 2>&1 || true
  fi
  if command -v update-desktop-database >/dev/null; then
    update-desktop-database "$share/applications" >/dev/null 2>&1 || true
  fi
  if command -v gtk-update-icon-cache >/dev/null && [ -f "$share/icons/hicolor/index.theme" ]; then
    gtk-update-icon-cache -f -t -q "$share/icons/hicolor" >/dev/null 2>&1 || true
  fi
}

uninstall() {
  if [ ! -f "$manifest" ]; then
    echo "Featherweight is not installed under $prefix (no $manifest)." >&2
    exit 1
  fi
  while IFS= read -r f; do
    [ -n "$f" ] && rm -f -- "$f"
  done < "$manifest"
  rm -f -- "$manifest"
  rmdir -- "$share/featherweight" 2>/dev/null || true
  if command -v xdg-mime >/dev/null; then
    # Drop our default-application line (xdg-mime has no "unset").
    sed -i "\|^$mime_type=featherweight.desktop;*$|d" \
      "${XDG_CONFIG_HOME:-$HOME/.config}/mimeapps.list" 2>/dev/null || true
  fi
  refresh_caches
  echo "Featherweight removed from $prefix."
}

find_bundle() {
  if [ -n "$bundle" ]; then
    :
  elif [ -x "$here/featherweight" ]; then
    bundle="$here"
  elif [ -x "$here/../../dist/featherweight/featherweight" ]; then
    bundle="$here/../../dist/featherweight"
  else
    echo "install.sh: no bundle found; build it with packaging/build or pass --bundle DIR" >&2
    exit 2
  fi
  bundle="$(cd "$bundle" && pwd)"
  if [ ! -x "$bundle/featherweight" ]; then
    echo "install.sh: $bundle/featherweight is not an executable" >&2
    exit 2
  fi
}

# The icons and the .desktop/MIME sources: next to this script, or in a source checkout.
find_sources() {
  icons=""
  for d in "$bundle/_internal/resources/icons" "$here/../../resources/icons"; do
    if [ -f "$d/featherweight-48.png" ]; then icons="$(cd "$d" && pwd)"; break; fi
  done
  [ -n "$icons" ] || { echo "install.sh: icons not found" >&2; exit 2; }
  for f in featherweight.desktop featherweight-mime.xml; do
    [ -f "$here/$f" ] || { echo "install.sh: $here/$f is missing" >&2; exit 2; }
  done
}

put() {  # put SRC DEST: copy one file and record it in the manifest
  mkdir -p "$(dirname "$2")"
  cp -f -- "$1" "$2"
  echo "$2" >> "$manifest.new"
}

install() {
  find_bundle
  find_sources
  mkdir -p "$share/featherweight"
  : > "$manifest.new"

  mkdir -p "$prefix/bin"
  ln -sfn "$bundle/featherweight" "$prefix/bin/featherweight"
  echo "$prefix/bin/featherweight" >> "$manifest.new"

  for size in 16 32 48 64 128 256 512; do
    put "$icons/featherweight-$size.png" "$share/icons/hicolor/${size}x${size}/apps/featherweight.png"
    put "$icons/featherweight-$size.png" \
      "$share/icons/hicolor/${size}x${size}/mimetypes/$mime_icon.png"
  done
  put "$icons/featherweight.svg" "$share/icons/hicolor/scalable/apps/featherweight.svg"

  desktop="$share/applications/featherweight.desktop"
  mkdir -p "$share/applications"
  sed -e "s|^Exec=.*|Exec=\"$bundle/featherweight\" %f|" \
      -e "s|^Icon=.*|Icon=featherweight|" \
      -e "/^# install.sh replaces/d" \
      "$here/featherweight.desktop" > "$desktop"
  echo "$desktop" >> "$manifest.new"

  put "$here/featherweight-mime.xml" "$share/mime/packages/featherweight.xml"

  sort -u "$manifest.new" > "$manifest"
  rm -f "$manifest.new"
  refresh_caches
  if command -v xdg-mime >/dev/null; then
    xdg-mime default featherweight.desktop "$mime_type" || true
  fi
  echo "Featherweight installed: menu entry $desktop, launcher $prefix/bin/featherweight"
  echo "(runs $bundle/featherweight; .fwproj files open with it)."
  echo "Remove with: $0 --uninstall"
}

"$action"
