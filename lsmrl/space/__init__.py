"""Deploy the app as a Hugging Face Space: the bundle (``bundle.py``), the push (``hub.py``), the command (``cli.py``)."""

from lsmrl.space.bundle import BundleFile, BundleLayout, BundlePlan, plan_bundle, write_bundle

__all__ = ["BundleFile", "BundleLayout", "BundlePlan", "plan_bundle", "write_bundle"]
