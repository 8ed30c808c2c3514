# LSMRL Explorer as a Hugging Face Docker Space (or any container host).
#
# The Hugging Face Docker-Space template: python 3.11 slim, a uid-1000 user, the
# app listening on 0.0.0.0:7860. The install and start steps are the README's
# quick start (`pip install -r requirements.txt`, `python app/main.py`);
# tests/test_space.py checks that they stay the same.
#
# Build it from the Space bundle, whose requirements.txt resolves torch's
# CPU-only build (about 4.5 GB smaller) and whose README says `sdk: docker`:
#   python tools/space.py export --sdk docker --out build/space
#   docker build -t lsmrl-explorer build/space && docker run --rm -p 7860:7860 lsmrl-explorer
# Built from this repository's root (`docker build .`) it installs the CUDA build.
FROM python:3.11-slim

# Spaces run the container as uid 1000: own the app folder and home as that user.
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR $HOME/app

# Dependencies first, so that code changes do not reinstall them (the README's install step).
COPY --chown=user requirements.txt requirements.txt
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=user . $HOME/app

# Writable by the app user: lazily cached examples (./.gradio), uploads (GRADIO_TEMP_DIR),
# analysis and numba caches (./cache), matplotlib's config.
RUN mkdir -p $HOME/app/.gradio/tmp $HOME/app/cache $HOME/.cache/matplotlib

# Offline at run time (no hub look-ups), no analytics, listen on every interface on 7860.
ENV GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_TEMP_DIR=/home/user/app/.gradio/tmp \
    HF_HUB_OFFLINE=1 \
    MPLCONFIGDIR=/home/user/.cache/matplotlib

EXPOSE 7860

# The README's start command.
CMD ["python", "app/main.py"]
