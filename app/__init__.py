"""LSMRL Explorer's Gradio app: a thin layer over :mod:`lsmrl`'s public API.

=================  =================================================================================================
module             what
=================  =================================================================================================
``main``           entry point ``python app/main.py``; ``build_app`` / ``launch_app``
``ui``             the Blocks layout and the event wiring (no model code)
``callbacks``      the handlers gathered: one object per tab over one shared context
``tabs``           the handlers, one module per tab (``tabs/retrieval.py`` ...) and ``tabs/shared.py``
``session``        the per-session state: the one current query every tab follows
``state``          process-wide resources (the Explorer, loaded once) and the shipped cache
``validation``     upload limits and the mapping of lsmrl errors to ``gr.Error``
``gpu``            ``@gpu``: ``spaces.GPU`` on a ZeroGPU Space, a no-op elsewhere (model-heavy handlers)
``bench``          server-side latency figures (``python app/bench.py``)
``loadtest``       concurrent ``/retrieve`` and ``/retrieve_video`` calls over loopback (``python app/loadtest.py``)
=================  =================================================================================================
"""
