"""The deployment without Modal: what backend/modal_app.py runs in its containers, and
what a rehearsal on any GPU machine runs the same way (benchmarks/rehearsal/stack.py).

- `layout`: where ComfyUI, the models, the LoRAs and the job records live;
- `comfyui`: ComfyUI's command line and its child process;
- `options`: the settings read when deploying, and what the containers are given of them;
- `web`: the web tier's settings and app, with the Volume hooks run for authorised requests;
- `retention`: pruning job records and outputs older than RYLA_RETENTION_DAYS;
- `check`: the first-deploy check (`modal run backend/modal_app.py::check`).
"""
