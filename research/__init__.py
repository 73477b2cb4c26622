"""Research scripts: experiments that produced the model's design decisions (not product code).

Run from the repository root as modules, e.g. ``python -m research.blend_ceiling --help``.
They use only the public API of ``coldrec`` and ``training``; what each is for and what it found
is in ``research/README.md``. Importing a module here does no work: everything runs in ``main()``.
"""
