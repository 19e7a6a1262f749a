"""Answer verification: extract a response's final answer and judge it against the gold answer.

Public API (see ``verifier`` for the pipeline and its design, ``extract`` for the extraction rules,
``normalize`` for the numeric rewrites, ``_worker`` for the math-verify call and its safety):

* ``verify_one(gold, response, settings=None) -> Verification``
* ``BatchVerifier(settings)`` (context manager) with ``verify_many(pairs) -> list[Verification]``
* ``verify_file(path, gold_field="answer", response_field="solution", settings=None) -> dict``
* ``Verification(verdict, reason, gold_answer, predicted_answer)`` with ``to_dict()``; ``Verdict``
* ``last_boxed_content(text)``, ``extract_answer(text)``, ``gold_answer(text)``
* ``VerifySettings`` (recipe section ``verify``)
"""

from astro_pipeline.verify.extract import extract_answer, gold_answer, last_boxed_content
from astro_pipeline.verify.settings import VerifySettings
from astro_pipeline.verify.verifier import (
    BatchVerifier,
    Verdict,
    Verification,
    VerifierClosed,
    verify_file,
    verify_one,
)

__all__ = [
    "BatchVerifier",
    "Verdict",
    "Verification",
    "VerifierClosed",
    "VerifySettings",
    "extract_answer",
    "gold_answer",
    "last_boxed_content",
    "verify_file",
    "verify_one",
]
