"""Feature store stage: feature computation (``compute``) and Feast store operations (``store``).

The Feast repository itself (declarations only) lives in ``features/`` at the checkout root.
"""
