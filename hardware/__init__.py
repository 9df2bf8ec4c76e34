"""Bundled hardware spec files (TOML). Shipped in the wheel as ``perfmodel._hardware``; see README.md."""
