"""The built-in toy world: a small synthetic CLEVR-like visual world with a ground-truth oracle.

Scenes are 2x2 grids of coloured shapes (some carrying a three-letter word) rendered
as 64x64 images; a closed question language covers attribute, counting, existence,
position, text, relation, comparison and description questions; the oracle answers
and grades any question of that language. Every generator is deterministic in its
seed. See `scenes`, `language`, `oracle`, `corpora` and `benchmarks`.
"""
