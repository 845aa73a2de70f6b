"""Settings of the optional language-model path for clip memories (`memories.*`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from memory.config import StrictModel


class MemoriesConfig(StrictModel):
    llm_url: str | None = Field(
        None,
        description="An OpenAI-compatible chat completions endpoint (vLLM, llama.cpp's server, Ollama): the full "
        "URL ending in /chat/completions, or its base (http://host:port or http://host:port/v1). None: no model; "
        "clip memories come from the graph only.",
    )
    llm_model: str | None = Field(None, description="The model name sent with each request.")
    llm_key_env: str = Field(
        "STREAMER_LLM_KEY", description="Environment variable holding the endpoint's API key (sent as a bearer token) if set."
    )
    timeout_seconds: float = Field(60.0, gt=0, description="One request gives up after this long.")
    retries: int = Field(2, ge=0, le=10, description="Further tries of a request that failed or timed out.")
    backoff_seconds: float = Field(2.0, ge=0, description="Wait before the first retry; it doubles on each further one.")
    queue_size: int = Field(
        8, ge=1, description="Closed clips waiting for the model; when full the oldest is dropped (and counted)."
    )
    frames_per_clip: int = Field(4, ge=0, le=32, description="Frames of each clip shown to the model, spread over the clip.")
    frame_max_px: int = Field(384, ge=64, le=2048, description="Longer side of the frames sent, in pixels (JPEG).")
    faces_per_clip: int = Field(8, ge=0, le=64, description="Face crops sent per clip, one per person.")
    max_tokens: int = Field(512, ge=16, le=8192, description="Longest answer asked of the model.")
    drain_seconds: float = Field(
        60.0,
        ge=0,
        description="At the end of a run, time given to clips still waiting for the model (at most 10 s after a "
        "signal); the rest are dropped and counted.",
    )

    @model_validator(mode="after")
    def _model_named(self) -> MemoriesConfig:
        if self.llm_url is not None and not self.llm_model:
            raise ValueError("memories.llm_model is required when memories.llm_url is set")
        return self
