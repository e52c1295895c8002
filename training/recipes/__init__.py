"""Recipes that rebuild the bundled models from raw data: ``python -m training.recipes.NAME``.

Each runs convert -> dataset -> baseline -> train -> eval -> export and writes
``build/recipes/NAME/report.json`` (the numbers in docs/MODELS.md). See ``common``.
"""
