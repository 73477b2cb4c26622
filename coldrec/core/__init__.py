"""Layer 1, core: what every other layer uses and which uses nothing of coldrec.

Errors (:mod:`.errors`), the typed ``params.yaml`` (:mod:`.params`), settings and loading params
(:mod:`.config`), every default location (:mod:`.paths`), owned atomic outputs (:mod:`.outputs`)
and progress reporting (:mod:`.progress`).
"""
