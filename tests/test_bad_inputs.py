"""README "Bad input": one test per row, asserting what the user sees; the app keeps serving.

Uploads go through a running app (launched here on a free port with small
upload limits, so the files stay tiny) with ``gradio_client``; after every bad
call a good call must still succeed. Checkpoint and data-root rows go through
the app's start-up path (:class:`app.resources.Resources`, which opens the
Explorer) and the app's mapping of errors to ``gr.Error``
(:func:`app.validation.to_gr_error`). The last tests check that the server
hands out only its own files.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from app import config as app_config
from app import resources as app_resources

app_config.configure_environment()  # before gradio is imported

from app.config import UploadLimits
from app.validation import read_upload, to_gr_error  # noqa: E402
from lsmrl.data.video_write import write_video
from lsmrl.errors import CheckpointError, DatasetLayoutError, VideoError  # noqa: E402
from tests.test_app_api import free_port, make_test_config  # noqa: E402  (the app's own test set-up)

pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

#: Small limits keep the test files tiny; the messages are the same with the defaults.
LIMITS = UploadLimits(max_bytes=1024 * 1024, max_frames=100, max_duration_s=60.0, timeout_s=30.0)
IR2VIS = "infrared_to_visible"
REENCODE = "re-encode it as H.264 mp4 (e.g. `ffmpeg -i in.mov -c:v libx264 -pix_fmt yuv420p out.mp4`)"


# =========================================================================== the served app
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from app.main import build_app, launch_app

    resources = app_resources.Resources(make_test_config(tmp_path_factory), precompute=False)
    resources.start()
    explorer = resources.explorer(timeout=900)
    demo = build_app(resources, limits=LIMITS)
    port = free_port()
    launch_app(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True, limits=LIMITS)
    yield f"http://127.0.0.1:{port}/", explorer
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served[0], verbose=False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, served) -> dict[str, Path]:
    """One file per upload row (and a good query cut from a test tracklet)."""
    explorer = served[1]
    out = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    query = int(np.asarray(explorer.dataset.directions[IR2VIS][0]).reshape(-1)[0])
    files = {"good": write_video(explorer.tracklet_frames(query, 16), out / "good.mp4")}
    data = files["good"].read_bytes()
    (out / "corrupt.mp4").write_bytes(data[: len(data) // 3] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (out / "empty.mp4").write_bytes(b"")
    (out / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    files.update(corrupt=out / "corrupt.mp4", empty=out / "empty.mp4", notes=out / "notes.mp4")
    files["one"] = write_video(rng.integers(0, 256, (1, 128, 64, 3), dtype=np.uint8), out / "one.mp4")
    files["huge"] = write_video(np.zeros((2, 2176, 3840, 3), np.uint8), out / "huge.mp4")
    files["long"] = write_video(np.zeros((300, 32, 32, 3), np.uint8), out / "long.mp4", fps=25)
    files["slow"] = write_video(np.zeros((30, 32, 32, 3), np.uint8), out / "slow.mp4", fps=0.4)
    files["big"] = write_video(rng.integers(0, 256, (24, 320, 240, 3), dtype=np.uint8), out / "big.mp4", crf=10)
    (out / "clip.mov").write_bytes(data)
    files["mov"] = out / "clip.mov"
    assert files["big"].stat().st_size > LIMITS.max_bytes
    return files


def upload(client, path: Path, modality: str = "infrared", top_k: int = 3):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), modality, top_k, api_name="/retrieve_video")


def app_error(client, path: Path) -> str:
    """The message the app shows for an upload (gradio_client raises it as AppError)."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        upload(client, path)
    return str(info.value)


@pytest.fixture
def still_serving(client, served, videos):
    """After the test: a good upload and a good /retrieve still succeed."""
    yield
    ranked, summary, *_ = upload(client, videos["good"])
    assert len(ranked["items"]) == 3 and "good.mp4" in summary
    tid = served[1].queries(IR2VIS)[0]["tid"]
    ranked, *_ = client.predict(tid, IR2VIS, 2, api_name="/retrieve")
    assert len(ranked["items"]) == 2


# =========================================================================== uploads (one test per row)
def test_good_upload_is_ranked(client, videos):
    ranked, summary, *_ = upload(client, videos["good"])
    assert ranked["query"]["num_frames_in_file"] == 16 and len(ranked["items"]) == 3


def test_corrupt_video(client, videos, still_serving):
    message = app_error(client, videos["corrupt"])
    assert message.startswith("corrupt.mp4 could not be decoded as a video (") and message.endswith(REENCODE)


def test_empty_file(client, videos, still_serving):
    assert app_error(client, videos["empty"]) == "empty.mp4 is empty (0 bytes)"


def test_text_file_named_mp4(client, videos, still_serving):
    message = app_error(client, videos["notes"])
    assert message.startswith("notes.mp4 could not be decoded as a video (") and message.endswith(REENCODE)


def test_one_frame_clip(client, videos, still_serving):
    assert app_error(client, videos["one"]) == "one.mp4 has only 1 frame(s): a tracklet needs at least 2 frames"


def test_huge_resolution(client, videos, still_serving):
    assert app_error(client, videos["huge"]) == (
        "huge.mp4 is 3840x2176; the limit is 1920x1080. Crop the person or downscale it first")


def test_over_long_video_in_frames(client, videos, still_serving):
    assert app_error(client, videos["long"]) == (
        "long.mp4 has 300 frames; the limit is 100. Trim it to the part that shows the person")


def test_over_long_video_in_time(client, videos, still_serving):
    assert app_error(client, videos["slow"]) == (
        "slow.mp4 lasts 75 s; the limit is 60 s. Trim it to the part that shows the person")


def test_file_over_the_size_limit(client, served, videos, still_serving):
    import httpx

    # gradio_client (like the browser) checks the app's max_file_size before uploading
    with pytest.raises(ValueError, match=r"exceeds the maximum file size of 1048576 bytes"):
        upload(client, videos["big"])
    # a client that uploads anyway is refused by the server
    with open(videos["big"], "rb") as handle:
        response = httpx.post(f"{served[0]}gradio_api/upload", files=[("files", ("big.mp4", handle, "video/mp4"))],
                              timeout=60)
    assert response.status_code == 413
    assert response.text == "File size exceeded maximum allowed size of 1048576 bytes."
    # and the app's own check, should the file reach a handler
    with pytest.raises(VideoError) as info:
        read_upload(str(videos["big"]), 6, LIMITS)
    size_mb = videos["big"].stat().st_size / 2**20
    assert str(info.value) == f"big.mp4 is {size_mb:.1f} MB; the limit is 1 MB. Trim or downscale it first"


def test_unsupported_extension(client, videos, still_serving):
    assert app_error(client, videos["mov"]) == (
        "clip.mov is not a video file this app reads; upload an mp4, avi, mkv or webm")


def test_unknown_query_id(client, still_serving):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict("test/99999", IR2VIS, 3, api_name="/retrieve")
    message = str(info.value)
    assert message.startswith("no test tracklet with id 'test/99999'. Use a test tracklet id such as test/")
    assert message.endswith("or pick a query in the Retrieval tab")


# =========================================================================== checkpoints and data roots
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    import torch

    from lsmrl.model.checkpoint import save_checkpoint
    from tests.helpers import tiny_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "good.safetensors"
    return save_checkpoint(tiny_model(num_classes=4, num_frames=6), out)


def startup_error(checkpoint: Path, tmp_path: Path, data_root: Path | None = None):
    """What the app's start-up makes of a checkpoint / data root: (the error, its gr.Error, the status line)."""
    config = app_config.AppConfig.resolve(checkpoint=checkpoint, baseline_checkpoint="none",
                                         data_root=data_root or app_config.DEFAULT_DATA_ROOT, cache_dir=tmp_path / "c")
    resources = app_resources.Resources(config, precompute=False)
    with pytest.raises(Exception) as info:
        resources.explorer(timeout=300)
    return info.value, to_gr_error(info.value), resources.status_markdown()


def test_checkpoint_that_is_not_safetensors(good_checkpoint, tmp_path, monkeypatch):
    import torch

    from lsmrl.model.checkpoint import load_model

    pickled = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2)}, pickled)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a pickle was opened"))
    expected = ("model.pt is not a .safetensors checkpoint. LSMRL checkpoints are safetensors weights plus a JSON "
                "sidecar (pickled .pt/.pth files are never loaded); train or convert with `python -m lsmrl train`.")
    with pytest.raises(CheckpointError) as info:
        load_model(pickled)
    assert str(info.value) == expected
    error, shown, status = startup_error(pickled, tmp_path)
    assert isinstance(error, CheckpointError) and shown.title == "Checkpoint problem" and shown.message == expected
    assert status == f"**Could not load the model.** {expected}"

    # a pickle renamed to .safetensors (its sidecar copied from a real checkpoint) is refused too
    renamed = tmp_path / "renamed.safetensors"
    shutil.copyfile(pickled, renamed)
    shutil.copyfile(good_checkpoint.with_suffix(".json"), renamed.with_suffix(".json"))
    with pytest.raises(CheckpointError, match=r"renamed.safetensors is not a valid safetensors file \("):
        load_model(renamed)


def test_checkpoint_whose_config_does_not_match_its_weights(good_checkpoint, tmp_path):
    from lsmrl.model.checkpoint import load_model

    bad = tmp_path / "mismatch.safetensors"
    shutil.copyfile(good_checkpoint, bad)
    meta = json.loads(good_checkpoint.with_suffix(".json").read_text())
    meta["model_config"]["num_classes"] = 7  # the weights were trained with 4 identities
    bad.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    message = str(info.value)
    assert message.startswith("mismatch.safetensors: the weights do not match the model config in mismatch.json: ")
    assert re.search(r"keys of another shape \(.*file \(4, .*vs model \(7, ", message)
    assert message.endswith(". The two files must come from the same training run.")
    error, shown, status = startup_error(bad, tmp_path)
    assert shown.title == "Checkpoint problem" and shown.message == message and message in status


def test_checkpoint_without_its_sidecar(good_checkpoint, tmp_path):
    lonely = tmp_path / "lonely.safetensors"
    shutil.copyfile(good_checkpoint, lonely)
    error, shown, _ = startup_error(lonely, tmp_path)
    assert shown.message == "lonely.safetensors has no JSON sidecar lonely.json next to it (model config)"


def test_data_root_with_a_missing_index_file(good_checkpoint, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(app_config.DEFAULT_DATA_ROOT / "info", root / "info")
    (root / "Test").symlink_to(app_config.DEFAULT_DATA_ROOT / "Test")
    (root / "info" / "track_test_info.txt").unlink()
    error, shown, status = startup_error(good_checkpoint, tmp_path, data_root=root)
    assert isinstance(error, DatasetLayoutError) and shown.title == "Data set problem"
    first_line = f"missing file: {root}/info/track_test_info.txt (also looked for {root}/track_test_info.txt)"
    assert shown.message.splitlines()[0] == first_line
    assert "Expected layout:" in shown.message and "track_test_info.txt" in status


def test_a_bad_checkpoint_is_shown_by_the_running_app(tmp_path):
    """End to end: `--checkpoint model.pt` still serves the page, and every call says what is wrong."""
    import httpx
    import torch
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from app.main import build_app, launch_app

    pickled = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2)}, pickled)
    config = app_config.AppConfig.resolve(checkpoint=pickled, baseline_checkpoint="none", cache_dir=tmp_path / "c")
    demo = build_app(app_resources.Resources(config, precompute=False), limits=LIMITS)
    port = free_port()
    launch_app(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True, limits=LIMITS)
    try:
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url, timeout=30).status_code == 200
        with pytest.raises(AppError, match=r"model.pt is not a \.safetensors checkpoint"):
            Client(url, verbose=False).predict("test/00000", IR2VIS, 3, api_name="/retrieve")
        assert httpx.get(url, timeout=30).status_code == 200
    finally:
        demo.close()


def test_checkpoints_are_never_unpickled():
    """Every torch.load in the code base passes weights_only=True; checkpoints are read with safetensors."""
    root = Path(__file__).resolve().parents[1]
    for folder in ("lsmrl", "app"):
        for path in (root / folder).rglob("*.py"):
            for call in re.findall(r"torch\.load\([^)]*\)", path.read_text()):
                assert "weights_only=True" in call, f"{path}: {call}"


# =========================================================================== what the server hands out
def test_the_server_serves_only_its_own_files(served, client, videos):
    import httpx
    from gradio_client import handle_file

    url = served[0].rstrip("/")
    repo = app_config.REPO_ROOT
    refused = ["/etc/passwd", str(repo / "README.md"), "README.md", "app/main.py",
               str(app_config.DEFAULT_CHECKPOINT), str(repo / "checkpoints" / ".." / "README.md"),
               str(app_config.DEFAULT_DATA_ROOT / "info" / "test_name.txt")]
    for target in refused:
        response = httpx.get(f"{url}/gradio_api/file={target}", timeout=30)
        assert response.status_code in (403, 404), (target, response.status_code)
        assert "root:" not in response.text
    for target in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"):
        response = httpx.get(f"{url}/gradio_api/file={target}", timeout=30)
        assert response.status_code in (403, 404) and "root:" not in response.text
    # what the app itself produced (an upload in its temp folder) is served
    ranked, summary, strip, strips = client.predict(handle_file(str(videos["good"])), "infrared", 2,
                                                    api_name="/retrieve_video")
    uploaded = httpx.post(f"{url}/gradio_api/upload",
                          files=[("files", ("good.mp4", videos["good"].read_bytes(), "video/mp4"))], timeout=60)
    path = uploaded.json()[0]
    assert Path(path).resolve().is_relative_to(app_config.app_temp_dir().resolve())
    assert httpx.get(f"{url}/gradio_api/file={path}", timeout=30).status_code == 200
