"""How the page looks: its title and introduction, the CSS, the theme and the attention maps' colour bar."""

import gradio as gr

from lsmrl.viz.images import colour_bar, jet_colormap

TITLE = "LSMRL Explorer"
INTRO = (
    "# LSMRL Explorer\n"
    "Video-based visible-infrared person re-identification with LSMRL (Liu et al. 2026, arXiv 2601.12062) on "
    "open_clip. Pick a query (or upload a video), see what the model retrieves, why (attention, prompt diffusion), "
    "whether the modality gap closes stage by stage, and where it fails."
)
CSS = """
#lsmrl-status { font-size: 0.92em; opacity: 0.85; }
#lsmrl-banner { border-left: 4px solid #1565c0; padding: 4px 10px; background: rgba(21, 101, 192, 0.06); }
/* tracklet strips are wide (T frames side by side) and attention frames tall: not gradio's square cells;
   captions go under the image (never over it) and wrap instead of being cut, at least 12 px */
#lsmrl-results .thumbnail-item, #lsmrl-thumbnails .thumbnail-item {
    aspect-ratio: auto; display: flex; flex-direction: column; height: auto; }
#lsmrl-results .thumbnail-item img { aspect-ratio: auto; width: 100%; height: auto; object-fit: contain; }
#lsmrl-thumbnails .thumbnail-item img { aspect-ratio: 1 / 1; object-fit: contain; }
#lsmrl-results .caption-label, #lsmrl-thumbnails .caption-label, #lsmrl-people .caption-label,
#lsmrl-attention-query .caption-label, #lsmrl-attention-match .caption-label {
    position: static; transform: none; max-width: 100%; white-space: normal; overflow: visible;
    text-overflow: clip; font-size: 12px; line-height: 1.25; margin: 2px 0 0 0; text-align: left; }
#lsmrl-thumbnails .caption-label { white-space: pre-line; }
#lsmrl-results .grid-wrap, #lsmrl-attention-query .grid-wrap, #lsmrl-attention-match .grid-wrap {
    min-height: 0; max-height: none; }
/* the gallery's label sits above the first row, not over its thumbnails */
#lsmrl-results .grid-wrap, #lsmrl-thumbnails .grid-wrap, #lsmrl-people .grid-wrap,
#lsmrl-attention-query .grid-wrap, #lsmrl-attention-match .grid-wrap { padding-top: 34px; }
#lsmrl-attention-query .thumbnail-item, #lsmrl-attention-match .thumbnail-item, #lsmrl-people .thumbnail-item {
    aspect-ratio: auto; display: flex; flex-direction: column; height: auto; }
#lsmrl-attention-query .thumbnail-item img, #lsmrl-attention-match .thumbnail-item img {
    aspect-ratio: 1 / 2; width: 100%; height: auto; object-fit: contain; }
/* per-frame maps wrap onto as many rows as the width needs instead of scrolling out of sight */
#lsmrl-attention-query .grid-container, #lsmrl-attention-match .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(64px, 1fr)) !important; }
#lsmrl-people .thumbnail-item { max-width: 150px; }
#lsmrl-people .thumbnail-item img { height: 150px; width: 100%; object-fit: contain; }
#lsmrl-stages table { font-size: 0.9em; display: block; overflow-x: auto; }
#lsmrl-stages th, #lsmrl-stages td { padding: 4px 8px; }
#lsmrl-stages td { white-space: nowrap; }
/* table headers wrap instead of being cut */
#lsmrl-gap-table th, #lsmrl-failures-table th, #lsmrl-ablation th { white-space: normal; }
#lsmrl-gap-table th span, #lsmrl-failures-table th span, #lsmrl-ablation th span {
    white-space: normal; overflow: visible; text-overflow: clip; }
/* the Prompt diffusion and Model tables: headers wrap between words, never inside one */
#lsmrl-diffusion-before th span, #lsmrl-diffusion-after th span, #lsmrl-diffusion-prompts th span,
#lsmrl-metrics th span, #lsmrl-draws-table th span, #lsmrl-compare-table th span {
    white-space: normal; overflow: visible; text-overflow: clip; word-break: normal; overflow-wrap: normal; }
"""


def attention_colour_bar():
    """The colour scale of the attention overlays (the same colormap, drawn once)."""
    return colour_bar(jet_colormap, left="0: no evidence", right="1: the tracklet's strongest point",
                      title="each tracklet's maps share one scale")


def theme():
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate")
