"""jointcredit's engine: load -> validate -> compile -> match -> resolve -> explain.

    compiled = compile_rulebooks(["rulebooks"])      # once; RulebookErrors lists every problem
    evaluator = Evaluator(compiled)
    evaluation = evaluator.evaluate(parse_bundle(obj), as_of=date(2025, 6, 30))
    evaluation.to_dict()["actions"]; explain(evaluation); why(evaluation, "tax.procurement_ban")
"""
from .bundle import Bundle, Record, Subject, parse_bundle, read_bundles
from .compiler import CompiledCatalog, compile_rulebooks
from .errors import (BundleError, CatalogError, Diagnostic, EvaluationError, JointCreditError,
                     RulebookErrors)
from .evaluator import Action, Evaluation, Evaluator

__all__ = [
    "Action",
    "Bundle",
    "BundleError",
    "CatalogError",
    "CompiledCatalog",
    "Diagnostic",
    "Evaluation",
    "EvaluationError",
    "Evaluator",
    "JointCreditError",
    "Record",
    "RulebookErrors",
    "Subject",
    "compile_rulebooks",
    "parse_bundle",
    "read_bundles",
]
