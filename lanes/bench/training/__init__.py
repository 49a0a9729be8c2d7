"""Building the task-type model: the corpus from public repositories, the fit, the held-out
measurement. Used by ``lanes train``; nothing here runs in the product."""
