"""Targets: the systems splitbrain can test (target.py defines the interface, registry.py finds
one by name, file or plugin). Modules are imported when needed, so importing this is cheap."""
