"""New Gradio sessions compute block configs on demand and see exactly what Gradio's eager sessions see."""

from __future__ import annotations

import gradio as gr
from gradio.state_holder import SessionState

from app import gradio_sessions


def _demo() -> gr.Blocks:
    with gr.Blocks() as demo:
        state = gr.State({"query": None})
        box = gr.Textbox(value="a", label="query")
        number = gr.Number(value=3)
        gr.Button("go").click(lambda s, b: (s, b), [state, box], [state, box])
    demo.lsmrl_ids = (state._id, box._id, number._id)
    return demo


def test_lazy_configs_equal_gradios_and_are_built_on_first_access():
    demo = _demo()
    installed = SessionState.__init__
    try:
        gradio_sessions.uninstall()
        eager = SessionState(demo)
        assert gradio_sessions.install()
        lazy = SessionState(demo)
    finally:
        SessionState.__init__ = installed
    state_id, box_id, number_id = demo.lsmrl_ids
    assert isinstance(lazy.config_values, gradio_sessions.LazyBlockConfigs)
    assert dict.__len__(lazy.config_values) == 0 and len(lazy.config_values) == len(eager.config_values)
    assert box_id in lazy.config_values and lazy.config_values[box_id] == eager.config_values[box_id]
    assert dict.__len__(lazy.config_values) == 1  # only the block asked for was built
    assert dict(lazy.config_values.items()) == dict(eager.config_values.items())  # a deep link sees them all
    assert list(lazy.components) == list(eager.components)


def test_session_updates_behave_as_gradios():
    demo = _demo()
    installed = SessionState.__init__
    try:
        gradio_sessions.install()
        session = SessionState(demo)
        state_id, box_id, number_id = demo.lsmrl_ids
        session[state_id] = {"query": "q1"}  # a gr.State value: kept per session
        assert session[state_id] == {"query": "q1"} and demo.blocks[state_id].value == {"query": None}
        session._update_value_in_config(number_id, 7)
        assert session.config_values[number_id]["props"]["value"] == 7
        assert session.config_values.get(10**9) is None
    finally:
        SessionState.__init__ = installed


def test_another_gradio_version_is_left_alone(monkeypatch, capsys):
    installed = SessionState.__init__
    monkeypatch.setattr(gradio_sessions.gradio, "__version__", "7.0.0")
    try:
        gradio_sessions.uninstall()
        assert not gradio_sessions.install()
        assert SessionState.__init__ is gradio_sessions.EAGER_INIT and "eager block configs" in capsys.readouterr().out
    finally:
        SessionState.__init__ = installed
