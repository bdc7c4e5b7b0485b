"""Datasets and LightningDataModules: video decoding, sampling, annotation lists, the synthetic manifest.

Import submodules directly (`datamodules.action.ActionDataModule`, `datamodules.manifest`); this package
stays import-light so `generation` can read the manifest schema without loading the training stack.
"""
