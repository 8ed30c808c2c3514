"""LSMRL Explorer's Gradio app: a thin layer over :mod:`lsmrl`'s public API.

=================  ===============================================================
module             what
=================  ===============================================================
``main``           entry point ``python app/main.py``; ``build_app`` / ``launch_app``
``ui``             the Blocks layout and the event wiring (no model code)
``callbacks``      event handlers: validate, call :class:`lsmrl.analysis.Explorer`, render
``state``          process-wide resources (the Explorer, loaded once) and the shipped cache
``validation``     upload limits and the mapping of lsmrl errors to ``gr.Error``
``bench``          server-side latency figures (``python app/bench.py``)
=================  ===============================================================
"""
