"""The engine's public surface is what __all__ says, and every name in it exists."""
import engine


def test_exported_members():
    assert [name for name in engine.__all__ if not hasattr(engine, name)] == []
    assert len(set(engine.__all__)) == len(engine.__all__)
    assert {"compile_rulebooks", "Evaluator", "parse_bundle", "read_bundles", "RulebookErrors", "BundleError"} <= set(engine.__all__)


def test_errors_carry_stable_codes():
    from engine.errors import BundleError, CatalogError, EvaluationError, JointCreditError, RulebookErrors

    codes = {cls.code for cls in (JointCreditError, RulebookErrors, CatalogError, BundleError, EvaluationError)}
    assert len(codes) == 5
    assert all(issubclass(cls, JointCreditError) for cls in (RulebookErrors, CatalogError, BundleError, EvaluationError))
