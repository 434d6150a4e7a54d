"""quant.errors re-exports the core's classes: every except and isinstance still works."""


def test_quant_errors_are_the_core_classes():
    import npu_sim.errors
    import numeric.errors
    import quant.errors

    for name in ("FlexiQError", "ConfigError", "RatioError", "InputError", "ModelError",
                 "DataMissingError", "AccumulatorOverflowError", "SelectionFileError"):
        assert getattr(quant.errors, name) is getattr(numeric.errors, name)
    assert issubclass(npu_sim.errors.SimError, quant.errors.FlexiQError)
