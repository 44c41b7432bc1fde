"""LLaVA-MoD (mixture-of-experts knowledge distillation): what only this method uses.

* `upcycling`: the sparse student, a dense LLaVA upcycled into Mixtral-style experts (§3.1, eq. 2-4).
* `losses`: mimic distillation KL (eq. 6-7), DPO against the frozen teacher (eq. 8), sequence log-probs.
* `teacher_logits`: the teacher's top-k log-probs per distilled token, as shards that stream from disk.
* `data`: distillation tokens (response or all, Table 7) and preference pairs as training batches.
* `objectives`: the losses as objectives of the shared training loop, aux loss added once.
* `stages`: dense-to-dense, dense-to-sparse and preference distillation as functions of files.
* `preference`: RLAIF-V-format pairs from the student's samples judged by the teacher, or from CoMD's assessments.
* `parameters`: total and active parameters of a saved checkpoint (Table 2's #Param), without torch.

Models, training, generation, evaluation, provenance and io are shared with
`mmdistill.comd` and live at the top of the package.
"""
