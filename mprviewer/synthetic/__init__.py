"""Synthetic DICOM with known truth: the series writer, the CT phantom and the demo study.

Below io in the layers (numpy, pydicom and ``mprviewer.paths`` only), so io may reach it:
``open_study("demo")`` resolves the name through a lazy import of ``synthetic.demo``. Tests and
benchmarks write their data with ``synthetic.writer``.
"""
