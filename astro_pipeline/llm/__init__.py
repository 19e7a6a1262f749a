"""Policy backends behind one generation protocol (see ``protocol``).

``make_backend(settings, model_path)`` builds the configured one; the backends themselves are
imported lazily (torch/transformers or vLLM), so importing this package stays cheap.
"""

from astro_pipeline.llm.factory import make_backend
from astro_pipeline.llm.protocol import Backend, FinishReason, GenerationRequest, Sample, SamplingParams
from astro_pipeline.llm.settings import BackendSettings

__all__ = ["Backend", "BackendSettings", "FinishReason", "GenerationRequest", "Sample", "SamplingParams", "make_backend"]
