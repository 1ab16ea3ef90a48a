"""Analyses of model runs: validation against stylized facts (``validation``)."""
