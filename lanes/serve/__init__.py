"""``lanes serve``: the HTTP front door. Applications that speak the Anthropic Messages API or
OpenAI's chat completions point their SDK at it; each request becomes a routed job."""
