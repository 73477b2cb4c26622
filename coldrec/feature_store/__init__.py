"""Feature store stage: feature computation (``compute``, with the profile state in ``profile``)
and Feast store operations (``repo``, ``materialization``, ``online``, ``historical``, ``push``;
all re-exported by ``store``).

The Feast repository itself (declarations only) lives in ``features/`` at the checkout root.
"""
