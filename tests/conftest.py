import os

# No network at test time: a hub tag fails at once instead of retrying (design.md §5).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite decides its precision: fp32 unless LSMRL_PRECISION (or LSMRL_FP32) says otherwise, never what `auto`
# measures on this CPU kind. Tests of bf16 ask for it by name; tests of `auto` pass the CPU's flags and speed-up.
if not os.environ.get("LSMRL_FP32", "").strip():
    os.environ.setdefault("LSMRL_PRECISION", "fp32")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402


def pytest_report_header(config):
    from lsmrl.device import PRECISION_ENV, cpu_has_native_bf16, precision_setting

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "unknown CPU") if os.path.exists("/proc/cpuinfo") else "unknown CPU"
    return (f"precision: {precision_setting()} ({PRECISION_ENV}={os.environ.get(PRECISION_ENV, '')!r}); "
            f"CPU: {cpu}, native bf16: {cpu_has_native_bf16()}")


def pytest_configure(config):
    """Every temporary file of the run goes into one folder that is removed when the run ends.

    gradio_client stages each file it downloads in a new ``<temp dir>/<40 hex digits>`` folder and never
    removes it (client.py ``_download_file``): about 1,000 empty folders per run of this suite. pytest's own
    ``tmp_path`` folders stay where they always are (its usual temp root, the last three runs kept).
    """
    previous = (tempfile.gettempdir(), os.environ.get("TMPDIR"))
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", previous[0])
    run_tmp = tempfile.mkdtemp(prefix="lsmrl-tests-")
    tempfile.tempdir = run_tmp
    os.environ["TMPDIR"] = run_tmp  # and in the app and browser processes the tests start
    config.stash[_RUN_TMP] = (run_tmp, previous)


def pytest_unconfigure(config):
    run_tmp, (previous_dir, previous_env) = config.stash.get(_RUN_TMP, (None, (None, None)))
    if run_tmp is None:
        return
    tempfile.tempdir = previous_dir
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env
    shutil.rmtree(run_tmp, ignore_errors=True)


_RUN_TMP = pytest.StashKey[tuple]()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app, launched for one test module (the API and the browser tests): (url, resources)."""
    from tests.test_app_api import launch_for_tests  # lazily: it configures gradio's environment on import

    demo, url, resources = launch_for_tests(tmp_path_factory)
    yield url, resources
    demo.close()
