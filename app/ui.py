"""The Blocks layout and its event wiring; no model code (handlers are in :mod:`app.tabs`).

Tabs: Retrieval, Attention, Prompt diffusion, Modality gap, Failure cases, Model.

* **One current query.** The session state (:mod:`app.session`) holds the
  current query, a test tracklet or an uploaded video; every query change goes
  through it and ``sync_tabs`` then sets the direction, the query box, the
  selected-match line and the other tabs' inputs from it. Tab refreshes take
  the session too, so a view that cannot apply to a video query says why.
* **Browser events vs the API.** Browser events are private and turn a failure
  into one titled toast plus cleared outputs. The public endpoints
  (``/retrieve``, ``/retrieve_video``, ``/detect_people``, ``/export_ranking``,
  ``/attention``, ``/diffusion``, ``/modality_gap``, ``/impostors``, then
  ``/failures``, ``/model_card`` and ``/compare`` on their buttons) raise
  ``gr.Error`` for ``gradio_client``; the first ones are invisible twins of
  their buttons with inputs of their own whose initial values are working
  defaults, so the "Use via API" page's snippets run as shown.

``gr.Plot`` (plotly) has no click event in Gradio 6.31, so points in the UMAP
are hover-only; the current query is what the UMAP highlights.
"""

import json

import gradio as gr

from app import resources as app_resources
from app import session as sessions
from app.callbacks import ALL, METHODS, ORDERS, TARGETS, Callbacks, direction_choices
from app.config import DEFAULT_LIMITS, UploadLimits
from app.tabs.diffusion import PROMPT_HEADERS, PROMPT_WIDTHS, RANKING_HEADERS, RANKING_WIDTHS
from app.tabs.failures import TABLE_AND_PLOT_JS
from app.tabs.gap import gap_column_widths
from app.tabs.model import ABLATION_HEADERS, DRAWS_HEADERS
from app.tabs.retrieval import AUTO_LABEL
from app.tabs.shared import refresh_if_stale, repo_example_video
from app.ui_style import INTRO, TITLE, attention_colour_bar
from app.validation import MAX_TOP_K

STAGE_CHOICES = [("baseline (frame-wise CLIP)", "baseline"), ("STFL", "stfl"), ("after SD", "sd"),
                 ("after CMI", "cmi"), ("final embedding", "embedding")]
PRIVATE = {"api_visibility": "private"}


def build_ui(resources: "app_resources.Resources", limits: UploadLimits = DEFAULT_LIMITS) -> gr.Blocks:
    """The Blocks of the app for ``resources`` (nothing is loaded here; ``demo.load`` waits for the model)."""
    cb = Callbacks(resources, limits)
    examples = app_resources.example_videos()
    directions = direction_choices()
    first_direction = directions[0][1]

    with gr.Blocks(title=TITLE, delete_cache=(3600, 7200), fill_width=True) as demo:
        session = gr.State(sessions.new_session(first_direction))
        rendered = gr.State({})
        gr.Markdown(INTRO)
        banner = gr.Markdown(elem_id="lsmrl-banner")
        status = gr.Markdown(resources.status_markdown(), elem_id="lsmrl-status")
        status_timer = gr.Timer(3.0)

        with gr.Tabs(elem_id="lsmrl-tabs"):
            # ------------------------------------------------------------ Retrieval
            with gr.Tab("Retrieval", id="retrieval", elem_id="tab-retrieval", render_children=True):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        direction = gr.Radio(directions, value=first_direction, label="Direction")
                        with gr.Row():
                            identity = gr.Dropdown([(ALL, ALL)], value=ALL, label="Identity", allow_custom_value=True,
                                                   elem_id="lsmrl-identity")
                            camera = gr.Dropdown([(ALL, ALL)], value=ALL, label="Camera", allow_custom_value=True,
                                                 elem_id="lsmrl-camera")
                        order = gr.Radio(list(ORDERS), value="identity", label="Order of the queries")
                        query = gr.Dropdown([], value=None, label="Query tracklet", allow_custom_value=True,
                                            info="a test tracklet id, e.g. test/00000", elem_id="lsmrl-query")
                        top_k = gr.Number(value=10, minimum=1, precision=0, label=f"Top-k (1 to {MAX_TOP_K})",
                                          info="more is capped, with a note; the first true match is named "
                                               "under the list wherever it ranks", elem_id="lsmrl-top-k")
                        retrieve_button = gr.Button("Retrieve", variant="primary", elem_id="lsmrl-retrieve")
                        thumbnails = gr.Gallery(label="Queries: click one", columns=6, height=300,
                                                allow_preview=False, format="png", elem_id="lsmrl-thumbnails")
                        with gr.Accordion("Query by an uploaded video", open=False):
                            video = gr.File(label="Video (mp4, avi, mkv or webm)", type="filepath", height=120,
                                            file_types=[".mp4", ".avi", ".mkv", ".webm"], elem_id="lsmrl-video")
                            player = gr.Video(label="Preview", interactive=False, height=240,
                                              elem_id="lsmrl-video-player")
                            gr.Markdown("A file the browser cannot play (an AVI, say) is previewed from an H.264 "
                                        "copy; the query reads the uploaded file itself.")
                            modality = gr.Radio([("infrared", "infrared"), ("visible", "visible")], value="infrared",
                                                label="Declared modality of the video", elem_id="lsmrl-modality")
                            gr.Markdown("A whole scene (a street, a corridor) works too: **Find people** shows "
                                        "who is in it; the query is the chosen person's crops (*auto*: the longest "
                                        "track; a clip that is already a person crop is used whole).")
                            people_button = gr.Button("Find people", elem_id="lsmrl-find-people")
                            person = gr.Dropdown([(AUTO_LABEL, "auto")], value="auto", label="Person",
                                                 elem_id="lsmrl-person")
                            people_preview = gr.Image(label="People found (boxes and ids)", type="numpy",
                                                      format="png", interactive=False, elem_id="lsmrl-people-preview")
                            people_thumbs = gr.Gallery(label="Tracks", columns=4, height="auto", allow_preview=False,
                                                       format="png", elem_id="lsmrl-people")
                            with gr.Accordion("People found (JSON)", open=False):
                                people_json = gr.JSON(label="Tracks")
                            video_button = gr.Button("Retrieve with the video", variant="primary",
                                                     elem_id="lsmrl-video-retrieve")
                            gr.Markdown(f"Limits: {limits.max_bytes // 2**20} MB, {limits.max_frames} frames, "
                                        f"{limits.max_width}x{limits.max_height}, {limits.max_duration_s:.0f} s. "
                                        "Decoding runs in a separate process with a timeout.")
                            if examples:
                                gr.Examples([[e["path"], e["modality"]] for e in examples], inputs=[video, modality],
                                            label="Example clips (mp4)", example_labels=[e["label"] for e in examples],
                                            cache_examples=False)
                    with gr.Column(scale=3, min_width=400):
                        summary = gr.Markdown("Pick a query and press Retrieve.", label="Summary",
                                              elem_id="lsmrl-summary")
                        query_strip = gr.Image(label="Query frames", type="numpy", format="png", interactive=False,
                                               height=240, elem_id="lsmrl-query-strip")
                        results = gr.Gallery(label="Top-k: green = same identity, red = another; click one",
                                             columns=2, format="png", object_fit="contain", height="auto",
                                             elem_id="lsmrl-results")
                        with gr.Row(equal_height=True):
                            true_match = gr.Markdown(elem_id="lsmrl-true-match")
                            true_match_button = gr.Button("Select it as the match", size="sm", scale=0,
                                                          min_width=180, visible=False,
                                                          elem_id="lsmrl-true-match-select")
                        selected = gr.Markdown(elem_id="lsmrl-selected")
                        stage_panel = gr.Markdown(elem_id="lsmrl-stages")
                        with gr.Row():
                            export_format = gr.Radio([("CSV", "csv"), ("JSON", "json")], value="csv",
                                                     label="Export format", scale=1)
                            export_button = gr.Button("Export the ranked list", scale=1)
                        export_file = gr.File(label="Ranked list file", interactive=False)
                        with gr.Accordion("Ranked list (JSON)", open=False):
                            ranked = gr.JSON(label="Ranked list")

            # ------------------------------------------------------------ Attention
            with gr.Tab("Attention", id="attention", elem_id="tab-attention", render_children=True) as attention_tab:
                with gr.Row():
                    att_query = gr.Textbox(label="Query (from Retrieval)", interactive=False,
                                           elem_id="lsmrl-attention-query-id")
                    att_match = gr.Textbox(label="Match: a gallery tracklet id (empty: the first true match)",
                                           info="type one, click a result in Retrieval or select the first true "
                                                "match there", interactive=True, elem_id="lsmrl-attention-match-id")
                    att_direction = gr.Radio(directions, value=first_direction, label="Direction")
                with gr.Row():
                    att_method = gr.Radio(list(METHODS), value="gradcam", label="Method",
                                          info="Grad-CAM and HiResCAM: gradients at the chosen block; occlusion: "
                                               "the fall of the target as each patch is hidden (slower); "
                                               "rollout: target-free",
                                          elem_id="lsmrl-attention-method")
                    att_target = gr.Radio(list(TARGETS), value="match", label="Target")
                    att_layer = gr.Number(value=-1, precision=0, label="Block (-1 = last)")
                    att_button = gr.Button("Explain", variant="primary")
                att_summary = gr.Markdown("Select a query and a match in the Retrieval tab, then open this tab.",
                                          label="Summary",
                                          elem_id="lsmrl-attention-summary")
                with gr.Row():
                    att_query_maps = gr.Gallery(label="Query: map per frame", columns=6, format="png",
                                                object_fit="contain", height="auto", elem_id="lsmrl-attention-query")
                    att_match_maps = gr.Gallery(label="Match: map per frame", columns=6, format="png",
                                                object_fit="contain", height="auto", elem_id="lsmrl-attention-match")
                gr.Image(value=attention_colour_bar(), label="Colour scale of the maps", type="numpy",
                                     format="png", interactive=False, show_label=True, height=70,
                                     elem_id="lsmrl-attention-scale")
                att_bars = gr.Plot(label="Each frame's share of the map")

            # ------------------------------------------------------------ Prompt diffusion
            with gr.Tab("Prompt diffusion", id="diffusion", elem_id="tab-diffusion",
                        render_children=True) as diffusion_tab:
                with gr.Row():
                    diff_query = gr.Textbox(label="Query (from Retrieval)", interactive=False,
                                            elem_id="lsmrl-diffusion-query-id")
                    diff_k = gr.Slider(1, 20, value=5, step=1, label="Prompts and matches listed",
                                       elem_id="lsmrl-diffusion-k")
                    diff_button = gr.Button("Show", variant="primary", elem_id="lsmrl-diffusion-show")
                diff_summary = gr.Markdown(label="Summary", elem_id="lsmrl-diffusion-summary")
                diff_ranking_text = gr.Markdown(elem_id="lsmrl-diffusion-ranking")
                with gr.Row(equal_height=False):
                    diff_before = gr.Dataframe(headers=RANKING_HEADERS, interactive=False, wrap=True,
                                               label="Top matches before SD (STFL feature)",
                                               column_widths=RANKING_WIDTHS, elem_id="lsmrl-diffusion-before",
                                               min_width=440)
                    diff_after = gr.Dataframe(headers=RANKING_HEADERS, interactive=False, wrap=True,
                                              label="Top matches after SD", column_widths=RANKING_WIDTHS,
                                              elem_id="lsmrl-diffusion-after", min_width=440)
                diff_prompts = gr.Dataframe(headers=PROMPT_HEADERS, interactive=False, wrap=True,
                                            label="The listed identity prompts, in words",
                                            column_widths=PROMPT_WIDTHS, elem_id="lsmrl-diffusion-prompts")
                with gr.Row(equal_height=False):
                    diff_similarity = gr.Plot(label="Similarity to the listed prompts, before vs after SD",
                                              elem_id="lsmrl-diffusion-similarity", min_width=460)
                    diff_attention = gr.Plot(label="SD attention over the prompts", elem_id="lsmrl-diffusion-attention",
                                             min_width=460)
                diff_probes = gr.Plot(label="Attribute probes, visible vs infrared")
                diff_table = gr.Dataframe(headers=["probe", "modality", "AUC before SD", "AUC after SD", "change",
                                                   "positive", "negative"], interactive=False,
                                          label="Attribute probes (AUC: 0.5 = no signal)")
                with gr.Accordion("Raw result (JSON)", open=False):
                    diff_json = gr.JSON(label="Diffusion result")

            # ------------------------------------------------------------ Modality gap
            with gr.Tab("Modality gap", id="gap", elem_id="tab-gap", render_children=True) as gap_tab:
                with gr.Row():
                    gap_stage = gr.Radio(STAGE_CHOICES, value="embedding", label="Stage")
                    gap_query = gr.Textbox(label="Highlighted query (from Retrieval)", interactive=False,
                                           elem_id="lsmrl-gap-query-id")
                    gap_direction = gr.Radio(directions, value=first_direction, label="Direction")
                    gap_k = gr.Slider(1, 20, value=5, step=1, label="Matches ringed")
                    gap_colour = gr.Radio([("modality", "modality"), ("identity", "identity")], value="modality",
                                          label="Colour by", elem_id="lsmrl-gap-colour")
                    gap_button = gr.Button("Show", variant="primary")
                gap_note = gr.Markdown(label="Note", elem_id="lsmrl-gap-note")
                gap_plot = gr.Plot(label="UMAP (hover for details)", elem_id="lsmrl-umap")
                gap_points = gr.Dataframe(headers=["point", "tracklet", "identity", "camera", "modality",
                                                   "similarity", "true match"], interactive=False, wrap=True,
                                          label="Highlighted points", elem_id="lsmrl-gap-points")
                gap_table = gr.Dataframe(interactive=False, wrap=True, label="Gap metrics per stage",
                                         column_widths=gap_column_widths(len(directions)), elem_id="lsmrl-gap-table")
                gap_figure = gr.Plot(label="Gap metrics per stage", elem_id="lsmrl-gap-bars")

            # ------------------------------------------------------------ Failure cases
            with gr.Tab("Failure cases", id="failures", elem_id="tab-failures", render_children=True) as failures_tab:
                with gr.Row():
                    fail_direction = gr.Radio(directions, value=first_direction, label="Direction")
                    fail_sort = gr.Radio([("AP", "ap"), ("INP", "inp")], value="ap", label="Worst by")
                    fail_limit = gr.Slider(5, 400, value=50, step=5, label="Rows")
                    fail_button = gr.Button("Show", variant="primary")
                fail_summary = gr.Markdown(label="Summary", elem_id="lsmrl-failures-summary")
                fail_table = gr.Dataframe(headers=["worst #", "query", "identity", "camera", "AP", "INP",
                                                   "first true rank", "true matches", "top-1 correct"],
                                          interactive=False, max_height=360,
                                          label="Queries, worst first (choose a row)",
                                          elem_id="lsmrl-failures-table")
                fail_loaded = gr.Markdown()
                with gr.Row():
                    impostor_image = gr.Image(label="Query, its first true match and the best impostor", type="numpy",
                                              format="png", interactive=False, scale=3)
                    impostor_text = gr.Markdown(label="Impostor summary", elem_id="lsmrl-impostor-text")
                impostor_table = gr.Dataframe(headers=["rank", "tracklet", "identity", "camera", "similarity",
                                                       "attribute differences"], interactive=False, wrap=True,
                                              column_widths=["7%", "12%", "9%", "8%", "10%", "54%"],
                                              label="Impostors above the true match", elem_id="lsmrl-impostors")
                with gr.Row():
                    fail_cameras = gr.Plot(label="Failures by camera pair", elem_id="lsmrl-fail-cameras")
                    fail_attributes = gr.Plot(label="Failures by attribute")
                fail_identity_note = gr.Markdown(elem_id="lsmrl-fail-identities-note")
                fail_identities = gr.Dataframe(headers=["identity"], interactive=False, wrap=True, max_height=360,
                                               label="Rank-1 failures per identity, worst first",
                                               elem_id="lsmrl-fail-identities")
                fail_histogram = gr.Plot(label="Positive vs negative similarity")

            # ------------------------------------------------------------ Model
            with gr.Tab("Model", id="model", elem_id="tab-model", render_children=True) as model_tab:
                with gr.Row():
                    model_choice = gr.Dropdown([("main", "main"), ("compare", "compare"), ("baseline", "baseline")],
                                               value="main", label="Checkpoint")
                    model_button = gr.Button("Show", variant="primary")
                model_card = gr.Markdown(label="Model card", elem_id="lsmrl-model-card")
                model_metrics = gr.Dataframe(headers=["role", "checkpoint", "direction", "R-1", "R-5", "R-10", "R-20",
                                                      "mAP", "mINP"], interactive=False, wrap=True,
                                             column_widths=["11%", "21%", "17%"] + ["8.5%"] * 6,
                                             label="Metrics on this data (percent)", elem_id="lsmrl-metrics")
                draws_text = gr.Markdown(elem_id="lsmrl-draws")
                draws_table = gr.Dataframe(headers=DRAWS_HEADERS, interactive=False, wrap=True,
                                           column_widths=["19%", "9%", "15%", "16%", "9%", "16%", "16%"],
                                           label="Standing across fresh draws (percent)", elem_id="lsmrl-draws-table")
                ablation_source = gr.Markdown(label="Ablation source")
                ablation_table = gr.Dataframe(headers=ABLATION_HEADERS, interactive=False, label="Ablation", wrap=True,
                                              column_widths=["12%", "21%", "6%"] + ["8.5%"] * 6 + ["10%"],
                                              elem_id="lsmrl-ablation")
                with gr.Accordion("Config and provenance (JSON)", open=False):
                    model_config = gr.JSON(label="Config and provenance")
                gr.Markdown("### Compare on the same queries")
                with gr.Row():
                    compare_other = gr.Radio([("baseline", "baseline"), ("compare", "compare")], value="baseline",
                                             label="Against")
                    compare_direction = gr.Radio(directions, value=first_direction, label="Direction")
                    compare_button = gr.Button("Compare")
                compare_summary = gr.Markdown(label="Comparison summary", elem_id="lsmrl-compare-summary")
                compare_figure = gr.Plot(label="Per-query AP change")
                compare_table = gr.Dataframe(headers=["top-1", "query", "identity", "camera", "AP main", "AP other",
                                                      "AP change", "first true rank main", "first true rank other"],
                                             interactive=False, label="Queries whose top-1 changed", wrap=True,
                                             column_widths=["9%", "13%", "10%", "9%", "10%", "10%", "11%", "14%", "14%"],
                                             elem_id="lsmrl-compare-table")

        # ================================================================ wiring
        # One source of truth: every query change (a tracklet, a video, a failure row, a failed attempt) goes
        # through the session state, and sync_tabs makes every control and tab input follow it.
        retrieval_inputs = [query, direction, top_k, session]
        retrieval_outputs = [ranked, summary, query_strip, results, session]  # the public twins'
        retrieval_ui_outputs = retrieval_outputs + [true_match, true_match_button, stage_panel]  # the browser's
        sync_outputs = [direction, query, selected, att_query, att_match, att_direction, diff_query, gap_query,
                        gap_direction]
        filter_inputs = [direction, identity, camera, order, session]
        filter_outputs = [identity, camera, query, thumbnails, session]

        def synced(event, name: str):
            return event.then(cb.retrieval.sync_tabs, [session], sync_outputs, api_name=f"{name}_sync", **PRIVATE)

        def then_retrieve(event, name: str):
            return synced(event.then(cb.retrieval.retrieve_ui, retrieval_inputs, retrieval_ui_outputs,
                                     api_name=f"{name}_retrieve", **PRIVATE), name)

        # start-up: wait for the model (progress bar), fill the lists, show the first query
        loaded = demo.load(cb.retrieval.init, [session], [status, direction, identity, camera, query, thumbnails,
                                                          session, gap_stage, compare_other, model_choice],
                           api_name="init", **PRIVATE)
        then_retrieve(loaded, "init")
        loaded.then(cb.model.banner, None, banner, api_name="banner", **PRIVATE)
        status_timer.tick(cb.retrieval.status, None, status, api_name="status", **PRIVATE).then(
            lambda: gr.Timer(active=not resources.wait_analysis(0)), None, status_timer,
            api_name="status_timer", **PRIVATE)

        # query choice (browser events: failures are titled toasts and clear the results)
        for component, name in ((direction, "direction"), (identity, "identity"), (camera, "camera"), (order, "order")):
            then_retrieve(component.input(cb.retrieval.list_queries, filter_inputs, filter_outputs,
                                          api_name=f"filter_{name}", **PRIVATE), f"filter_{name}")
        synced(query.input(cb.retrieval.retrieve_ui, retrieval_inputs, retrieval_ui_outputs, api_name="query_input",
                           **PRIVATE), "query_input")
        then_retrieve(thumbnails.select(cb.retrieval.pick_thumbnail, [session], [query], api_name="pick_thumbnail",
                                        **PRIVATE), "pick_thumbnail")
        synced(retrieve_button.click(cb.retrieval.retrieve_ui, retrieval_inputs, retrieval_ui_outputs,
                                     api_name="retrieve_button", **PRIVATE), "retrieve_button")
        people_button.click(cb.retrieval.detect_people_ui, [video],
                            [people_json, people_preview, people_thumbs, person],
                            api_name="detect_people_button", concurrency_id="retrieve_video", concurrency_limit=2,
                            **PRIVATE)
        # a new upload: the people of the previous one no longer apply; the player shows it (or its H.264 copy)
        video.change(cb.retrieval.show_upload, [video], [people_json, people_preview, people_thumbs, person, player],
                     api_name="video_changed", **PRIVATE)
        video_event = synced(video_button.click(cb.retrieval.retrieve_video_ui,
                                                [video, modality, top_k, person, session],
                                                retrieval_ui_outputs, api_name="retrieve_video_button",
                                                concurrency_id="retrieve_video", concurrency_limit=2, **PRIVATE),
                             "retrieve_video_button")
        video_event.then(cb.retrieval.relist_after_video, [direction, order, session], filter_outputs,
                         api_name="relist_after_video", **PRIVATE)
        synced(results.select(cb.retrieval.select_match, [session], [session], api_name="select_match", **PRIVATE),
               "select_match")
        synced(true_match_button.click(cb.retrieval.select_first_match, [ranked, session], [session],
                                       api_name="select_first_match", **PRIVATE), "select_first_match")
        export_button.click(cb.retrieval.export_ranking, [ranked, export_format], export_file,
                            api_name="export_ranking_button", **PRIVATE)

        # attention
        attention_inputs = [session, att_query, att_match, att_method, att_target, att_direction, att_layer]
        attention_outputs = [att_query_maps, att_match_maps, att_bars, att_summary]
        att_button.click(cb.attention.attention_ui, attention_inputs, attention_outputs, api_name="attention_button",
                         concurrency_id="model", concurrency_limit=1, **PRIVATE)
        attention_tab.select(refresh_if_stale("attention", cb.attention.attention_ui, len(attention_outputs)),
                             attention_inputs + [rendered], attention_outputs + [rendered], api_name="attention_tab",
                             concurrency_id="model", concurrency_limit=1, **PRIVATE)

        # prompt diffusion
        diffusion_inputs = [session, diff_query, diff_k]
        diffusion_outputs = [diff_summary, diff_similarity, diff_attention, diff_probes, diff_table, diff_json]
        # the browser also gets the ranking with and without SD and the listed prompts as tables
        diffusion_page = diffusion_outputs + [diff_ranking_text, diff_before, diff_after, diff_prompts]
        diff_button.click(cb.diffusion.diffusion_ui, diffusion_inputs, diffusion_page, api_name="diffusion_button",
                          **PRIVATE)
        diff_k.release(cb.diffusion.diffusion_ui, diffusion_inputs, diffusion_page, api_name="diffusion_k", **PRIVATE)
        diffusion_tab.select(refresh_if_stale("diffusion", cb.diffusion.diffusion_ui, len(diffusion_page)),
                             diffusion_inputs + [rendered], diffusion_page + [rendered], api_name="diffusion_tab",
                             **PRIVATE)

        # modality gap
        gap_inputs = [session, gap_stage, gap_query, gap_direction, gap_k, gap_colour]
        gap_outputs = [gap_plot, gap_points, gap_table, gap_figure, gap_note]
        gap_button.click(cb.gap.modality_gap_ui, gap_inputs, gap_outputs, api_name="modality_gap_button", **PRIVATE)
        gap_stage.input(cb.gap.modality_gap_ui, gap_inputs, gap_outputs, api_name="modality_gap_stage", **PRIVATE)
        gap_colour.input(cb.gap.modality_gap_ui, gap_inputs, gap_outputs, api_name="modality_gap_colour", **PRIVATE)
        gap_tab.select(refresh_if_stale("gap", cb.gap.modality_gap_ui, len(gap_outputs)), gap_inputs + [rendered],
                       gap_outputs + [rendered], api_name="modality_gap_tab", **PRIVATE)

        # failure cases
        failure_inputs = [fail_direction, fail_sort, fail_limit]
        failure_outputs = [fail_table, fail_summary, fail_cameras, fail_attributes, fail_histogram]
        identity_outputs = [fail_identities, fail_identity_note]
        fail_button.click(cb.failures.failures, failure_inputs, failure_outputs, api_name="failures").then(
            cb.failures.by_identity, None, identity_outputs, api_name="failures_by_identity")
        failures_tab.select(refresh_if_stale("failures", cb.failures.failures, len(failure_outputs)),
                            failure_inputs + [rendered], failure_outputs + [rendered], api_name="failures_tab",
                            **PRIVATE).then(cb.failures.by_identity, None, identity_outputs,
                                            api_name="failures_by_identity_tab", **PRIVATE)
        chosen = fail_table.select(cb.failures.select_failure, [fail_direction, session],
                                   [session, direction, identity, camera, query, fail_loaded],
                                   api_name="select_failure", **PRIVATE)
        chosen.then(cb.failures.impostors, [query, direction], [impostor_image, impostor_text, impostor_table],
                    api_name="impostors_after_select", **PRIVATE)
        then_retrieve(chosen, "select_failure")
        # in the browser: the gap and failure plots refit when their tab is shown or the window resized, and a
        # column filter that leaves a table empty says so with a button that clears it
        demo.load(None, None, None, js=TABLE_AND_PLOT_JS, api_name="gapfail_js", **PRIVATE)

        # model
        model_outputs = [model_card, model_config, model_metrics, ablation_table, ablation_source]
        model_button.click(cb.model.model_card, [model_choice], model_outputs, api_name="model_card")
        model_choice.input(cb.model.model_card, [model_choice], model_outputs, api_name="model_card_choice", **PRIVATE)
        draws_outputs = [draws_text, draws_table]
        compare_outputs = [compare_summary, compare_figure, compare_table]
        compare_button.click(cb.model.compare, [compare_other, compare_direction], compare_outputs, api_name="compare")
        model_page = model_outputs + draws_outputs + compare_outputs
        model_tab.select(refresh_if_stale("model", cb.model.model_and_compare, len(model_page)),
                         [model_choice, compare_other, compare_direction, rendered],
                         model_page + [rendered], api_name="model_tab", **PRIVATE)

        # ================================================================ the public API
        # Each public endpoint is an invisible twin of its button with inputs of its own, whose initial values
        # are working defaults (the "Use via API" page shows them and its snippets run as they are). Errors
        # there raise gr.Error for the client; the browser events above show titled toasts instead.
        default_query = resources.default_query()
        example_clip = examples[0]["path"] if examples else None
        scene_clip = next((e["path"] for e in examples if e.get("kind") == "scene"), example_clip)
        with gr.Group(visible=False):
            api_query = gr.Textbox(value=default_query, label="Query tracklet")
            api_direction = gr.Radio(directions, value=first_direction, label="Direction")
            api_top_k = gr.Slider(1, MAX_TOP_K, value=10, step=1, label="Top-k")
            # defaults named relative to the repository: no server path, no foreign URL on the API page
            api_video = repo_example_video(example_clip, label="Video")
            api_modality = gr.Radio(["infrared", "visible"], value=examples[0]["modality"] if examples else "infrared",
                                    label="Declared modality of the video")
            api_person = gr.Textbox(value="auto", label="Person: auto or a track id from /detect_people")
            api_scene = repo_example_video(scene_clip, label="Video (a scene with people)")
            api_ranked = gr.JSON(value=json.dumps(default_query), label="Ranked list (JSON of /retrieve) or a query id")
            api_format = gr.Radio(["csv", "json"], value="csv", label="Export format")
            api_match = gr.Textbox(value="", label="Match: a gallery tracklet id (empty: the query's first true match)")
            api_method = gr.Radio(list(METHODS), value="gradcam", label="Method")
            api_target = gr.Radio(list(TARGETS), value="match", label="Target")
            api_layer = gr.Number(value=-1, precision=0, label="Block (-1 = last)")
            api_diff_k = gr.Slider(1, 20, value=5, step=1, label="Prompts listed")
            api_stage = gr.Radio(STAGE_CHOICES, value="embedding", label="Stage")
            api_gap_k = gr.Slider(1, 20, value=5, step=1, label="Matches ringed")
            api_colour = gr.Radio(["modality", "identity"], value="modality", label="Colour by")
            twins = {name: gr.Button(visible=False) for name in ("retrieve", "retrieve_video", "detect_people",
                                                                  "export_ranking", "attention", "diffusion",
                                                                  "modality_gap", "impostors", "model_draws")}
        twins["retrieve"].click(cb.retrieval.retrieve, [api_query, api_direction, api_top_k],
                                [ranked, summary, query_strip, results, session], api_name="retrieve")
        twins["detect_people"].click(cb.retrieval.detect_people, [api_scene], [people_json, people_preview, people_thumbs],
                                     api_name="detect_people", concurrency_id="retrieve_video", concurrency_limit=2)
        twins["retrieve_video"].click(cb.retrieval.retrieve_video, [api_video, api_modality, api_top_k, api_person],
                                      [ranked, summary, query_strip, results, session], api_name="retrieve_video",
                                      concurrency_id="retrieve_video", concurrency_limit=2)
        twins["export_ranking"].click(cb.retrieval.export_ranking, [api_ranked, api_format], export_file,
                                      api_name="export_ranking")
        twins["attention"].click(cb.attention.attention, [api_query, api_match, api_method, api_target, api_direction,
                                                          api_layer], attention_outputs, api_name="attention",
                                 concurrency_id="model", concurrency_limit=1)
        twins["impostors"].click(cb.failures.impostors, [api_query, api_direction],
                                 [impostor_image, impostor_text, impostor_table], api_name="impostors")
        twins["diffusion"].click(cb.diffusion.diffusion, [api_query, api_diff_k], diffusion_outputs,
                                 api_name="diffusion")
        twins["model_draws"].click(cb.model.draws, None, draws_outputs, api_name="model_draws")
        twins["modality_gap"].click(cb.gap.modality_gap, [api_stage, api_query, api_direction, api_gap_k, api_colour],
                                    gap_outputs, api_name="modality_gap")

    demo.lsmrl_callbacks = cb  # for tests and the benchmark
    return demo


__all__ = ["STAGE_CHOICES", "build_ui"]
