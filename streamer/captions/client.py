"""One OpenAI-compatible chat completions endpoint, called with time-outs, retries and backoff.

A request that carries images and is refused (an HTTP error, not a time-out) is tried again at once
without them; when that works the endpoint is taken for a text-only model from then on, and the
log says so once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .config import MemoriesConfig

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429}  # besides 5xx: worth another try


@dataclass
class CallStats:
    requests: int = 0
    timeouts: int = 0  # attempts that ran past timeout_seconds
    errors: int = 0  # attempts refused or unreachable
    retries: int = 0


class EndpointError(Exception):
    """A request failed for good (after its retries)."""


class _Refused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


def chat_url(url: str) -> str:
    """The chat completions URL of an endpoint given in full or by its base."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


def endpoint_host(url: str) -> str:
    """host:port of the endpoint, without credentials or path (what provenance keeps)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


class ChatClient:
    def __init__(self, cfg: MemoriesConfig) -> None:
        assert cfg.llm_url is not None and cfg.llm_model is not None  # checked by the config
        self.cfg = cfg
        self.url = chat_url(cfg.llm_url)
        self.host = endpoint_host(cfg.llm_url)
        self.text_only = False  # set once the endpoint refused images
        self.stats = CallStats()
        self._session: aiohttp.ClientSession | None = None
        key = os.environ.get(cfg.llm_key_env)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, messages: list[dict[str, Any]], text_messages: list[dict[str, Any]]) -> tuple[str, str, bool]:
        """The model's answer to `messages` (with images), or to `text_messages` for a text-only endpoint:
        (text, the model's name as the server gives it, whether images were sent). EndpointError when every try failed."""
        delay = self.cfg.backoff_seconds
        last: Exception | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                delay *= 2
            images = not self.text_only and messages is not text_messages
            try:
                try:
                    text, model = await self._post(messages if images else text_messages)
                except _Refused as e:
                    if not images:
                        raise
                    text, model = await self._post(text_messages)  # the images may be what it refused
                    images = False
                    self.text_only = True
                    log.warning("%s refused images (%s); sending it text only from now on", self.host, e)
                return text, model, images
            except asyncio.TimeoutError as e:
                self.stats.timeouts += 1
                last = e
            except _Refused as e:
                self.stats.errors += 1
                last = e
                if e.status < 500 and e.status not in RETRY_STATUS:
                    break  # the request itself is wrong: another try would be refused too
            except (aiohttp.ClientError, ValueError) as e:
                self.stats.errors += 1
                last = e
        raise EndpointError(f"{self.host}: {type(last).__name__}: {last}" if last else self.host)

    async def _post(self, messages: list[dict[str, Any]]) -> tuple[str, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_seconds))
        body = {"model": self.cfg.llm_model, "messages": messages, "max_tokens": self.cfg.max_tokens, "temperature": 0.2}
        self.stats.requests += 1
        async with self._session.post(self.url, json=body, headers=self._headers) as r:
            if r.status != 200:
                raise _Refused(r.status, await r.text())
            answer = await r.json(content_type=None)
        try:
            text = answer["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"an answer without choices[0].message.content: {str(answer)[:200]}") from e
        return str(text), str(answer.get("model") or self.cfg.llm_model)
