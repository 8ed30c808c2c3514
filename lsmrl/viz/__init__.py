"""Drawing what :mod:`lsmrl.analysis` computes: plotly figures and pictures (strips, colour bars, overlays).

``figures``  every plotly chart of the explorer (UMAP, gap, prompts, probes, failures, comparisons)
``images``   tracklet strips and grids, colour bars, explanation-map overlays (numpy + PIL, no torch)

The analysis modules never import this package; the app and notebooks call it.
"""
