"""Windows version resource of featherweight.exe, built from the package's name and version.

Used by featherweight.spec on Windows (``EXE(version=...)``); the values show in Explorer's
file properties. PyInstaller's versioninfo module needs ``pefile``, which PyInstaller installs
on Windows only, so ``version_info`` is called there only.
"""

from __future__ import annotations

from typing import Any


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """'0.1.0' -> (0, 1, 0, 0); non-numeric parts (e.g. '0.2.0rc1') count as their digits."""
    parts = []
    for piece in version.split(".")[:4]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple((parts + [0, 0, 0, 0])[:4])  # type: ignore[return-value]


def version_info(app_name: str, version: str, exe_name: str) -> Any:
    """A ``PyInstaller.utils.win32.versioninfo.VSVersionInfo`` for the app's executable."""
    from PyInstaller.utils.win32.versioninfo import (
        FixedFileInfo,
        StringFileInfo,
        StringStruct,
        StringTable,
        VarFileInfo,
        VarStruct,
        VSVersionInfo,
    )

    nums = version_tuple(version)
    return VSVersionInfo(
        ffi=FixedFileInfo(
            filevers=nums,
            prodvers=nums,
            mask=0x3F,
            flags=0x0,
            OS=0x40004,
            fileType=0x1,
            subtype=0x0,
            date=(0, 0),
        ),
        kids=[
            StringFileInfo(
                [
                    StringTable(
                        "040904B0",  # U.S. English, Unicode
                        [
                            StringStruct("CompanyName", f"The {app_name} authors"),
                            StringStruct("FileDescription", f"{app_name} model compressor"),
                            StringStruct("FileVersion", version),
                            StringStruct("InternalName", exe_name),
                            StringStruct("LegalCopyright", "Apache-2.0"),
                            StringStruct("OriginalFilename", f"{exe_name}.exe"),
                            StringStruct("ProductName", app_name),
                            StringStruct("ProductVersion", version),
                        ],
                    )
                ]
            ),
            VarFileInfo([VarStruct("Translation", [0x0409, 1200])]),
        ],
    )
