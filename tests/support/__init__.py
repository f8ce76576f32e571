"""Helpers shared by the test modules: import them from here, never from another test module
or from a conftest. Modules that hold fixtures are loaded as plugins by tests/conftest.py."""
