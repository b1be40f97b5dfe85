"""The reasoning subscriber: scene memory, built-in answers, an LLM client (no numpy, numba or torch)."""
