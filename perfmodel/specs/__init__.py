"""Hardware specs: frozen dataclasses, the TOML loader and the registry of bundled files."""
