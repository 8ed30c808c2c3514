"""LSMRL Explorer's Gradio app: a thin layer over :mod:`lsmrl`'s public API.

=================  =================================================================================================
module             what
=================  =================================================================================================
``main``           entry point ``python app/main.py``; ``build_app`` / ``launch_app``
``ui``             the Blocks layout and the event wiring (no model code)
``callbacks``      the handlers gathered: one object per tab over one shared context
``tabs``           the handlers, one module per tab (``tabs/retrieval.py`` ...) and ``tabs/shared.py``
``session``        the per-session state: the one current query every tab follows
``config``         what the app serves and where its files lie (checkpoints, data, caches, upload limits)
``resources``      process-wide resources: the Explorer, opened once in a background thread; static tables
``cache_build``    ``--build-cache``: the shipped analysis cache and the example videos
``validation``     input checks and the mapping of lsmrl errors to ``gr.Error``
``gpu``            ``@gpu``: ``spaces.GPU`` on a ZeroGPU Space, a no-op elsewhere (model-heavy handlers)
=================  =================================================================================================

The developer tools that measure or deploy the app (benchmarks, the load test, the
Space exporter) live in the top-level ``tools/`` folder; the app never imports them.
"""
