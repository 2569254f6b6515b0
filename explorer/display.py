"""Can Qt show a window here? Checked before Qt starts, because Qt aborts the process when its platform plugin
fails; and what to tell the user when it cannot."""

from __future__ import annotations

import ctypes
import os
import sys

# Debian/Ubuntu packages of the libraries Qt's xcb platform plugin loads, by shared-object name.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
APT_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 "
                "libxcb-xkb1 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libegl1 libgl1 libfontconfig1 libdbus-1-3")
WINDOWLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def display_problem() -> str | None:
    """Why Qt could not open a window here, or None if it should. Checks without starting Qt, because Qt
    aborts the process when its platform plugin fails."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if platform in WINDOWLESS_PLATFORMS or not sys.platform.startswith("linux"):
        return None
    display, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
    if platform == "wayland" or (not platform and wayland and not display):
        return None if wayland else "QT_QPA_PLATFORM is wayland but WAYLAND_DISPLAY is not set"
    if not display:
        return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set"
    missing = []
    for soname, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    if missing:
        return f"libraries Qt needs are missing (Debian/Ubuntu packages: {' '.join(missing)})"
    if not _x_server_reachable(display):
        return f"cannot connect to the X server at DISPLAY={display}"
    return None


def _x_server_reachable(display: str) -> bool:
    xcb = ctypes.CDLL("libxcb.so.1")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        return connection is not None and xcb.xcb_connection_has_error(connection) == 0
    finally:
        if connection is not None:
            xcb.xcb_disconnect(connection)


def no_display_message(problem: str) -> str:
    return (
        f"lstm-explorer cannot open its window: {problem}.\n"
        "On Debian or Ubuntu, install what Qt needs to show windows:\n"
        f"    sudo apt-get install {APT_PACKAGES}\n"
        "Without a screen you can still:\n"
        "    lstm-explorer --screenshot window.png --train 2000   # render the window to a PNG file\n"
        "    xvfb-run lstm-explorer                               # run it on a virtual screen\n"
        "    QT_QPA_PLATFORM=offscreen lstm-explorer              # run it with nothing shown\n"
        "    lstm-explorer train                                  # train in the terminal\n"
    )
