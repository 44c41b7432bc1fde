"""LLaVA-MoD (mixture-of-experts knowledge distillation): what only this method uses.

* `upcycling`: the sparse student, a dense LLaVA upcycled into Mixtral-style experts (§3.1, eq. 2-4).
* `losses`: mimic distillation KL (eq. 6-7), DPO against the frozen teacher (eq. 8), sequence log-probs.
* `teacher_logits`: the teacher's top-k log-probs per response token, as shards that stream from disk.

Models, training, generation, evaluation, provenance and io are shared with
`mmdistill.comd` and live at the top of the package.
"""
