"""`ryla-studio`, the Gradio studio: one module per tab (its field spec, layout, behaviour
and wiring), the field machinery they share (fields.py), local history (history.py) and
the entry point (app.py). Every backend call goes through ui.client.RylaClient."""
