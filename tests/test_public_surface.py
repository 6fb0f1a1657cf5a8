"""The engine's public surface is what __all__ says, and every name in it exists."""
import engine


def test_exported_members():
    assert sorted(engine.__all__) == sorted(name for name in dir(engine) if not name.startswith("_")
                                            and name in engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert {"compile_rulebooks", "Evaluator", "parse_bundle", "read_bundles", "RulebookErrors", "BundleError"} <= set(engine.__all__)


def test_errors_carry_stable_codes():
    from engine.errors import BundleError, CatalogError, EvaluationError, JointCreditError, RulebookErrors

    codes = {cls.code for cls in (JointCreditError, RulebookErrors, CatalogError, BundleError, EvaluationError)}
    assert len(codes) == 5
    assert all(issubclass(cls, JointCreditError) for cls in (RulebookErrors, CatalogError, BundleError, EvaluationError))
