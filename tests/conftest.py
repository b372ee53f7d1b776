"""Fixtures shared by every test module.

Each area keeps its fixtures in a plugin module of its own, listed here, so that the
ComfyUI test double and the backend server can be used from any test.
"""

pytest_plugins = [
    "tests.comfyui_double.fixtures",
    "tests.backend_fixtures",
    "tests.shared_files",
]
