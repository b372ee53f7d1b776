"""The Flux tab: text to image with a choice of model (Flux Dev, Flux Schnell or Z-Image
Turbo), batches, fixed or random seeds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
from pydantic import BaseModel

from ui.studio.action import ActionPanel, JobsTab
from ui.studio.batch import GENERATION_EVENT, PRIVATE, Batch, generate_batch
from ui.studio.fields import Field, Values, by_name, inputs, place, request_values, stored
from ui.studio.problems import Notice
from ui.studio.seeds import parse_seed, seed_field, seed_text
from ui.studio.sizes import size_field
from workflows.registry import ROUTES
from workflows.request_models import FluxDevRequest

# The model selector: choice -> route (workflows/registry.py). The first is the default.
MODEL_ROUTES: dict[str, str] = {"Dev": "/flux-dev", "Schnell": "/flux", "Z-Image Turbo": "/z-image"}
# Request fields a model takes but does nothing with: their controls are disabled and the
# model's default is sent (Schnell is distilled to run without guidance).
UNUSED_FIELDS: dict[str, tuple[str, ...]] = {"Schnell": ("guidance",)}

FIELDS: tuple[Field, ...] = (
    Field("prompt", "text", FluxDevRequest, label="Prompt",
          options={"lines": 3, "placeholder": "a portrait photo of ..."}),
    Field("negative_prompt", "text", FluxDevRequest, elem="negative", options={"lines": 2}),
    size_field(row="model"),
    Field("steps", "slider", FluxDevRequest, row="sampling"),
    Field("guidance", "slider", FluxDevRequest, step=0.1, row="sampling"),
    seed_field(row="seed"),
    Field("model", "radio", choices=tuple(MODEL_ROUTES), value=next(iter(MODEL_ROUTES)),
          label="Model", row="model"),
    Field("batch", "slider", value=1, minimum=1, maximum=8, step=1, label="Batch count",
          cast=lambda value: int(value or 1)),
    Field("mode", "radio", FluxDevRequest, label="Mode", row="model",
          help="fast: faster, may differ slightly"),
)


def used(choice: str | None, name: str) -> bool:
    """Whether the chosen model does something with request field `name`."""
    return (name in request_model(choice).model_fields
            and name not in UNUSED_FIELDS.get(str(choice), ()))


def request_model(choice: str | None) -> type[BaseModel]:
    route = MODEL_ROUTES.get(str(choice), next(iter(MODEL_ROUTES.values())))
    return ROUTES[route].request_model


class FluxTab(JobsTab):
    kind, title = "flux", "Flux Dev"

    FIELDS = FIELDS

    def _generate(self, values: Values, session: str | None) -> Iterator[dict[Any, Any]]:
        params = {"tab": self.kind, **stored(self.fields, values)}
        model = request_model(params.get("model"))
        fields = {name: value for name, value in request_values(params, model).items()
                  if used(params.get("model"), name)}

        def make(image_seed: int | None) -> BaseModel:
            return model(**{**fields, "seed": image_seed})

        batch: Batch = generate_batch(self.client, self.history, self.kind, make,
                                      params.get("seed"), params.get("batch", 1), params,
                                      self.running, session, self.gpu)
        for gallery, rows, seed, line in batch:
            yield {self.gallery: gallery, self.details: rows, self.panel.progress: line,
                   **({self.last_seed: seed_text(seed)} if seed is not None else {})}

    @staticmethod
    def reuse_seed(last_seed: str | None) -> str:
        """Fix the seed to the last image's, exactly as the backend reported it."""
        if parse_seed(last_seed) is None:
            raise gr.Error("no image generated yet: generate once, then reuse its seed",
                           title="No seed to reuse")
        return seed_text(parse_seed(last_seed))

    def sampling_defaults(self, choice: str) -> list[Any]:
        """On picking a model: its own defaults for the sliders it has (Schnell: 4 steps, no
        guidance; Z-Image Turbo: 8 steps), and a slider it has no field for disabled."""
        model = request_model(choice)
        return [gr.update(value=model.model_fields[f.name].default, interactive=used(choice, f.name))
                if f.name in model.model_fields else gr.update(interactive=False)
                for f in self._model_fields("slider")]

    def slider_states(self, choice: str) -> list[Any]:
        """Whichever way the model changed (picked, or restored from history): a slider or
        choice the model has no field for (Z-Image Turbo's guidance and mode) is disabled,
        its value not sent. Values stay as they are, so restored settings are kept."""
        return [gr.update(interactive=used(choice, f.name))
                for f in self._model_fields("slider", "radio")]

    def _model_fields(self, *widgets: str) -> list[Field]:
        """The fields of these widget kinds that fill a request field."""
        return [f for f in self.fields if f.widget in widgets and f.model is not None]

    # -- layout and events -------------------------------------------------------------

    def build(self) -> None:
        with gr.Row():
            with gr.Column(scale=2):
                self.made = place(self.fields, "flux", extras={"seed": self._reuse_button})
                self.panel = ActionPanel.build("flux", "Generate")
                self.run = self.panel.run
                self.notice = Notice.build("flux")
            with gr.Column(scale=3):
                self.gallery = gr.Gallery(label="Results", columns=2, height=520,
                                          object_fit="contain", elem_id="flux-gallery",
                                          interactive=False)
                self.details = gr.Dataframe(headers=["#", "seed", "timings"],
                                            label="Seeds and timings", interactive=False,
                                            elem_id="flux-details", wrap=True)
                self.last_seed = gr.Textbox(label="Last seed", interactive=False,
                                            elem_id="flux-last-seed")

    def _reuse_button(self) -> None:
        self.reuse = gr.Button("Reuse last seed", size="sm", elem_id="flux-reuse")

    def wire(self, tabs: gr.Tabs) -> None:
        names = [f.name for f in self.fields]
        generation = self.run.click(
            by_name(self.generate, names, session=True), inputs=inputs(self.fields, self.made),
            outputs=[self.gallery, self.details, self.last_seed, *self.notice.outputs,
                     *inputs(self.fields, self.made), self.panel.progress],
            api_name="generate_flux", show_progress="hidden", **GENERATION_EVENT)
        self.panel.wire(self.running, generation)
        self.reuse.click(self.reuse_seed, inputs=self.last_seed, outputs=self.made["seed"],
                         api_name="reuse_seed")
        if "model" in self.made:
            sliders = [self.made[f.name] for f in self._model_fields("slider")]
            # `input` is the user's pick only: "use these settings again" also changes the
            # model, and must not reset the steps it restores to the model's default.
            self.made["model"].input(self.sampling_defaults, inputs=self.made["model"],
                                     outputs=sliders, **PRIVATE)
            choices = [self.made[f.name] for f in self._model_fields("slider", "radio")]
            self.made["model"].change(self.slider_states, inputs=self.made["model"],
                                      outputs=choices, **PRIVATE)


