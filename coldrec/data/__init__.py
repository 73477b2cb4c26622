"""Layer 2, data: the canonical schema (:mod:`.contract`), value coercion (:mod:`.coercion`), a
dataset in memory and on disk (:mod:`.dataset`), the shipped datasets' adapters
(:mod:`.datasets`) and preparing raw files into canonical tables (:mod:`.prepare`).
"""
