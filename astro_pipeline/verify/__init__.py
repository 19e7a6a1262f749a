"""Answer verification: extract a response's final answer and judge it against the gold answer.

Public API (see ``rules`` for the verdict pipeline and the ``Verifier`` protocol, ``pool`` for the
worker processes and their design, ``shared`` for the module-level conveniences, ``extract`` for the
extraction rules, ``normalize`` for the numeric rewrites, ``_worker`` for the math-verify call and its
safety):

* ``verify_one(gold, response, settings=None) -> Verification``
* ``BatchVerifier(settings)`` (context manager) with ``verify_many(pairs) -> list[Verification]``
* ``verify_file(path, gold_field="answer", response_field="solution", settings=None) -> dict``
* ``Verification(verdict, reason, gold_answer, predicted_answer)`` with ``to_dict()``; ``Verdict``
* ``Verifier``: the protocol every stage verifies with (``verify_many(pairs) -> list[Verification]``)
* ``last_boxed_content(text)``, ``extract_answer(text)``, ``gold_answer(text)``
* ``VerifySettings`` (recipe section ``verify``)
"""

from astro_pipeline.verify.extract import extract_answer, gold_answer, last_boxed_content
from astro_pipeline.verify.settings import VerifySettings
from astro_pipeline.verify.pool import BatchVerifier, VerifierClosed
from astro_pipeline.verify.rules import Verdict, Verification, Verifier
from astro_pipeline.verify.shared import verify_file, verify_one

__all__ = [
    "BatchVerifier",
    "Verdict",
    "Verification",
    "Verifier",
    "VerifierClosed",
    "VerifySettings",
    "extract_answer",
    "gold_answer",
    "last_boxed_content",
    "verify_file",
    "verify_one",
]
