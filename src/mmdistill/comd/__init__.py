"""CoMD (competitive multi-modal distillation): what only this method uses.

* `nounphrase`: stage 1's noun-phrase frequency filter of the pre-training captions (§3.2).
* `competitive`: stage 2's pools, assessment, difficulty and augmentation (§3.3, eq. 4-6).
* `loop`: one stage-2 iteration as functions of files (what the stage-2 rules run).
* `baselines`: training data of the unidirectional baseline and of CoMD without stage 1.

Models, training, generation, evaluation, provenance and io are shared with
`mmdistill.mod` and live at the top of the package.
"""
