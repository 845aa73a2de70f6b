"""Asking the memory over the network: the HTTP JSON API and MCP tools (see streamer.api.server)."""
