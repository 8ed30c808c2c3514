"""``app/main.py``'s warm-up: after the page is served, the model, its caches and the handlers' first-call costs are
paid before any user's click."""

from __future__ import annotations

import pytest

from app import config as app_config
from app import resources as app_resources

app_config.configure_environment()

from tests.test_app_api import free_port, make_test_config  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.mark.slow
def test_warm_up_loads_the_model_after_the_page_and_answers_through_the_api(tmp_path_factory):
    import httpx

    from app.main import build_app, launch_app, warm_up

    demo = build_app(app_resources.Resources(make_test_config(tmp_path_factory)), start=False)
    resources = demo.lsmrl_resources
    launch_app(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        assert httpx.get(f"http://127.0.0.1:{demo.server_port}/", timeout=30).status_code == 200
        assert not resources.ready  # the page came first: nothing was loaded yet
        assert warm_up(demo, timeout_s=600) is True
        assert resources.ready and resources.failed is None
    finally:
        demo.close()


def test_a_failed_warm_up_never_raises(capsys):
    class Stopped:
        server_port = free_port()  # nothing listens there

        class lsmrl_resources:  # noqa: N801 - a stand-in with what warm_up uses
            class config:  # noqa: N801
                device = None

            @staticmethod
            def start():
                return None

            @staticmethod
            def explorer(timeout=None):
                return object()

    from app.main import warm_up

    assert warm_up(Stopped(), timeout_s=5) is False
    assert "warm-up skipped: ConnectError" in capsys.readouterr().err  # it got as far as calling the API
