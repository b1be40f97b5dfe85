"""The neural localizer: model, weights, tokens and the run-time stage."""
