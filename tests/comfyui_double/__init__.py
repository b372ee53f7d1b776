"""A ComfyUI test double: a real HTTP + WebSocket server that answers like ComfyUI 0.12.1
as recorded in tests/data/comfyui/api_examples.md. A test tool only, never a product part.

- server.py: `ComfyUIDouble` (start/stop, queue, history, fault injection) and the routes;
- executor.py: how a validated graph is "executed" (no model runs; real output files);
- wire.py: ComfyUI's JSON bodies and WebSocket messages;
- fixtures.py: the pytest fixtures `comfyui_double` and `comfyui_double_session`.
"""

from tests.comfyui_double.server import ComfyUIDouble, Job

__all__ = ["ComfyUIDouble", "Job"]
